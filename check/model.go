package check

import "github.com/synod-db/synod/kvmodel"

// The porcupine models of etcd's key-value semantics live in package
// kvmodel, shared with the in-process simulation; these aliases keep the
// workloads' short names.
type (
	regInput  = kvmodel.RegInput
	regOutput = kvmodel.RegOutput
	txnInput  = kvmodel.TxnInput
	txnOutput = kvmodel.TxnOutput
)

const (
	opGet      = kvmodel.OpGet
	opPut      = kvmodel.OpPut
	opCASValue = kvmodel.OpCASValue
	opCASRev   = kvmodel.OpCASRev
	opDelete   = kvmodel.OpDelete

	txnRead  = kvmodel.TxnRead
	txnWrite = kvmodel.TxnWrite
	txnCAS   = kvmodel.TxnCAS

	groupSize = kvmodel.GroupSize
)

var (
	registerModel = kvmodel.Register
	txnModel      = kvmodel.Txn
)
