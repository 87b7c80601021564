package kvmodel

import (
	"math"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op builds a history entry; ret < 0 means the outcome is unknown.
func op(client int, call, ret int64, in RegInput, out RegOutput) porcupine.Operation {
	if ret < 0 {
		ret = math.MaxInt64
		out.Unknown = true
	}
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

func put(k, v string) RegInput { return RegInput{Op: OpPut, Key: k, Value: v} }
func get(k string) RegInput    { return RegInput{Op: OpGet, Key: k} }
func casV(k, exp, v string) RegInput {
	return RegInput{Op: OpCASValue, Key: k, Expect: exp, Value: v}
}
func casR(k string, exp int64, v string) RegInput {
	return RegInput{Op: OpCASRev, Key: k, ExpectRev: exp, Value: v}
}
func del(k string) RegInput               { return RegInput{Op: OpDelete, Key: k} }
func deleted(rev int64) RegOutput         { return RegOutput{Ok: true, Rev: rev} }
func nothingDeleted(rev int64) RegOutput  { return RegOutput{Rev: rev} }
func wrote(rev int64) RegOutput           { return RegOutput{Rev: rev} }
func saw(v string, rev int64) RegOutput   { return RegOutput{Value: v, Rev: rev} }
func casOK(rev int64) RegOutput           { return RegOutput{Ok: true, Rev: rev} }
func casNo(v string, rev int64) RegOutput { return RegOutput{Value: v, Rev: rev} }

func TestRegisterModel(t *testing.T) {
	tests := []modelCase{
		{"sequential put then get", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(1, 20, 30, get("x"), saw("a", 2)),
		}},
		{"stale read after a completed put", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, 30, put("x", "b"), wrote(3)),
			op(1, 40, 50, get("x"), saw("a", 2)),
		}},
		{"concurrent read may see either", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, 60, put("x", "b"), wrote(3)),
			op(1, 30, 40, get("x"), saw("a", 2)),
		}},
		{"read of the right value with the wrong revision", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(1, 20, 30, get("x"), saw("a", 3)),
		}},
		{"revision going backwards", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(5)),
			op(0, 20, 30, put("x", "b"), wrote(4)),
		}},
		{"absent key reads as empty at revision 0", true, []porcupine.Operation{
			op(1, 0, 10, get("x"), saw("", 0)),
			op(0, 20, 30, casR("x", 0, "a"), casOK(7)),
			op(1, 40, 50, get("x"), saw("a", 7)),
		}},
		{"cas on value succeeds only on a match", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(1, 20, 30, casV("x", "zzz", "b"), casOK(3)),
		}},
		{"failed cas reports the current value", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(1, 20, 30, casV("x", "zzz", "b"), casNo("a", 2)),
		}},
		{"failed cas that should have succeeded", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(1, 20, 30, casV("x", "a", "b"), casNo("a", 2)),
		}},
		{"two cas winners on the same revision", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(1, 20, 30, casR("x", 2, "b"), casOK(3)),
			op(2, 40, 50, casR("x", 2, "c"), casOK(4)),
		}},
		{"unknown put that took effect", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, -1, put("x", "b"), RegOutput{}),
			op(1, 40, 50, get("x"), saw("b", 9)),
			op(1, 60, 70, get("x"), saw("b", 9)),
		}},
		{"unknown put that did not take effect", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, -1, put("x", "b"), RegOutput{}),
			op(1, 40, 50, get("x"), saw("a", 2)),
		}},
		{"unknown put cannot be undone", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, -1, put("x", "b"), RegOutput{}),
			op(1, 40, 50, get("x"), saw("b", 9)),
			op(1, 60, 70, get("x"), saw("a", 2)),
		}},
		{"unknown put's revision must exceed the previous one", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(5)),
			op(0, 20, -1, put("x", "b"), RegOutput{}),
			op(1, 40, 50, get("x"), saw("b", 3)),
		}},
		{"cas on an unknown revision may go either way", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, -1, put("x", "b"), RegOutput{}),
			op(1, 30, -1, casR("x", 8, "c"), RegOutput{}),
			op(2, 40, 50, get("x"), saw("c", 9)),
		}},
		{"value compare on a missing key fails even for the empty string", false, []porcupine.Operation{
			op(0, 0, 10, casV("x", "", "a"), casOK(2)),
		}},
		{"value compare on a missing key reports it missing", true, []porcupine.Operation{
			op(0, 0, 10, casV("x", "", "a"), casNo("", 0)),
		}},
		{"keys are independent", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(1, 0, 10, put("y", "a"), wrote(3)),
			op(2, 20, 30, get("y"), saw("a", 3)),
			op(2, 40, 50, get("x"), saw("a", 2)),
		}},
		{"delete then read absent", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, 30, del("x"), deleted(3)),
			op(1, 40, 50, get("x"), saw("", 0)),
		}},
		{"read of a deleted value", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, 30, del("x"), deleted(3)),
			op(1, 40, 50, get("x"), saw("a", 2)),
		}},
		{"delete of an absent key deletes nothing", false, []porcupine.Operation{
			op(0, 0, 10, del("x"), deleted(2)),
		}},
		{"delete that found nothing after a put", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, 30, del("x"), nothingDeleted(2)),
		}},
		{"unknown delete may have removed the key", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, -1, del("x"), RegOutput{}),
			op(1, 40, 50, get("x"), saw("", 0)),
			op(1, 60, 70, put("x", "b"), wrote(4)),
		}},
		{"cas on mod_revision 0 creates an absent key", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(2)),
			op(0, 20, 30, del("x"), deleted(3)),
			op(0, 40, 50, casR("x", 0, "b"), casOK(4)),
		}},
	}
	checkCases(t, Register, tests)
}

func TestDescribeRegOp(t *testing.T) {
	for _, tc := range []struct {
		in   RegInput
		out  RegOutput
		want string
	}{
		{get("k"), saw("v", 3), `get(k) → "v"@3`},
		{put("k", "v"), wrote(4), `put(k, "v") → ok@4`},
		{casV("k", "a", "b"), casNo("c", 2), `cas(k, value="a" → "b") → failed, saw "c"@2`},
		{casR("k", 2, "b"), RegOutput{Unknown: true}, `cas(k, mod_rev=2 → "b") → ?`},
	} {
		if got := describeRegOp(tc.in, tc.out); got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
	}
}

// Unreported outcomes: Consul's KV PUT and CAS answer true or false, its
// catalog writes and reads carry no revision.
var (
	acked   = RegOutput{Unreported: true}
	ackedOK = RegOutput{Unreported: true, Ok: true}
)

func seen(v string) RegOutput { return RegOutput{Unreported: true, Value: v} }

func TestRegisterModelUnreported(t *testing.T) {
	tests := []modelCase{
		{"write then value-only read", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), acked),
			op(1, 20, 30, get("x"), seen("a")),
		}},
		{"value-only read of a deleted key", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), acked),
			op(0, 20, 30, del("x"), ackedOK),
			op(1, 40, 50, get("x"), seen("a")),
		}},
		{"delete of an absent key that claims it deleted", false, []porcupine.Operation{
			op(0, 0, 10, del("x"), ackedOK),
		}},
		{"delete of a present key that found nothing", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), acked),
			op(0, 20, 30, del("x"), acked),
		}},
		{"unreported write then a read that pins its revision", true, []porcupine.Operation{
			op(0, 0, 10, casR("x", 0, "a"), ackedOK),
			op(1, 20, 30, get("x"), saw("a", 7)),
			op(0, 40, 50, casR("x", 7, "b"), ackedOK),
			op(1, 60, 70, get("x"), saw("b", 9)),
		}},
		{"CAS on a revision that is no longer current succeeds", false, []porcupine.Operation{
			op(0, 0, 10, casR("x", 0, "a"), ackedOK),
			op(1, 20, 30, get("x"), saw("a", 7)),
			op(0, 40, 50, put("x", "b"), acked),
			op(0, 60, 70, casR("x", 7, "c"), ackedOK),
		}},
		{"CAS on the current revision fails", false, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), wrote(5)),
			op(0, 20, 30, casR("x", 5, "b"), acked),
		}},
		{"create-only CAS fails on an existing key", true, []porcupine.Operation{
			op(0, 0, 10, put("x", "a"), acked),
			op(0, 20, 30, casR("x", 0, "b"), acked),
			op(1, 40, 50, get("x"), seen("a")),
		}},
	}
	checkCases(t, Register, tests)
}

// modelCase is a history and whether a model must accept it.
type modelCase struct {
	name string
	ok   bool
	h    []porcupine.Operation
}

func checkCases(t *testing.T, model porcupine.Model, tests []modelCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := porcupine.CheckOperationsTimeout(model, tc.h, 10*time.Second)
			want := porcupine.Illegal
			if tc.ok {
				want = porcupine.Ok
			}
			if got != want {
				t.Fatalf("porcupine: %s, want %s", got, want)
			}
		})
	}
}
