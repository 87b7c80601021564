package etcdhttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/metrics"
)

// fakeMember is a Member whose answers the test sets.
type fakeMember struct {
	leader, learner bool
	alarms          []*pb.AlarmMember
	readErr         error // returned by every read
	linErr          error // returned by linearizable reads only
}

func (f *fakeMember) HasLeader() bool           { return f.leader }
func (f *fakeMember) IsLearner() bool           { return f.learner }
func (f *fakeMember) Alarms() []*pb.AlarmMember { return f.alarms }
func (f *fakeMember) CheckRead(_ context.Context, serializable bool) error {
	if f.readErr != nil {
		return f.readErr
	}
	if !serializable {
		return f.linErr
	}
	return nil
}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestHealth(t *testing.T) {
	nospace := []*pb.AlarmMember{{MemberID: 1, Alarm: pb.AlarmType_NOSPACE}}
	for _, tc := range []struct {
		name     string
		m        fakeMember
		path     string
		wantCode int
		wantBody string
	}{
		{"healthy", fakeMember{leader: true}, "/health", 200, `{"health":"true","reason":""}`},
		{"no leader", fakeMember{}, "/health", 503, `{"health":"false","reason":"RAFT NO LEADER"}` + "\n"},
		{"no leader, serializable", fakeMember{}, "/health?serializable=true", 200, `{"health":"true","reason":""}`},
		{"nospace", fakeMember{leader: true, alarms: nospace}, "/health", 503, `{"health":"false","reason":"ALARM NOSPACE"}` + "\n"},
		{"nospace excluded", fakeMember{leader: true, alarms: nospace}, "/health?exclude=NOSPACE", 200, `{"health":"true","reason":""}`},
		{"read fails", fakeMember{leader: true, linErr: errors.New("etcdserver: request timed out")}, "/health", 503,
			`{"health":"false","reason":"RANGE ERROR:etcdserver: request timed out"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, NewHandler(&tc.m, Options{}), http.MethodGet, tc.path)
			if code != tc.wantCode || body != tc.wantBody {
				t.Fatalf("GET %s = %d %q, want %d %q", tc.path, code, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestLivezReadyz(t *testing.T) {
	for _, tc := range []struct {
		name     string
		m        fakeMember
		path     string
		wantCode int
		wantBody string
	}{
		{"livez", fakeMember{}, "/livez", 200, "ok\n"},
		{"livez read fails", fakeMember{readErr: errors.New("mvcc: store closed")}, "/livez", 503,
			"[-]serializable_read failed: mvcc: store closed\n\n"},
		{"readyz", fakeMember{leader: true}, "/readyz", 200, "ok\n"},
		{"readyz learner", fakeMember{leader: true, learner: true}, "/readyz/non_learner", 503,
			"[-]non_learner failed: not supported for learner\n\n"},
		{"readyz learner excluded", fakeMember{leader: true, learner: true}, "/readyz?exclude=non_learner", 200, "ok\n"},
		{"readyz verbose", fakeMember{leader: true}, "/readyz/linearizable_read?verbose", 200,
			"[+]linearizable_read ok\nok\n"},
		{"readyz no quorum", fakeMember{linErr: errors.New("etcdserver: no leader")}, "/readyz/linearizable_read", 503,
			"[-]linearizable_read failed: etcdserver: no leader\n\n"},
		{"readyz corrupt", fakeMember{alarms: []*pb.AlarmMember{{Alarm: pb.AlarmType_CORRUPT}}}, "/readyz/data_corruption", 503,
			"[-]data_corruption failed: alarm activated: CORRUPT\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, NewHandler(&tc.m, Options{}), http.MethodGet, tc.path)
			if code != tc.wantCode || body != tc.wantBody {
				t.Fatalf("GET %s = %d %q, want %d %q", tc.path, code, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestOnlyGet(t *testing.T) {
	h := NewHandler(&fakeMember{leader: true}, Options{})
	for _, p := range []string{"/health", "/livez", "/readyz", "/version"} {
		if code, _ := get(t, h, http.MethodPost, p); code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s = %d, want 405", p, code)
		}
	}
}

func TestMetricsAndPprofAreOptIn(t *testing.T) {
	h := NewHandler(&fakeMember{leader: true}, Options{})
	if code, _ := get(t, h, http.MethodGet, "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without a metric set = %d, want 404", code)
	}
	if code, _ := get(t, h, http.MethodGet, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without EnablePprof = %d, want 404", code)
	}
	ms := metrics.New()
	h = NewHandler(&fakeMember{}, Options{Metrics: ms, EnablePprof: true})
	get(t, h, http.MethodGet, "/health")
	code, body := get(t, h, http.MethodGet, "/metrics")
	if code != 200 || !strings.Contains(body, `etcd_server_healthchecks_total{name="health",status="error",type="health"} 1`) {
		t.Errorf("/metrics = %d, want the failed health check counted:\n%s", code, body)
	}
	if code, _ := get(t, h, http.MethodGet, "/debug/pprof/"); code != 200 {
		t.Errorf("/debug/pprof/ with EnablePprof = %d, want 200", code)
	}
}
