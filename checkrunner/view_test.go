package checkrunner

import (
	"encoding/json"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/catalog"
)

func checkKV(t *testing.T, node, id, status string, rev int64) *mvccpb.KeyValue {
	b, err := json.Marshal(catalog.Check{Node: node, CheckID: id, Status: status, Type: "http"})
	if err != nil {
		t.Fatal(err)
	}
	return &mvccpb.KeyValue{Key: []byte(catalog.CheckKey(node, id)), Value: b, ModRevision: rev}
}

func TestViewIgnoresEventsOlderThanItsRead(t *testing.T) {
	v := newView()
	v.load("m1", 20, []*mvccpb.KeyValue{checkKV(t, "m1", "c", catalog.StatusPassing, 15)})
	v.checkEvent(mvccpb.DELETE, &mvccpb.KeyValue{Key: []byte(catalog.CheckKey("m1", "c")), ModRevision: 12})
	v.checkEvent(mvccpb.PUT, checkKV(t, "m1", "c", catalog.StatusCritical, 18))
	v.checkEvent(mvccpb.PUT, checkKV(t, "m9", "c", catalog.StatusCritical, 30)) // a node not loaded
	if got := v.specs([]string{"m1", "m9"}); len(got) != 1 || got[0].Current.Status != catalog.StatusPassing {
		t.Fatalf("after events older than the read: %+v, want the read's passing check alone", got)
	}
	v.checkEvent(mvccpb.PUT, checkKV(t, "m1", "c", catalog.StatusWarning, 21))
	if got := v.specs([]string{"m1"}); len(got) != 1 || got[0].Current.Status != catalog.StatusWarning || got[0].Rev != 21 {
		t.Fatalf("after a newer event: %+v", got)
	}
	v.checkEvent(mvccpb.DELETE, &mvccpb.KeyValue{Key: []byte(catalog.CheckKey("m1", "c")), ModRevision: 22})
	if got := v.specs([]string{"m1"}); len(got) != 0 {
		t.Fatalf("after a newer delete: %+v", got)
	}
}

func TestViewRunnersAndSerf(t *testing.T) {
	v := newView()
	v.runnerEvent(mvccpb.PUT, &mvccpb.KeyValue{Key: []byte(RunnerKey("m/0"))})
	v.runnerEvent(mvccpb.PUT, &mvccpb.KeyValue{Key: []byte(RunnerKey("m1"))})
	v.runnerEvent(mvccpb.DELETE, &mvccpb.KeyValue{Key: []byte(RunnerKey("m1"))})
	if got := v.liveNames(); len(got) != 1 || got[0] != "m/0" {
		t.Fatalf("live runners %v, want m/0", got)
	}
	v.load("m1", 5, []*mvccpb.KeyValue{checkKV(t, "m1", catalog.SerfCheckID, catalog.StatusPassing, 3)})
	if got := v.serf(); len(got) != 1 || got["m1"].Status != catalog.StatusPassing {
		t.Fatalf("serf = %v", got)
	}
}
