package kvmodel

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
)

func txop(client int, call, ret int64, in TxnInput, out TxnOutput) porcupine.Operation {
	if ret < 0 {
		ret, out.Unknown = math.MaxInt64, true
	}
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

func twrite(vals ...string) TxnInput {
	in := TxnInput{Kind: TxnWrite, Group: "g"}
	copy(in.Write[:], vals)
	return in
}

func tcas(expect [GroupSize]int64, compare [GroupSize]bool, vals ...string) TxnInput {
	in := TxnInput{Kind: TxnCAS, Group: "g", Expect: expect, Compare: compare}
	copy(in.Write[:], vals)
	return in
}

var tread = TxnInput{Kind: TxnRead, Group: "g"}

func tsaw(kvs ...RegOutput) TxnOutput {
	var out TxnOutput
	copy(out.Read[:], kvs)
	return out
}

func TestTxnModel(t *testing.T) {
	none := RegOutput{}
	tests := []modelCase{
		{"atomic write then read", true, []porcupine.Operation{
			txop(0, 0, 10, twrite("a", "b"), TxnOutput{Ok: true, Rev: 5}),
			txop(1, 20, 30, tread, tsaw(saw("a", 5), saw("b", 5), none)),
		}},
		{"torn read: one key of a write without the other", false, []porcupine.Operation{
			txop(0, 0, 10, twrite("a", "b"), TxnOutput{Ok: true, Rev: 5}),
			txop(1, 20, 30, tread, tsaw(saw("a", 5), none, none)),
		}},
		{"torn read during the write", false, []porcupine.Operation{
			txop(0, 0, 50, twrite("a", "b"), TxnOutput{Ok: true, Rev: 5}),
			txop(1, 20, 30, tread, tsaw(saw("a", 5), none, none)),
		}},
		{"a write's revision must exceed every key's", false, []porcupine.Operation{
			txop(0, 0, 10, twrite("", "", "c"), TxnOutput{Ok: true, Rev: 9}),
			txop(0, 20, 30, twrite("a"), TxnOutput{Ok: true, Rev: 7}),
		}},
		{"cas succeeds when every compare holds", true, []porcupine.Operation{
			txop(0, 0, 10, twrite("a", "b"), TxnOutput{Ok: true, Rev: 5}),
			txop(1, 20, 30, tcas([3]int64{5, 5, 0}, [3]bool{true, true, true}, "", "", "c"), TxnOutput{Ok: true, Rev: 6}),
			txop(1, 40, 50, tread, tsaw(saw("a", 5), saw("b", 5), saw("c", 6))),
		}},
		{"cas must fail when a compare does not hold", false, []porcupine.Operation{
			txop(0, 0, 10, twrite("a", "b"), TxnOutput{Ok: true, Rev: 5}),
			txop(1, 20, 30, tcas([3]int64{5, 4, 0}, [3]bool{true, true, false}, "x"), TxnOutput{Ok: true, Rev: 6}),
		}},
		{"failed cas reports the state", true, []porcupine.Operation{
			txop(0, 0, 10, twrite("a", "b"), TxnOutput{Ok: true, Rev: 5}),
			txop(1, 20, 30, tcas([3]int64{5, 4, 0}, [3]bool{true, true, false}, "x"), tsaw(saw("a", 5), saw("b", 5), none)),
		}},
		{"unknown write seen later, atomically", true, []porcupine.Operation{
			txop(0, 0, -1, twrite("a", "b"), TxnOutput{}),
			txop(1, 20, 30, tread, tsaw(saw("a", 3), saw("b", 3), none)),
		}},
		{"unknown write seen torn", false, []porcupine.Operation{
			txop(0, 0, -1, twrite("a", "b"), TxnOutput{}),
			txop(1, 20, 30, tread, tsaw(saw("a", 3), none, none)),
		}},
	}
	checkCases(t, Txn, tests)
	if d := describeTxnOp(tcas([3]int64{5}, [3]bool{true}, "x"), TxnOutput{Ok: true, Rev: 6}); d != `cas(k0@5 → k0="x" g) → ok@6` {
		t.Errorf("describe: %s", d)
	}
}
