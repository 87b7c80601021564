package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// checkClusterInfo runs `endpoint health`, `endpoint status`, `endpoint
// hashkv` and `member list` in several output formats and checks their shape
// and values against the cluster's actual configuration. Values that
// legitimately differ between clusters (IDs, sizes, timings, versions) are
// checked for sanity, not equality with etcd.
func checkClusterInfo(t *testing.T, cl *Cluster) {
	eps := cl.Endpoints()
	cl.WaitConverged(30 * time.Second)

	run := func(t *testing.T, args ...string) string {
		t.Helper()
		stdout, stderr, code := etcdctl(t, eps, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("etcdctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}

	// Expected values, from the harness's own view of the cluster.
	wantEps := slices.Clone(eps)
	slices.Sort(wantEps)
	byEndpoint := map[string]*Member{}
	for _, m := range cl.Members {
		byEndpoint[m.Endpoint] = m
	}
	cli := newClient(t, eps...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gr, err := cli.Get(ctx, "e2e-info-probe")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	curRev := gr.Header.Revision

	t.Run("endpoint-health", func(t *testing.T) {
		out := run(t, "endpoint", "health")
		re := regexp.MustCompile(`^(\S+) is healthy: successfully committed proposal: took = (\S+)$`)
		var got []string
		for _, l := range lines(out) {
			m := re.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("endpoint health line %q does not match %v", l, re)
				continue
			}
			if d, err := time.ParseDuration(m[2]); err != nil || d <= 0 {
				t.Errorf("endpoint health: bad took %q in %q", m[2], l)
			}
			got = append(got, m[1])
		}
		slices.Sort(got)
		if !slices.Equal(got, wantEps) {
			t.Errorf("endpoint health reported endpoints %v, want %v\n%s", got, wantEps, out)
		}

		out = run(t, "endpoint", "health", "-w", "json")
		var hs []struct {
			Endpoint string `json:"endpoint"`
			Health   bool   `json:"health"`
			Took     string `json:"took"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &hs); err != nil {
			t.Fatalf("endpoint health -w json: %v\n%s", err, out)
		}
		got = nil
		for _, h := range hs {
			if !h.Health || h.Error != "" || h.Took == "" {
				t.Errorf("endpoint health -w json: unhealthy entry %+v", h)
			}
			got = append(got, h.Endpoint)
		}
		slices.Sort(got)
		if !slices.Equal(got, wantEps) {
			t.Errorf("endpoint health -w json endpoints %v, want %v", got, wantEps)
		}

		// --cluster discovers the endpoints from member list's client URLs.
		out = run(t, "endpoint", "health", "--cluster")
		got = nil
		for _, l := range lines(out) {
			m := re.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("endpoint health --cluster line %q does not match %v", l, re)
				continue
			}
			got = append(got, strings.TrimPrefix(m[1], "http://"))
		}
		slices.Sort(got)
		if !slices.Equal(got, wantEps) {
			t.Errorf("endpoint health --cluster endpoints %v, want %v\n%s", got, wantEps, out)
		}

		out = run(t, "endpoint", "health", "-w", "table")
		checkTable(t, "endpoint health -w table", out, []string{"ENDPOINT", "HEALTH", "TOOK", "ERROR"}, len(eps))
	})

	ids := map[string]uint64{} // endpoint -> member ID, from endpoint status
	var clusterID, leaderID uint64
	t.Run("endpoint-status", func(t *testing.T) {
		out := run(t, "endpoint", "status")
		leaders := 0
		var got []string
		var term string
		for _, l := range lines(out) {
			f := strings.Split(l, ", ")
			// ENDPOINT, ID, VERSION, STORAGE VERSION, DB SIZE, IN USE, PERCENTAGE NOT IN USE, QUOTA,
			// IS LEADER, IS LEARNER, RAFT TERM, RAFT INDEX, RAFT APPLIED INDEX, ERRORS,
			// DOWNGRADE TARGET VERSION, DOWNGRADE ENABLED
			if len(f) != 16 {
				t.Errorf("endpoint status line has %d columns, want 16: %q", len(f), l)
				continue
			}
			got = append(got, f[0])
			if _, err := strconv.ParseUint(f[1], 16, 64); err != nil || f[1] == "0" {
				t.Errorf("endpoint status %s: bad member ID %q", f[0], f[1])
			}
			if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(f[2]) {
				t.Errorf("endpoint status %s: bad version %q", f[0], f[2])
			}
			for _, col := range []int{4, 5, 7} {
				if !regexp.MustCompile(`^\d+(\.\d+)? [kMGTP]?B$`).MatchString(f[col]) {
					t.Errorf("endpoint status %s: column %d = %q is not a byte size", f[0], col, f[col])
				}
			}
			if !regexp.MustCompile(`^\d+%$`).MatchString(f[6]) {
				t.Errorf("endpoint status %s: bad percentage %q", f[0], f[6])
			}
			switch f[8] {
			case "true":
				leaders++
			case "false":
			default:
				t.Errorf("endpoint status %s: IS LEADER = %q", f[0], f[8])
			}
			if f[9] != "false" {
				t.Errorf("endpoint status %s: IS LEARNER = %q, want false", f[0], f[9])
			}
			if term == "" {
				term = f[10]
			} else if f[10] != term {
				t.Errorf("endpoint status: members disagree on the raft term: %q vs %q", term, f[10])
			}
			tn, err1 := strconv.ParseUint(f[10], 10, 64)
			idx, err2 := strconv.ParseUint(f[11], 10, 64)
			applied, err3 := strconv.ParseUint(f[12], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil || tn == 0 || idx == 0 || applied == 0 || applied > idx {
				t.Errorf("endpoint status %s: bad raft term/index/applied index %q/%q/%q", f[0], f[10], f[11], f[12])
			}
			if f[13] != "" || f[14] != "" || f[15] != "false" {
				t.Errorf("endpoint status %s: errors/downgrade columns %q %q %q, want \"\" \"\" false", f[0], f[13], f[14], f[15])
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, wantEps) {
			t.Errorf("endpoint status endpoints %v, want %v\n%s", got, wantEps, out)
		}
		if leaders != 1 {
			t.Errorf("endpoint status: %d members say they are leader, want 1\n%s", leaders, out)
		}

		out = run(t, "endpoint", "status", "-w", "json")
		var sts []struct {
			Endpoint string `json:"Endpoint"`
			Status   struct {
				Header struct {
					ClusterID uint64 `json:"cluster_id"`
					MemberID  uint64 `json:"member_id"`
					Revision  int64  `json:"revision"`
					RaftTerm  uint64 `json:"raft_term"`
				} `json:"header"`
				Version          string `json:"version"`
				DbSize           int64  `json:"dbSize"`
				Leader           uint64 `json:"leader"`
				RaftIndex        uint64 `json:"raftIndex"`
				RaftTerm         uint64 `json:"raftTerm"`
				RaftAppliedIndex uint64 `json:"raftAppliedIndex"`
				DbSizeInUse      int64  `json:"dbSizeInUse"`
				IsLearner        bool   `json:"isLearner"`
				DbSizeQuota      int64  `json:"dbSizeQuota"`
			} `json:"Status"`
		}
		if err := json.Unmarshal([]byte(out), &sts); err != nil {
			t.Fatalf("endpoint status -w json: %v\n%s", err, out)
		}
		if len(sts) != len(eps) {
			t.Fatalf("endpoint status -w json: %d entries, want %d\n%s", len(sts), len(eps), out)
		}
		for _, s := range sts {
			h := s.Status.Header
			m := byEndpoint[s.Endpoint]
			if m == nil {
				t.Errorf("endpoint status -w json: unknown endpoint %q", s.Endpoint)
				continue
			}
			ids[s.Endpoint] = h.MemberID
			if h.MemberID == 0 || (m.ID != 0 && h.MemberID != m.ID) {
				t.Errorf("endpoint status %s: member_id %x, Status says %x", s.Endpoint, h.MemberID, m.ID)
			}
			if clusterID == 0 {
				clusterID = h.ClusterID
			}
			if h.ClusterID == 0 || h.ClusterID != clusterID {
				t.Errorf("endpoint status %s: cluster_id %x (others %x)", s.Endpoint, h.ClusterID, clusterID)
			}
			if leaderID == 0 {
				leaderID = s.Status.Leader
			}
			if s.Status.Leader == 0 || s.Status.Leader != leaderID {
				t.Errorf("endpoint status %s: leader %x (others %x)", s.Endpoint, s.Status.Leader, leaderID)
			}
			if h.Revision != curRev {
				t.Errorf("endpoint status %s: header revision %d, want the cluster's revision %d", s.Endpoint, h.Revision, curRev)
			}
			if h.RaftTerm == 0 || h.RaftTerm != s.Status.RaftTerm {
				t.Errorf("endpoint status %s: header raft_term %d vs raftTerm %d", s.Endpoint, h.RaftTerm, s.Status.RaftTerm)
			}
			if s.Status.DbSize <= 0 || s.Status.DbSizeInUse <= 0 || s.Status.DbSizeInUse > s.Status.DbSize {
				t.Errorf("endpoint status %s: dbSize %d dbSizeInUse %d", s.Endpoint, s.Status.DbSize, s.Status.DbSizeInUse)
			}
			if s.Status.DbSizeQuota != 2<<30 {
				t.Errorf("endpoint status %s: dbSizeQuota %d, want the 2 GiB default %d", s.Endpoint, s.Status.DbSizeQuota, 2<<30)
			}
			if s.Status.RaftIndex == 0 || s.Status.RaftAppliedIndex == 0 || s.Status.RaftAppliedIndex > s.Status.RaftIndex {
				t.Errorf("endpoint status %s: raftIndex %d raftAppliedIndex %d", s.Endpoint, s.Status.RaftIndex, s.Status.RaftAppliedIndex)
			}
			if s.Status.IsLearner {
				t.Errorf("endpoint status %s: isLearner", s.Endpoint)
			}
		}
		found := false
		for _, id := range ids {
			found = found || id == leaderID
		}
		if !found {
			t.Errorf("endpoint status: leader %x is none of the members %v", leaderID, ids)
		}

		out = run(t, "endpoint", "status", "-w", "table")
		checkTable(t, "endpoint status -w table", out, []string{"ENDPOINT", "ID", "VERSION", "STORAGE VERSION", "DB SIZE",
			"IN USE", "PERCENTAGE NOT IN USE", "QUOTA", "IS LEADER", "IS LEARNER", "RAFT TERM", "RAFT INDEX",
			"RAFT APPLIED INDEX", "ERRORS", "DOWNGRADE TARGET VERSION", "DOWNGRADE ENABLED"}, len(eps))

		out = run(t, "endpoint", "status", "-w", "fields")
		if n := strings.Count(out, `"Endpoint" : `); n != len(eps) {
			t.Errorf("endpoint status -w fields: %d endpoints, want %d\n%s", n, len(eps), out)
		}
	})

	t.Run("member-list", func(t *testing.T) {
		out := run(t, "member", "list")
		var names []string
		for _, l := range lines(out) {
			f := strings.Split(l, ", ")
			// ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER
			if len(f) != 6 {
				t.Errorf("member list line has %d columns, want 6: %q", len(f), l)
				continue
			}
			m := cl.memberByName(f[2])
			if m == nil {
				t.Errorf("member list: unknown member name %q in %q", f[2], l)
				continue
			}
			names = append(names, f[2])
			if id, ok := ids[m.Endpoint]; ok && f[0] != strconv.FormatUint(id, 16) {
				t.Errorf("member list: %s has ID %s, endpoint status says %x", f[2], f[0], id)
			}
			if f[1] != "started" || f[3] != m.PeerURL || f[4] != m.ClientURL || f[5] != "false" {
				t.Errorf("member list line %q, want \"<id>, started, %s, %s, %s, false\"", l, m.Name, m.PeerURL, m.ClientURL)
			}
		}
		slices.Sort(names)
		if want := cl.memberNames(); !slices.Equal(names, want) {
			t.Errorf("member list names %v, want %v\n%s", names, want, out)
		}

		out = run(t, "member", "list", "-w", "json")
		var ml struct {
			Header struct {
				ClusterID uint64 `json:"cluster_id"`
				MemberID  uint64 `json:"member_id"`
				RaftTerm  uint64 `json:"raft_term"`
				Revision  int64  `json:"revision"`
			} `json:"header"`
			Members []struct {
				ID         uint64   `json:"ID"`
				Name       string   `json:"name"`
				PeerURLs   []string `json:"peerURLs"`
				ClientURLs []string `json:"clientURLs"`
				IsLearner  bool     `json:"isLearner"`
			} `json:"members"`
		}
		if err := json.Unmarshal([]byte(out), &ml); err != nil {
			t.Fatalf("member list -w json: %v\n%s", err, out)
		}
		if ml.Header.ClusterID == 0 || (clusterID != 0 && ml.Header.ClusterID != clusterID) {
			t.Errorf("member list -w json: cluster_id %x, endpoint status says %x", ml.Header.ClusterID, clusterID)
		}
		if ml.Header.MemberID == 0 || ml.Header.RaftTerm == 0 {
			t.Errorf("member list -w json: header %+v lacks member_id or raft_term", ml.Header)
		}
		// etcd leaves the revision out of cluster responses.
		if ml.Header.Revision != 0 {
			t.Errorf("member list -w json: header revision %d, etcd sends none", ml.Header.Revision)
		}
		if len(ml.Members) != len(cl.Members) {
			t.Fatalf("member list -w json: %d members, want %d\n%s", len(ml.Members), len(cl.Members), out)
		}
		for _, mm := range ml.Members {
			m := cl.memberByName(mm.Name)
			if m == nil {
				t.Errorf("member list -w json: unknown member %q", mm.Name)
				continue
			}
			if id, ok := ids[m.Endpoint]; ok && mm.ID != id {
				t.Errorf("member list -w json: %s ID %x, endpoint status says %x", mm.Name, mm.ID, id)
			}
			if !slices.Equal(mm.PeerURLs, []string{m.PeerURL}) || !slices.Equal(mm.ClientURLs, []string{m.ClientURL}) || mm.IsLearner {
				t.Errorf("member list -w json: %+v, want peer %s client %s", mm, m.PeerURL, m.ClientURL)
			}
		}

		out = run(t, "member", "list", "-w", "table")
		checkTable(t, "member list -w table", out, []string{"ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"}, len(cl.Members))

		out = run(t, "member", "list", "--hex", "-w", "json")
		if !regexp.MustCompile(`"cluster_id":"[0-9a-f]+","member_id":"[0-9a-f]+"`).MatchString(out) {
			t.Errorf("member list --hex -w json: no hex header IDs in\n%s", out)
		}
	})

	// The values the golden transcripts normalize must still be right: every
	// response header names the cluster, the member that served it and the
	// current term.
	defer t.Run("response-headers", func(t *testing.T) {
		for _, m := range cl.Members {
			cli := m.client(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := cli.Status(ctx, m.Endpoint)
			if err != nil {
				t.Fatalf("%s status: %v", m.Name, err)
			}
			check := func(what string, h *pb.ResponseHeader, wantRev int64) {
				t.Helper()
				if h == nil {
					t.Errorf("%s via %s: no header", what, m.Name)
					return
				}
				if h.ClusterId != clusterID || h.MemberId != m.ID || h.RaftTerm != st.RaftTerm || (wantRev >= 0 && h.Revision != wantRev) {
					t.Errorf("%s via %s: header {cluster_id:%x member_id:%x revision:%d raft_term:%d}, want {cluster_id:%x member_id:%x revision:%d raft_term:%d}",
						what, m.Name, h.ClusterId, h.MemberId, h.Revision, h.RaftTerm, clusterID, m.ID, wantRev, st.RaftTerm)
				}
			}
			check("Status", st.Header, -1)
			key := "hdr/" + m.Name
			pr, err := cli.Put(ctx, key, "v")
			if err != nil {
				t.Fatalf("put via %s: %v", m.Name, err)
			}
			rev := pr.Header.Revision
			check("Put", pr.Header, rev)
			gr, err := cli.Get(ctx, key)
			if err != nil {
				t.Fatalf("get via %s: %v", m.Name, err)
			}
			check("Get", gr.Header, rev)
			tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(key), "=", 1)).Then(clientv3.OpGet(key)).Commit()
			if err != nil {
				t.Fatalf("txn via %s: %v", m.Name, err)
			}
			check("Txn", tr.Header, rev)
			if rr := tr.Responses[0].GetResponseRange(); rr == nil || rr.Header == nil || rr.Header.Revision != rev || rr.Header.ClusterId != 0 || rr.Header.MemberId != 0 || rr.Header.RaftTerm != 0 {
				t.Errorf("Txn via %s: inner range header %v, want only revision %d (as etcd)", m.Name, rr.GetHeader(), rev)
			}
			dr, err := cli.Delete(ctx, key)
			if err != nil {
				t.Fatalf("delete via %s: %v", m.Name, err)
			}
			check("Delete", dr.Header, rev+1)
			ml, err := cli.MemberList(ctx)
			if err != nil {
				t.Fatalf("member list via %s: %v", m.Name, err)
			}
			check("MemberList", ml.Header, 0)
			ar, err := cli.AlarmList(ctx)
			if err != nil {
				t.Fatalf("alarm list via %s: %v", m.Name, err)
			}
			check("AlarmList", ar.Header, -1)
			if len(ar.Alarms) != 0 {
				t.Errorf("alarm list via %s: %v, want none", m.Name, ar.Alarms)
			}
		}
	})

	// All members hold the same keyspace, so their KV hashes at the same revision agree.
	t.Run("endpoint-hashkv", func(t *testing.T) {
		out := run(t, "endpoint", "hashkv", "-w", "json")
		var hs []struct {
			Endpoint string `json:"Endpoint"`
			HashKV   struct {
				Header struct {
					Revision int64 `json:"revision"`
				} `json:"header"`
				Hash            uint32 `json:"hash"`
				CompactRevision int64  `json:"compact_revision"`
				HashRevision    int64  `json:"hash_revision"`
			} `json:"HashKV"`
		}
		if err := json.Unmarshal([]byte(out), &hs); err != nil {
			t.Fatalf("endpoint hashkv -w json: %v\n%s", err, out)
		}
		if len(hs) != len(eps) {
			t.Fatalf("endpoint hashkv: %d entries, want %d\n%s", len(hs), len(eps), out)
		}
		for _, h := range hs[1:] {
			if h.HashKV.Hash != hs[0].HashKV.Hash || h.HashKV.HashRevision != hs[0].HashKV.HashRevision ||
				h.HashKV.CompactRevision != hs[0].HashKV.CompactRevision {
				t.Errorf("endpoint hashkv: members disagree:\n%s", out)
				break
			}
		}
		if hs[0].HashKV.HashRevision != curRev {
			t.Errorf("endpoint hashkv: hash_revision %d, want the current revision %d", hs[0].HashKV.HashRevision, curRev)
		}
	})
}

// checkMemberURLsNow checks, without waiting, that `member list` through
// every member shows each member with its peer and client URLs.
func checkMemberURLsNow(t *testing.T, cl *Cluster) {
	for _, via := range cl.Members {
		stdout, stderr, code := etcdctl(t, []string{via.Endpoint}, "member", "list", "-w", "json")
		if code != 0 {
			t.Fatalf("member list via %s: exit %d: %s%s", via.Name, code, stdout, stderr)
		}
		var ml struct {
			Members []struct {
				Name       string   `json:"name"`
				PeerURLs   []string `json:"peerURLs"`
				ClientURLs []string `json:"clientURLs"`
			} `json:"members"`
		}
		if err := json.Unmarshal([]byte(stdout), &ml); err != nil {
			t.Fatalf("member list -w json via %s: %v\n%s", via.Name, err, stdout)
		}
		got := map[string]string{}
		for _, mm := range ml.Members {
			got[mm.Name] = fmt.Sprintf("peer %v client %v", mm.PeerURLs, mm.ClientURLs)
		}
		for _, m := range cl.Members {
			if want := fmt.Sprintf("peer [%s] client [%s]", m.PeerURL, m.ClientURL); got[m.Name] != want {
				t.Errorf("member list via %s, as soon as all members serve: %s has %q, want %q", via.Name, m.Name, got[m.Name], want)
			}
		}
	}
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// checkTable checks a tablewriter table: the header names and the row count.
func checkTable(t *testing.T, what, out string, header []string, rows int) {
	t.Helper()
	var cells [][]string
	for _, l := range lines(out) {
		if !strings.HasPrefix(l, "│") {
			continue // border lines
		}
		var row []string
		for _, c := range strings.Split(strings.Trim(l, "│"), "│") {
			row = append(row, strings.TrimSpace(c))
		}
		cells = append(cells, row)
	}
	if len(cells) == 0 || !slices.Equal(cells[0], header) {
		t.Errorf("%s: header %v, want %v\n%s", what, firstRow(cells), header, out)
		return
	}
	if len(cells)-1 != rows {
		t.Errorf("%s: %d rows, want %d\n%s", what, len(cells)-1, rows, out)
	}
	for _, r := range cells[1:] {
		if len(r) != len(header) {
			t.Errorf("%s: row %v has %d cells, want %d", what, r, len(r), len(header))
		}
	}
}

func firstRow(cells [][]string) []string {
	if len(cells) == 0 {
		return nil
	}
	return cells[0]
}

func (c *Cluster) memberByName(name string) *Member {
	for _, m := range c.Members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

func (c *Cluster) memberNames() []string {
	var names []string
	for _, m := range c.Members {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}
