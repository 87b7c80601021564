package healthcheck

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"

	"github.com/synod-db/synod/catalog"
)

// Owned returns the nodes whose checks member self runs: its own node, and
// every agent node without a live runner whose owner among the live
// runners (self always counted) is self. The owner of an orphaned node is
// chosen by rendezvous hashing (the runner with the highest hash of
// runner and node), so every member computes the same owner from the same
// view, and the orphans of a dead member spread over the survivors. agents
// are the members' node names; live the names whose runner key exists.
func Owned(self string, agents, live []string) []string {
	alive := map[string]bool{self: true}
	for _, n := range live {
		alive[n] = true
	}
	candidates := make([]string, 0, len(alive))
	for n := range alive {
		candidates = append(candidates, n)
	}
	sort.Strings(candidates)
	out := []string{self}
	for _, node := range agents {
		if node == "" || alive[node] {
			continue
		}
		if owner(node, candidates) == self {
			out = append(out, node)
		}
	}
	sort.Strings(out[1:])
	return out
}

// owner is the candidate with the highest rendezvous weight for node.
func owner(node string, candidates []string) string {
	var best string
	var bestW uint64
	for _, c := range candidates {
		sum := sha256.Sum256([]byte(c + "\x00" + node))
		if w := binary.BigEndian.Uint64(sum[:8]); best == "" || w > bestW {
			best, bestW = c, w
		}
	}
	return best
}

// SerfUpdates returns the serfHealth writes of the nodes self runs, as
// Consul's leader marks members: passing ("Agent alive and reachable") on
// its own node, critical ("Agent not live or unreachable") on the nodes it
// took over. serf holds the serfHealth status each node has in the catalog;
// a node without one (not registered as an agent) gets no write.
func SerfUpdates(self string, owned []string, serf map[string]Result) []Update {
	var out []Update
	for _, node := range owned {
		cur, ok := serf[node]
		if !ok {
			continue
		}
		want := Result{Status: catalog.StatusCritical, Output: SerfFailedOutput}
		if node == self {
			want = Result{Status: catalog.StatusPassing, Output: SerfAliveOutput}
		}
		if cur != want {
			out = append(out, Update{Key: Key{Node: node, CheckID: catalog.SerfCheckID}, Result: want})
		}
	}
	return out
}

// Consul's outputs of the serfHealth check.
const (
	SerfAliveOutput  = "Agent alive and reachable"
	SerfFailedOutput = "Agent not live or unreachable"
)
