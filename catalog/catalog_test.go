package catalog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKeysEscapeSeparators(t *testing.T) {
	k := ServiceKey("node/a", "svc/1")
	if k != "/consul/catalog/service/node%2Fa/svc%2F1" {
		t.Fatalf("ServiceKey = %q", k)
	}
	if n, ok := NodeOfKey(k); !ok || n != "node/a" {
		t.Fatalf("NodeOfKey(%q) = %q, %v", k, n, ok)
	}
	if !strings.HasPrefix(k, NodeServicesPrefix("node/a")) || strings.HasPrefix(ServiceKey("node/ab", "x"), NodeServicesPrefix("node/a")) {
		t.Fatal("a node's prefix must hold its services and no other node's")
	}
}

func TestDurationJSON(t *testing.T) {
	var d struct{ A, B, C Duration }
	if err := json.Unmarshal([]byte(`{"A":"1m30s","B":2000000000,"C":""}`), &d); err != nil {
		t.Fatal(err)
	}
	if time.Duration(d.A) != 90*time.Second || time.Duration(d.B) != 2*time.Second || d.C != 0 {
		t.Fatalf("decoded %+v", d)
	}
	b, _ := json.Marshal(d)
	if string(b) != `{"A":"1m30s","B":"2s","C":"0s"}` {
		t.Fatalf("encoded %s", b)
	}
	if err := json.Unmarshal([]byte(`{"A":"soon"}`), &d); err == nil {
		t.Fatal("a bad duration decoded")
	}
}

func register(t *testing.T, st *NodeState, body string) {
	t.Helper()
	var r ServiceRegistration
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	svc, checks, explicit, err := r.Build(st.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetService(svc, checks, explicit, DefaultLimits); err != nil {
		t.Fatal(err)
	}
}

func TestBuildDefaults(t *testing.T) {
	st := NewNodeState("n1")
	register(t, st, `{"Name":"web","Checks":[{"TTL":"10s"},{"HTTP":"http://x/","Interval":"5s","Status":"passing"}]}`)
	svc := st.Services["web"]
	if svc == nil || svc.Weights != (Weights{1, 1}) || svc.Tags == nil {
		t.Fatalf("service = %+v, want ID web, weights 1/1, empty tags", svc)
	}
	c1, c2 := st.Checks["service:web:1"], st.Checks["service:web:2"]
	if c1 == nil || c2 == nil {
		t.Fatalf("checks = %v, want service:web:1 and service:web:2", st.Checks)
	}
	if c1.Type != "ttl" || c1.Status != StatusCritical || c1.Name != "Service 'web' check" || c1.ServiceName != "web" {
		t.Fatalf("ttl check = %+v", c1)
	}
	if c2.Type != "http" || c2.Status != StatusPassing || time.Duration(c2.Definition.Interval) != 5*time.Second {
		t.Fatalf("http check = %+v", c2)
	}
	for body, want := range map[string]string{
		`{"Port":1}`: "Missing service name",
		`{"Name":"a","Check":{"TTL":"1s","Status":"ok"}}`: "Status for checks must",
		`{"Name":"a","Check":{"Notes":"no kind"}}`:        "Invalid check",
		`{"Name":"a","Check":{"HTTP":"http://x/"}}`:       "Interval must be > 0",
		`{"Name":"a","Weights":{"Passing":0}}`:            "Passing must be greater than 0",
	} {
		var r ServiceRegistration
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := r.Build("n1")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(Reason(err), want) {
			t.Errorf("%s: %v, want ErrInvalid %q", body, err, want)
		}
	}
}

func TestReregisterKeepsStatusAndDropsOldChecks(t *testing.T) {
	st := NewNodeState("n1")
	register(t, st, `{"Name":"web","Checks":[{"CheckID":"a","TTL":"10s"},{"CheckID":"b","TTL":"10s"}]}`)
	if err := st.UpdateTTL("a", StatusPassing, "fine", DefaultLimits); err != nil {
		t.Fatal(err)
	}
	register(t, st, `{"Name":"web","Check":{"CheckID":"a","TTL":"10s"}}`)
	if a := st.Checks["a"]; a == nil || a.Status != StatusPassing || a.Output != "fine" {
		t.Fatalf("check a after re-registration = %+v, want its passing status kept", a)
	}
	if _, ok := st.Checks["b"]; ok {
		t.Fatal("check b is not in the new registration but survived SetService")
	}
	register(t, st, `{"Name":"web","Check":{"CheckID":"a","TTL":"10s","Status":"warning"}}`)
	if st.Checks["a"].Status != StatusWarning {
		t.Fatal("an explicit status was not applied")
	}
}

func TestDiffWritesOnlyChanges(t *testing.T) {
	old := NewNodeState("n1")
	old.Node = &Node{Node: "n1", Address: "10.0.0.1"}
	next := old.Clone()
	register(t, next, `{"Name":"web","Tags":["a"],"Check":{"CheckID":"c","TTL":"10s"}}`)
	ws := Diff(old, next)
	keys := map[string]bool{}
	for _, w := range ws {
		keys[w.Key] = true
	}
	for _, k := range []string{ServiceKey("n1", "web"), ByNameKey("web", "n1", "web"), CheckKey("n1", "c")} {
		if !keys[k] {
			t.Errorf("diff lacks %s: %v", k, keys)
		}
	}
	if keys[NodeKey("n1")] || len(ws) != 3 {
		t.Fatalf("diff = %v, want the service, its by-name entry and its check only", keys)
	}
	batches := Chunk("n1", ws, 32)
	want := []string{IndexChecks, NodeIndexKey("n1"), IndexServices, NameIndexKey("web")}
	if len(batches) != 1 || strings.Join(batches[0].Indexes, ",") != strings.Join(sorted(want), ",") {
		t.Fatalf("batches = %+v, want one putting %v", batches, want)
	}

	// the same TTL status again changes nothing
	same := next.Clone()
	if err := same.UpdateTTL("c", StatusCritical, "", DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if d := Diff(next, same); len(d) != 0 {
		t.Fatalf("an unchanged check status wrote %v", d)
	}
	// a rename moves the by-name entry
	renamed := next.Clone()
	renamed.Services["web"].Service = "api"
	d := Diff(next, renamed)
	var del, put bool
	for _, w := range d {
		del = del || (w.Key == ByNameKey("web", "n1", "web") && w.Delete)
		put = put || (w.Key == ByNameKey("api", "n1", "web") && !w.Delete)
	}
	if !del || !put {
		t.Fatalf("rename diff = %+v, want the old by-name entry deleted and the new one put", d)
	}
	// removing the node deletes everything it held
	gone := next.Clone()
	gone.RemoveNode()
	for _, w := range Diff(next, gone) {
		if !w.Delete {
			t.Fatalf("node removal put %s", w.Key)
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestChunkKeepsByNameWithItsService(t *testing.T) {
	old, next := NewNodeState("n"), NewNodeState("n")
	for _, id := range []string{"a", "b", "c"} {
		next.Services[id] = &Service{ID: id, Service: "s"}
	}
	batches := Chunk("n", Diff(old, next), 3)
	if len(batches) != 2 || len(batches[0].Writes) != 4 || len(batches[1].Writes) != 2 {
		t.Fatalf("batches of %v", batches)
	}
	for _, b := range batches {
		if b.Indexes[0] != NodeIndexKey("n") && !contains(b.Indexes, NodeIndexKey("n")) {
			t.Fatalf("a batch does not put the node's index key: %v", b.Indexes)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestLimitsAndTTL(t *testing.T) {
	st := NewNodeState("n")
	lim := Limits{ServicesPerNode: 1, ChecksPerService: 1, CheckOutputBytes: 4}
	if err := st.SetService(&Service{ID: "a", Service: "a"}, nil, nil, lim); err != nil {
		t.Fatal(err)
	}
	if err := st.SetService(&Service{ID: "b", Service: "b"}, nil, nil, lim); !errors.Is(err, ErrLimit) {
		t.Fatalf("second service on a node of limit 1: %v", err)
	}
	two := []*Check{{CheckID: "x", Type: "ttl"}, {CheckID: "y", Type: "ttl"}}
	if err := st.SetService(&Service{ID: "a", Service: "a"}, two, nil, lim); !errors.Is(err, ErrLimit) {
		t.Fatalf("two checks on a service of limit 1: %v", err)
	}
	if err := st.SetCheck(&Check{CheckID: "x", Type: "ttl", ServiceID: "nope"}, false, lim); !errors.Is(err, ErrInvalid) {
		t.Fatalf("check of a missing service: %v", err)
	}
	if err := st.SetCheck(&Check{CheckID: "h", Type: "http"}, false, lim); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateTTL("h", StatusPassing, "", lim); !errors.Is(err, ErrNotFound) || Reason(err) != `CheckID "h" does not have associated TTL` {
		t.Fatalf("TTL update of an http check: %v", err)
	}
	if err := st.SetCheck(&Check{CheckID: "t", Type: "ttl"}, false, lim); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateTTL("t", StatusWarning, "abcdefgh", lim); err != nil {
		t.Fatal(err)
	}
	if got := st.Checks["t"].Output; got != "abcd ... (captured 4 of 8 bytes)" {
		t.Fatalf("output = %q", got)
	}
}

func TestHealth(t *testing.T) {
	pass, warn, crit := &Check{Status: StatusPassing}, &Check{Status: StatusWarning}, &Check{Status: StatusCritical}
	for _, tc := range []struct {
		checks []*Check
		agg    string
		all    bool
	}{
		{nil, StatusPassing, true},
		{[]*Check{pass, pass}, StatusPassing, true},
		{[]*Check{pass, warn}, StatusWarning, false},
		{[]*Check{warn, crit, pass}, StatusCritical, false},
		{[]*Check{{Status: StatusMaint}}, StatusCritical, false},
	} {
		if got := Aggregate(tc.checks); got != tc.agg {
			t.Errorf("Aggregate = %s, want %s", got, tc.agg)
		}
		if got := AllPassing(tc.checks); got != tc.all {
			t.Errorf("AllPassing = %v, want %v", got, tc.all)
		}
	}
	n := &Node{Meta: map[string]string{"rack": "r1", "os": "linux"}}
	if !HasNodeMeta(n, map[string]string{"rack": "r1"}) || HasNodeMeta(n, map[string]string{"rack": "r2"}) ||
		HasNodeMeta(n, map[string]string{"zone": ""}) || !HasNodeMeta(n, nil) {
		t.Fatal("HasNodeMeta")
	}
	s := &Service{Tags: []string{"Primary", "v1"}}
	if !HasTags(s, []string{"primary", "V1"}) || HasTags(s, []string{"v2"}) || !HasTags(s, nil) {
		t.Fatal("HasTags")
	}
}

func TestFilter(t *testing.T) {
	es := []*ServiceEntry{
		{Node: &Node{Node: "a"}, Service: &Service{ID: "1", Tags: []string{"v1"}, Meta: map[string]string{"zone": "x"}}},
		{Node: &Node{Node: "b"}, Service: &Service{ID: "2", Tags: []string{"v2"}}},
	}
	for expr, want := range map[string]string{
		`Service.Tags contains "v1"`:             "1",
		`Node.Node == "b"`:                       "2",
		`Service.Meta.zone == "x"`:               "1",
		`Service.ID != "1" and Node.Node == "b"`: "2",
		``:                                       "12",
	} {
		got, err := Filter(expr, es)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		ids := ""
		for _, e := range got {
			ids += e.Service.ID
		}
		if ids != want {
			t.Errorf("%s: %s, want %s", expr, ids, want)
		}
	}
	if _, err := Filter(`Service.Tags contains`, es); !errors.Is(err, ErrInvalid) || !strings.HasPrefix(Reason(err), "Failed to create boolean expression evaluator") {
		t.Fatalf("a bad filter: %v", err)
	}
}

func TestSegmentEscapingRoundTrips(t *testing.T) {
	for _, s := range []string{"a", "a/b", "%2F", "a%/b%25", "ü ünïcode/ 1"} {
		if got := unseg(seg(s)); got != s || strings.Contains(seg(s), "/") {
			t.Errorf("seg(%q) = %q, back %q", s, seg(s), got)
		}
	}
	if seg("a/b") == seg("a%2Fb") {
		t.Fatal("two names share an escaped form")
	}
}

func TestEmptyListsAreNotNull(t *testing.T) {
	st := NewNodeState("n")
	if err := st.SetService(&Service{ID: "a", Service: "a"}, []*Check{{CheckID: "c", Type: "ttl"}}, nil, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st.Services["a"])
	c, _ := json.Marshal(st.Checks["c"])
	if !strings.Contains(string(b), `"Tags":[],"Meta":{}`) || !strings.Contains(string(c), `"ServiceTags":[]`) {
		t.Fatalf("service %s, check %s: want empty lists and maps, not null", b, c)
	}
}
