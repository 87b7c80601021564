package check

import (
	"strings"
	"testing"
)

// TestJudgeCatalogHolds: holds of one key whose beliefs overlap are
// anomalies; hand-offs, and holds of different keys, are not.
func TestJudgeCatalogHolds(t *testing.T) {
	hold := func(key, client string, from, until int64) catalogHold {
		return catalogHold{Key: key, Session: "s-" + client, Client: client, Acquired: from, Until: until}
	}
	for _, tc := range []struct {
		name  string
		holds []catalogHold
		want  int
	}{
		{"hand-offs", []catalogHold{hold("a", "c1", 0, 10), hold("a", "c2", 10, 20), hold("a", "c3", 25, 30)}, 0},
		{"other keys", []catalogHold{hold("a", "c1", 0, 10), hold("b", "c2", 5, 20)}, 0},
		{"overlap", []catalogHold{hold("a", "c2", 5, 20), hold("a", "c1", 0, 10)}, 1},
		{"one long belief, two successors", []catalogHold{hold("a", "c1", 0, 100), hold("a", "c2", 10, 20), hold("a", "c3", 30, 40)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := judgeCatalogHolds(tc.holds)
			if len(got) != tc.want {
				t.Fatalf("got %d anomalies %q, want %d", len(got), got, tc.want)
			}
			for _, a := range got {
				if !strings.Contains(a, "believed it held it") {
					t.Fatalf("anomaly %q", a)
				}
			}
		})
	}
}

// TestNeedsConsul: only a selection with the catalog workload starts the
// members' Consul listeners.
func TestNeedsConsul(t *testing.T) {
	for list, want := range map[string]bool{"register,lock": false, "catalog": true, "register,catalog": true} {
		ws, err := ParseWorkloads(list, WorkloadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := needsConsul(ws); got != want {
			t.Errorf("%s: needsConsul = %v, want %v", list, got, want)
		}
	}
}
