package checkrunner

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/catalog"
	"github.com/synod-db/synod/healthcheck"
)

// RunnerPrefix holds one key per running runner, /consul/runner/<node>,
// on the runner's lease.
const RunnerPrefix = catalog.Root + "runner/"

// view is what the runner knows of the store: the members (agent nodes),
// the live runners, and the checks of the agent nodes it has loaded.
type view struct {
	agents []string
	live   map[string]bool
	loaded map[string]int64                       // node → the revision its checks were read at
	checks map[string]map[string]healthcheck.Spec // node → check key → spec
}

func newView() *view {
	return &view{live: map[string]bool{}, loaded: map[string]int64{}, checks: map[string]map[string]healthcheck.Spec{}}
}

// liveNames are the live runners, sorted.
func (v *view) liveNames() []string {
	out := make([]string, 0, len(v.live))
	for n := range v.live {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RunnerKey is the runner key of node.
func RunnerKey(node string) string { return RunnerPrefix + url.PathEscape(node) }

// runnerEvent applies a put or delete of a runner key.
func (v *view) runnerEvent(typ mvccpb.Event_EventType, kv *mvccpb.KeyValue) {
	node, err := url.PathUnescape(strings.TrimPrefix(string(kv.Key), RunnerPrefix))
	if err != nil {
		return // not a key this package wrote
	}
	if typ == mvccpb.DELETE {
		delete(v.live, node)
		return
	}
	v.live[node] = true
}

// load records a node's checks as read at rev.
func (v *view) load(node string, rev int64, kvs []*mvccpb.KeyValue) {
	v.loaded[node] = rev
	v.checks[node] = map[string]healthcheck.Spec{}
	for _, kv := range kvs {
		if sp, ok := specOf(node, kv); ok {
			v.checks[node][string(kv.Key)] = sp
		}
	}
}

// checkEvent applies a put or delete of a check document of a loaded node,
// unless the node was read at or after the event's revision.
func (v *view) checkEvent(typ mvccpb.Event_EventType, kv *mvccpb.KeyValue) {
	node, ok := catalog.NodeOfKey(string(kv.Key))
	if !ok {
		return
	}
	at, loaded := v.loaded[node]
	if !loaded || kv.ModRevision <= at {
		return
	}
	if typ == mvccpb.DELETE {
		delete(v.checks[node], string(kv.Key))
		return
	}
	if sp, ok := specOf(node, kv); ok {
		v.checks[node][string(kv.Key)] = sp
	}
}

// specOf decodes a check document; a document that does not decode is
// skipped (the catalog wrote it, so this does not happen).
func specOf(node string, kv *mvccpb.KeyValue) (healthcheck.Spec, bool) {
	var c catalog.Check
	if err := json.Unmarshal(kv.Value, &c); err != nil {
		return healthcheck.Spec{}, false
	}
	return healthcheck.Spec{Key: healthcheck.Key{Node: node, CheckID: c.CheckID}, ServiceID: c.ServiceID,
		Type: c.Type, Def: c.Definition, Current: healthcheck.Result{Status: c.Status, Output: c.Output},
		Rev: kv.ModRevision}, true
}

// specs are the checks of nodes.
func (v *view) specs(nodes []string) []healthcheck.Spec {
	var out []healthcheck.Spec
	for _, n := range nodes {
		for _, sp := range v.checks[n] {
			out = append(out, sp)
		}
	}
	return out
}

// serf is the serfHealth status of each loaded node that has one.
func (v *view) serf() map[string]healthcheck.Result {
	out := map[string]healthcheck.Result{}
	for n, cs := range v.checks {
		if sp, ok := cs[catalog.CheckKey(n, catalog.SerfCheckID)]; ok {
			out[n] = sp.Current
		}
	}
	return out
}
