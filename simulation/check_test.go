package simulation

import (
	"strings"
	"testing"

	"github.com/synod-db/synod/kvmodel"
)

// TestLinearizableVerdicts feeds crafted histories through the run's
// history recording and check, including unknown outcomes.
func TestLinearizableVerdicts(t *testing.T) {
	put := func(k, v string) kvmodel.RegInput { return kvmodel.RegInput{Op: kvmodel.OpPut, Key: k, Value: v} }
	get := func(k string) kvmodel.RegInput { return kvmodel.RegInput{Op: kvmodel.OpGet, Key: k} }
	type op struct {
		client    int
		in        kvmodel.RegInput
		out       kvmodel.RegOutput
		call, ret int64 // ret < 0: unknown outcome
	}
	tests := []struct {
		name string
		ops  []op
		ok   bool
	}{
		{"read after write", []op{
			{0, put("k0", "a"), kvmodel.RegOutput{Rev: 2}, 1, 2},
			{1, get("k0"), kvmodel.RegOutput{Value: "a", Rev: 2}, 3, 4},
		}, true},
		{"stale read", []op{
			{0, put("k0", "a"), kvmodel.RegOutput{Rev: 2}, 1, 2},
			{0, put("k0", "b"), kvmodel.RegOutput{Rev: 3}, 3, 4},
			{1, get("k0"), kvmodel.RegOutput{Value: "a", Rev: 2}, 5, 6},
		}, false},
		{"unknown write seen later", []op{
			{0, put("k0", "a"), kvmodel.RegOutput{Unknown: true}, 1, -1},
			{1, get("k0"), kvmodel.RegOutput{Value: "a", Rev: 5}, 3, 4},
		}, true},
		{"lost acknowledged write", []op{
			{0, put("k1", "a"), kvmodel.RegOutput{Rev: 2}, 1, 2},
			{1, get("k1"), kvmodel.RegOutput{}, 3, 4},
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(1, nil)
			for _, o := range tc.ops {
				c.clock = max(c.clock, o.call, o.ret)
				c.record(o.client, o.in, o.out, o.call, o.ret)
			}
			got := c.linearizable()
			if tc.ok != (len(got) == 0) {
				t.Fatalf("anomalies %q, want ok=%v", got, tc.ok)
			}
			if !tc.ok && !strings.Contains(strings.Join(got, "\n"), "not linearizable") {
				t.Fatalf("anomalies %q do not say the history is not linearizable", got)
			}
		})
	}
}
