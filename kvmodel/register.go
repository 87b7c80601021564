package kvmodel

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// RegOp is the kind of a register operation.
type RegOp uint8

const (
	OpGet      RegOp = iota // Range of one key
	OpPut                   // Put
	OpCASValue              // Txn: if value == Expect then put else get
	OpCASRev                // Txn: if mod_revision == ExpectRev then put else get
	OpDelete                // DeleteRange of one key
)

// RegInput is a register operation as called.
type RegInput struct {
	Op        RegOp
	Key       string
	Value     string // put / CAS new value
	Expect    string // OpCASValue
	ExpectRev int64  // OpCASRev
}

// RegOutput is what the operation returned.
type RegOutput struct {
	// Unknown: the call failed or timed out, so it may or may not have
	// taken effect (its return is placed at the end of the history).
	Unknown bool
	// Ok: a CAS took its then-branch, or a delete deleted the key.
	Ok bool
	// Value and Rev: for a get or a failed CAS, the key's value ("" when
	// absent) and mod_revision (0 when absent); for a put or a successful
	// CAS, Rev is the revision of the write (the response header's).
	Value string
	Rev   int64
	// Unreported: the server does not report revisions for this operation
	// (Consul's KV PUT and CAS answer only true or false, its catalog
	// writes answer nothing, its catalog reads carry no per-key index the
	// model can use). An acknowledged write then takes effect with a
	// revision known only to be above the previous one; a failed CAS saw
	// nothing; a read is judged on its value alone ("" is absent).
	Unreported bool
}

// regState is one key's state in the model. When Known is false the exact
// mod_revision is not known (a write of unknown outcome may have set it)
// and Rev is a strict lower bound of it.
type regState struct {
	Value string
	Rev   int64
	Known bool
}

// revIs reports whether s's mod_revision can be r.
func (s regState) revIs(r int64) bool {
	if s.Known {
		return s.Rev == r
	}
	return r > s.Rev
}

// absent reports whether the key certainly does not exist.
func (s regState) absent() bool { return s.Known && s.Rev == 0 }

// valueIs is etcd's value compare: a missing key never matches, not even
// the empty string.
func (s regState) valueIs(v string) bool { return !s.absent() && s.Value == v }

// read checks an observed (value, mod_revision) against s and returns the
// state it reveals.
func (s regState) read(o RegOutput) (bool, regState) {
	if o.Value != s.Value || !s.revIs(o.Rev) {
		return false, s
	}
	return true, regState{Value: o.Value, Rev: o.Rev, Known: true}
}

// wrote returns the state after a write of v whose revision is unknown.
func (s regState) wrote(v string) regState {
	return regState{Value: v, Rev: s.Rev, Known: false}
}

// stepRegister is etcd's semantics for one key as a nondeterministic step:
// every write gets a revision greater than the key's previous mod_revision,
// a read returns the latest value with its mod_revision, and a compare
// takes the then-branch exactly when it holds.
func stepRegister(state, input, output any) []any {
	s, in, out := state.(regState), input.(RegInput), output.(RegOutput)
	if out.Unknown {
		return stepUnknown(s, in)
	}
	if out.Unreported {
		return stepUnreported(s, in, out)
	}
	switch in.Op {
	case OpGet:
		return keep(s.read(out))
	case OpPut:
		if out.Rev > s.Rev {
			return []any{regState{Value: in.Value, Rev: out.Rev, Known: true}}
		}
	case OpCASValue:
		if out.Ok && s.valueIs(in.Expect) && out.Rev > s.Rev {
			return []any{regState{Value: in.Value, Rev: out.Rev, Known: true}}
		}
		if !out.Ok && !s.valueIs(in.Expect) {
			return keep(s.read(out))
		}
	case OpCASRev:
		if out.Ok && s.revIs(in.ExpectRev) && out.Rev > in.ExpectRev {
			return []any{regState{Value: in.Value, Rev: out.Rev, Known: true}}
		}
		if !out.Ok && out.Rev != in.ExpectRev {
			return keep(s.read(out))
		}
	case OpDelete:
		return stepDelete(s, out)
	}
	return nil
}

// stepUnreported is an acknowledged operation whose answer carries no
// revision (RegOutput.Unreported).
func stepUnreported(s regState, in RegInput, out RegOutput) []any {
	switch in.Op {
	case OpGet:
		if out.Value == s.Value && (out.Value == "") == s.absent() {
			return []any{s}
		}
	case OpPut:
		return []any{s.wrote(in.Value)}
	case OpCASValue:
		if out.Ok == s.valueIs(in.Expect) {
			return keepIf(out.Ok, s.wrote(in.Value), s)
		}
	case OpCASRev:
		if out.Ok && s.revIs(in.ExpectRev) {
			return []any{regState{Value: in.Value, Rev: max(s.Rev, in.ExpectRev), Known: false}}
		}
		if !out.Ok && !(s.Known && s.Rev == in.ExpectRev) {
			return []any{s} // an unknown revision may differ from ExpectRev
		}
	case OpDelete:
		if out.Ok != s.absent() {
			return []any{regState{Known: true}}
		}
	}
	return nil
}

// keepIf returns a when cond holds, else b.
func keepIf(cond bool, a, b regState) []any {
	if cond {
		return []any{a}
	}
	return []any{b}
}

// stepDelete: a delete that deleted the key needs it to exist and leaves it
// absent (the model then forgets the revision lower bound, which only makes
// later checks weaker, never wrong); one that deleted nothing needs it
// absent.
func stepDelete(s regState, out RegOutput) []any {
	if out.Ok && !s.absent() && out.Rev > s.Rev {
		return []any{regState{Known: true}}
	}
	if !out.Ok && s.absent() {
		return []any{s}
	}
	return nil
}

// stepUnknown is an operation whose outcome is unknown, linearized here: it
// took effect (placing it after every other operation models "it did not").
func stepUnknown(s regState, in RegInput) []any {
	switch in.Op {
	case OpPut:
		return []any{s.wrote(in.Value)}
	case OpCASValue:
		if s.valueIs(in.Expect) {
			return []any{s.wrote(in.Value)}
		}
		return []any{s}
	case OpCASRev:
		switch {
		case s.Known && s.Rev == in.ExpectRev:
			return []any{s.wrote(in.Value)}
		case s.Known || in.ExpectRev <= s.Rev:
			return []any{s}
		default: // the unknown revision may or may not equal ExpectRev
			return []any{s, s.wrote(in.Value)}
		}
	case OpDelete:
		return []any{regState{Known: true}} // absent whether or not it was before
	}
	return []any{s} // a read of unknown outcome observed nothing
}

func keep(ok bool, s regState) []any {
	if !ok {
		return nil
	}
	return []any{s}
}

// Register is the porcupine model of per-key registers, partitioned by
// key so each key is checked on its own.
var Register = (&porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		return partitionBy(h, func(op porcupine.Operation) string { return op.Input.(RegInput).Key })
	},
	Init:              func() []any { return []any{regState{Known: true}} },
	Step:              stepRegister,
	DescribeOperation: describeRegOp,
	DescribeState: func(state any) string {
		s := state.(regState)
		if s.Known {
			return fmt.Sprintf("%q@%d", s.Value, s.Rev)
		}
		return fmt.Sprintf("%q@>%d", s.Value, s.Rev)
	},
}).ToModel()

func describeRegOp(input, output any) string {
	in, out := input.(RegInput), output.(RegOutput)
	var call string
	switch in.Op {
	case OpGet:
		call = fmt.Sprintf("get(%s)", in.Key)
	case OpPut:
		call = fmt.Sprintf("put(%s, %q)", in.Key, in.Value)
	case OpCASValue:
		call = fmt.Sprintf("cas(%s, value=%q → %q)", in.Key, in.Expect, in.Value)
	case OpCASRev:
		call = fmt.Sprintf("cas(%s, mod_rev=%d → %q)", in.Key, in.ExpectRev, in.Value)
	case OpDelete:
		call = fmt.Sprintf("delete(%s)", in.Key)
	}
	switch {
	case out.Unknown:
		return call + " → ?"
	case out.Unreported:
		return describeUnreported(call, in, out)
	case in.Op == OpDelete && !out.Ok:
		return call + " → nothing to delete"
	case in.Op == OpPut || out.Ok:
		return fmt.Sprintf("%s → ok@%d", call, out.Rev)
	case in.Op == OpGet:
		return fmt.Sprintf("%s → %q@%d", call, out.Value, out.Rev)
	default:
		return fmt.Sprintf("%s → failed, saw %q@%d", call, out.Value, out.Rev)
	}
}

func describeUnreported(call string, in RegInput, out RegOutput) string {
	switch {
	case in.Op == OpGet && out.Value == "":
		return call + " → absent"
	case in.Op == OpGet:
		return fmt.Sprintf("%s → %q", call, out.Value)
	case in.Op == OpDelete && !out.Ok:
		return call + " → nothing to delete"
	case in.Op == OpPut || out.Ok:
		return call + " → ok"
	}
	return call + " → failed"
}
