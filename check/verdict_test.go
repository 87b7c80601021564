package check

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// TestCheckTimeoutIsUnknown: when porcupine runs out of time the verdict is
// unknown, never ok.
func TestCheckTimeoutIsUnknown(t *testing.T) {
	// Many concurrent writes of unknown outcome and reads that pin none of
	// them down: a large search space.
	var h []porcupine.Operation
	for i := 0; i < 60; i++ {
		h = append(h, op(i, int64(i), -1, put("x", string(rune('a'+i%26))+string(rune('a'+i/26))), regOutput{}))
	}
	for i := 0; i < 60; i++ {
		h = append(h, op(100+i, 1000+int64(i), 2000+int64(i), get("x"), saw("zz", int64(5000+i))))
	}
	fixUnknownReturns(h)
	env := &Env{Timeline: &Timeline{}}
	res := porcupineVerdict(Result{Workload: "register", Verdict: VerdictOK}, registerModel, h, time.Millisecond, env,
		func(porcupine.Operation) string { return "key x" })
	if res.Verdict != VerdictUnknown {
		t.Fatalf("verdict %s (%v), want unknown", res.Verdict, res.Anomalies)
	}
}

func op(client int, call, ret int64, in regInput, out regOutput) porcupine.Operation {
	if ret < 0 {
		ret = 1<<63 - 1
		out.Unknown = true
	}
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

func put(k, v string) regInput          { return regInput{Op: opPut, Key: k, Value: v} }
func get(k string) regInput             { return regInput{Op: opGet, Key: k} }
func saw(v string, rev int64) regOutput { return regOutput{Value: v, Rev: rev} }
