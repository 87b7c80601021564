package kvmodel

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"
)

// GroupSize is the number of keys one multi-key transaction works on.
const GroupSize = 3

// TxnKind is the kind of a multi-key transaction.
type TxnKind uint8

const (
	TxnRead  TxnKind = iota // Txn of a Get per key of the group
	TxnWrite                // Txn of Puts to some keys of the group
	TxnCAS                  // Txn: if every compared mod_revision matches, Puts, else a Get per key
)

// TxnInput is a multi-key transaction as called. Keys of the group are
// numbered 0..GroupSize-1.
type TxnInput struct {
	Kind  TxnKind
	Group string
	// Write[i] is the new value of key i, "" when key i is not written.
	Write [GroupSize]string
	// Compare[i] says whether key i's mod_revision is compared with
	// Expect[i] (TxnCAS).
	Compare [GroupSize]bool
	Expect  [GroupSize]int64
}

// TxnOutput is what the transaction returned.
type TxnOutput struct {
	// Unknown: the outcome is unknown (see RegOutput).
	Unknown bool
	// Ok: a CAS took its then-branch.
	Ok bool
	// Rev is the revision of a write or a successful CAS.
	Rev int64
	// Read holds each key's value and mod_revision for a read or a failed
	// CAS.
	Read [GroupSize]RegOutput
}

// txnState is a group's state: one register per key.
type txnState [GroupSize]regState

// stepTxn is etcd's semantics for a group of keys under multi-key
// transactions: a write gives every key it writes the same new revision,
// greater than any of their previous ones; a read sees all keys at one
// point; a CAS takes its then-branch exactly when every compare holds.
// Checked per group with porcupine, this is strict serializability of the
// transactions on each group.
func stepTxn(state, input, output any) []any {
	s, in, out := state.(txnState), input.(TxnInput), output.(TxnOutput)
	if out.Unknown {
		return stepTxnUnknown(s, in)
	}
	switch in.Kind {
	case TxnRead:
		return keepTxn(s.read(out.Read))
	case TxnWrite:
		return keepTxn(s.write(in, out.Rev))
	case TxnCAS:
		if out.Ok {
			for i := range s {
				if in.Compare[i] && !s[i].revIs(in.Expect[i]) {
					return nil
				}
			}
			return keepTxn(s.write(in, out.Rev))
		}
		ok, next := s.read(out.Read)
		if !ok {
			return nil
		}
		for i := range s {
			if in.Compare[i] && out.Read[i].Rev != in.Expect[i] {
				return []any{next} // some compare failed, as reported
			}
		}
	}
	return nil
}

// read checks every key's observed value and revision.
func (s txnState) read(obs [GroupSize]RegOutput) (bool, txnState) {
	next := s
	for i := range s {
		ok, ns := s[i].read(obs[i])
		if !ok {
			return false, s
		}
		next[i] = ns
	}
	return true, next
}

// write applies the puts of in at revision rev, which must exceed the
// revision of every key of the group (revisions are global: a write's
// revision exceeds every earlier write's).
func (s txnState) write(in TxnInput, rev int64) (bool, txnState) {
	next := s
	for i, v := range in.Write {
		if rev <= s[i].Rev {
			return false, s
		}
		if v != "" {
			next[i] = regState{Value: v, Rev: rev, Known: true}
		}
	}
	return true, next
}

// stepTxnUnknown: the transaction took effect here (or, placed last, never).
func stepTxnUnknown(s txnState, in TxnInput) []any {
	applied := s
	for i, v := range in.Write {
		if v != "" {
			applied[i] = s[i].wrote(v)
		}
	}
	switch in.Kind {
	case TxnWrite:
		return []any{applied}
	case TxnCAS:
		certain, possible := true, true
		for i := range s {
			if !in.Compare[i] {
				continue
			}
			if !s[i].revIs(in.Expect[i]) {
				possible = false
			}
			if !s[i].Known {
				certain = false
			}
		}
		switch {
		case !possible:
			return []any{s}
		case certain:
			return []any{applied}
		default:
			return []any{s, applied}
		}
	}
	return []any{s}
}

func keepTxn(ok bool, s txnState) []any {
	if !ok {
		return nil
	}
	return []any{s}
}

// Txn is the porcupine model of multi-key transactions, partitioned by
// group.
var Txn = (&porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		return partitionBy(h, func(op porcupine.Operation) string { return op.Input.(TxnInput).Group })
	},
	Init:              func() []any { return []any{txnState{{Known: true}, {Known: true}, {Known: true}}} },
	Step:              stepTxn,
	DescribeOperation: describeTxnOp,
	DescribeState: func(state any) string {
		var parts []string
		for _, r := range state.(txnState) {
			parts = append(parts, Register.DescribeState([]any{r}))
		}
		return strings.Join(parts, " ")
	},
}).ToModel()

// partitionBy splits a history by a key function, in first-seen order.
func partitionBy(h []porcupine.Operation, key func(porcupine.Operation) string) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	var order []string
	for _, op := range h {
		k := key(op)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	out := make([][]porcupine.Operation, 0, len(order))
	for _, k := range order {
		out = append(out, byKey[k])
	}
	return out
}

func describeTxnOp(input, output any) string {
	in, out := input.(TxnInput), output.(TxnOutput)
	var b strings.Builder
	switch in.Kind {
	case TxnRead:
		b.WriteString("read(")
	case TxnWrite:
		b.WriteString("write(")
	case TxnCAS:
		b.WriteString("cas(")
		for i, c := range in.Compare {
			if c {
				fmt.Fprintf(&b, "k%d@%d ", i, in.Expect[i])
			}
		}
		b.WriteString("→ ")
	}
	for i, v := range in.Write {
		if v != "" {
			fmt.Fprintf(&b, "k%d=%q ", i, v)
		}
	}
	fmt.Fprintf(&b, "%s)", in.Group)
	switch {
	case out.Unknown:
		b.WriteString(" → ?")
	case in.Kind == TxnWrite || out.Ok:
		fmt.Fprintf(&b, " → ok@%d", out.Rev)
	default:
		b.WriteString(" →")
		for i, r := range out.Read {
			fmt.Fprintf(&b, " k%d=%q@%d", i, r.Value, r.Rev)
		}
	}
	return b.String()
}
