package check

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestLeaseGone: a lease found gone before the deadline its last
// acknowledged keep-alive promised (less the tolerance) is an anomaly;
// after it, or within the tolerance, it is an expected expiry.
func TestLeaseGone(t *testing.T) {
	env := &Env{Start: time.Now()}
	tests := []struct {
		name     string
		deadline time.Duration // from now
		early    bool
	}{
		{"long before the deadline", 2 * time.Second, true},
		{"just past the tolerance", leaseTolerance + 200*time.Millisecond, true},
		{"within the tolerance", leaseTolerance - 200*time.Millisecond, false},
		{"after the deadline", -time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newLeaseWorkload(WorkloadOptions{})
			w.leases = 1
			st := &leaseState{id: 0x1234, key: "check/lease/m1/000001", deadline: time.Now().Add(tc.deadline)}
			if w.gone(env, st, "a read found no key") {
				t.Fatal("gone reported the lease alive")
			}
			res := w.Check(context.Background(), env)
			if tc.early {
				if res.Verdict != VerdictFail || len(res.Anomalies) != 1 || !strings.Contains(res.Anomalies[0], "expired") {
					t.Fatalf("early expiry: %s %q", res.Verdict, res.Anomalies)
				}
				return
			}
			if res.Verdict != VerdictOK || w.expired != 1 {
				t.Fatalf("expiry after the deadline: %s %q, %d expired", res.Verdict, res.Anomalies, w.expired)
			}
		})
	}
}
