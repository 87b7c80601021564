package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The gateway test sends one script of HTTP requests (every path of etcd's
// JSON gateway, good and bad bodies) to member 0 of a fresh 3-member
// cluster of each kind, and compares the normalized transcript with
// testdata/gateway.golden, recorded from a real etcd 3.7.3 (-update).
//
// Normalized, besides what the etcdctl goldens normalize (nonzero
// cluster_id, member_id and raft_term): protojson's whitespace (it adds
// random spaces on purpose, per binary), member IDs (replaced by the index
// of the member they name), endpoints, and the Date and Content-Length
// headers. A step may mask named fields whose values legitimately differ
// between two clusters (a status's sizes, an auth token); the mask says so
// in the golden. Revisions are not normalized.

const gatewayGoldenHeader = "# HTTP transcript of etcd's JSON gateway, recorded from a 3-member etcd v3.7.3 cluster\n" +
	"# (--max-txn-ops=4 --max-request-bytes=1024), every request sent to member 0.\n" +
	"# Regenerate: go test ./tests/e2e/ -run 'TestGateway/etcd' -update\n" +
	"# Lines: '=== METHOD PATH' request, '> ' body sent, '< ' status and headers, '| ' body line.\n"

// hstep is one HTTP request of the gateway script.
type hstep struct {
	method, path, body string
	auth               string                   // a variable holding a token, sent as the Authorization header
	lines              int                      // a streaming response: read this many lines, then hang up
	mask               []string                 // JSON fields whose values are replaced by <field>
	capture            [2]string                // {variable, field}: keep the field's first value for ${variable} in later bodies
	byID               bool                     // a member list: check it is sorted by ID, show it sorted by member name
	knownDiff          string                   // why synod answers otherwise (docs/compatibility.md); compared only against etcd
	unordered          bool                     // a stream whose lines may come in either order (on etcd too): shown sorted
	via                string                   // "leader" or "follower": send to such a member instead of member 0
	sortField          string                   // a top-level array the server lists in no set order (etcd's lease list): shown sorted
	summary            func(line string) string // shows a line by what it must hold, where its bytes are the server's own
}

// post is a POST of body to path.
func post(path, body string) hstep { return hstep{method: http.MethodPost, path: path, body: body} }

// stream reads n lines of a streaming response.
func (s hstep) stream(n int) hstep { s.lines = n; return s }

// masking hides the values of the named fields.
func (s hstep) masking(f ...string) hstep { s.mask = append(s.mask, f...); return s }

// membersByID checks that a member list is sorted by member ID, as etcd
// sorts it, and shows it sorted by the members' names (IDs differ between
// two clusters, and so does their order).
func (s hstep) membersByID() hstep { s.byID = true; return s }

// inAnyOrder shows a stream's lines sorted: the server may send them in
// either order (etcd does).
func (s hstep) inAnyOrder() hstep { s.unordered = true; return s }

// summarized shows each line of the answer as f(line).
func (s hstep) summarized(f func(string) string) hstep { s.summary = f; return s }

// sorting shows the top-level array field sorted (its order is
// unspecified, and etcd's varies from run to run).
func (s hstep) sorting(field string) hstep { s.sortField = field; return s }

// toLeader sends the step to the leader.
func (s hstep) toLeader() hstep { s.via = "leader"; return s }

// toFollower sends the step to a member that is not the leader.
func (s hstep) toFollower() hstep { s.via = "follower"; return s }

// differs marks a step on which synod differs from etcd on purpose.
func (s hstep) differs(why string) hstep { s.knownDiff = why; return s }

// withToken sends the token in variable v as the Authorization header.
func (s hstep) withToken(v string) hstep { s.auth = v; return s }

// capturing keeps the first value of field in the response in variable v;
// later bodies use it as ${v}, and auth names it.
func (s hstep) capturing(v, field string) hstep { s.capture = [2]string{v, field}; return s }

// TestGateway compares etcd's JSON gateway on synod with the real one.
func TestGateway(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			checkUpdatable(t, kind)
			cl := startCluster(t, kind, 3, goldenClusterFlags...)
			cl.WaitConverged(30 * time.Second)
			steps := gatewaySteps()
			got := gatewayGoldenHeader + runGatewayScript(t, cl, steps)
			if recordGolden(t, kind, "gateway", got) {
				return
			}
			if kind == "synod" {
				got = acceptKnownDiffs(t, got, steps)
			}
			compareGolden(t, kind, "gateway", got)
		})
	}
}

// acceptKnownDiffs replaces, in synod's transcript, each step marked as a
// deliberate difference by etcd's, after logging both.
func acceptKnownDiffs(t *testing.T, got string, steps []hstep) string {
	want, err := os.ReadFile(goldenPath("gateway"))
	if err != nil {
		return got // compareGolden reports it
	}
	g, w := splitSteps(got), splitSteps(string(want))
	for i, s := range steps {
		if s.knownDiff == "" || i+1 >= len(g) || i+1 >= len(w) {
			continue
		}
		if g[i+1] != w[i+1] {
			t.Logf("known difference (%s):\n--- etcd:\n%s--- synod:\n%s", s.knownDiff, indent(w[i+1]), indent(g[i+1]))
		}
		g[i+1] = w[i+1]
	}
	return strings.Join(g, "\n")
}

// runGatewayScript runs steps in order against member 0 and returns the
// normalized transcript.
func runGatewayScript(t *testing.T, cl *Cluster, steps []hstep) string {
	vars := map[string]string{}
	var out strings.Builder
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, s := range steps {
		fmt.Fprintf(&out, "\n=== %s %s\n", s.method, s.path)
		if s.body != "" {
			fmt.Fprintf(&out, "> %s\n", abbreviate(s.body))
		}
		if s.auth != "" {
			fmt.Fprintf(&out, "> Authorization: <%s>\n", s.auth)
		}
		for k, v := range vars {
			s.body = strings.ReplaceAll(s.body, "${"+k+"}", v)
		}
		status, hdr, body, err := doGateway(hc, gatewayTarget(t, cl, s.via), s, vars[s.auth])
		if errors.Is(err, errNoAnswer) {
			fmt.Fprintf(&out, "! %v\n", err)
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", s.method, s.path, err)
			fmt.Fprintf(&out, "! %v\n", err)
			continue
		}
		if v, f := s.capture[0], s.capture[1]; v != "" {
			re := regexp.MustCompile(`"` + regexp.QuoteMeta(f) + `":\s*"([^"]+)"`)
			if m := re.FindStringSubmatch(body); m != nil {
				vars[v] = m[1]
			}
		}
		fmt.Fprintf(&out, "< %d\n", status)
		for _, h := range sortedHeaders(hdr) {
			fmt.Fprintf(&out, "< %s\n", h)
		}
		if s.byID {
			body = membersByName(t, cl, body)
		}
		if s.sortField != "" {
			body = sortArray(body, s.sortField)
		}
		if s.unordered {
			lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
			sort.Strings(lines)
			body = strings.Join(lines, "\n")
		}
		for _, l := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
			if l != "" && s.summary != nil {
				fmt.Fprintf(&out, "| %s\n", s.summary(l))
				continue
			}
			if l != "" {
				fmt.Fprintf(&out, "| %s\n", normalizeGatewayJSON(cl, l, s.mask))
			}
		}
	}
	return out.String()
}

// gatewayTarget is the client URL of the member a step goes to.
func gatewayTarget(t *testing.T, cl *Cluster, via string) string {
	if via == "" {
		return cl.Members[0].ClientURL
	}
	lead := cl.WaitLeader(30 * time.Second)
	for i, m := range cl.Members {
		if (via == "leader") == (i == lead) {
			return m.ClientURL
		}
	}
	t.Fatalf("no %s in the cluster", via)
	return ""
}

// streamWait is how long a streaming step waits for its lines; a stream
// that sends nothing in that time (etcd's answer to some bad requests) is
// recorded as errNoAnswer.
const streamWait = 3 * time.Second

var errNoAnswer = errors.New("no answer within the stream wait (the server holds the request open)")

// doGateway sends one request and reads its response: the whole body, or
// s.lines lines of a stream.
func doGateway(hc *http.Client, base string, s hstep, token string) (int, http.Header, string, error) {
	timeout := 20 * time.Second
	if s.lines > 0 {
		timeout = streamWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var body io.Reader
	if s.body != "" {
		body = strings.NewReader(s.body)
	}
	req, err := http.NewRequestWithContext(ctx, s.method, base+s.path, body)
	if err != nil {
		return 0, nil, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := hc.Do(req)
	if err != nil && s.lines > 0 && errors.Is(err, context.DeadlineExceeded) {
		return 0, nil, "", errNoAnswer
	}
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	if s.lines == 0 || resp.StatusCode != http.StatusOK {
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b), err
	}
	br := bufio.NewReader(resp.Body)
	var b strings.Builder
	for i := 0; i < s.lines; i++ {
		l, err := br.ReadString('\n')
		b.WriteString(l)
		if err != nil {
			return resp.StatusCode, resp.Header, b.String(), fmt.Errorf("stream line %d: %w", i+1, err)
		}
	}
	return resp.StatusCode, resp.Header, b.String(), nil
}

// sortedHeaders lists the response headers that both servers must agree
// on, as "Name: value" lines in order.
func sortedHeaders(h http.Header) []string {
	var out []string
	for k, vs := range h {
		if k == "Date" || k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			out = append(out, k+": "+v)
		}
	}
	sort.Strings(out)
	return out
}

var (
	gwIDRe     = regexp.MustCompile(`"(cluster_id|raft_term)":"([0-9]+)"`)
	gwMemberRe = regexp.MustCompile(`"(member_id|ID|leader|memberID)":"([0-9]+)"`)
)

// normalizeGatewayJSON compacts one JSON line and normalizes what differs
// between two clusters.
func normalizeGatewayJSON(cl *Cluster, line string, mask []string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(line)); err == nil {
		line = b.String()
	}
	// protobuf's error texts put a random no-break space after "proto:"
	// (per binary, on purpose, so that nobody depends on them).
	line = strings.ReplaceAll(line, "\u00a0", " ")
	line = gwIDRe.ReplaceAllStringFunc(line, func(m string) string {
		sm := gwIDRe.FindStringSubmatch(m)
		if isZero(sm[2]) {
			return m
		}
		return fmt.Sprintf("%q:%q", sm[1], "<"+sm[1]+">")
	})
	line = gwMemberRe.ReplaceAllStringFunc(line, func(m string) string {
		sm := gwMemberRe.FindStringSubmatch(m)
		id, _ := strconv.ParseUint(sm[2], 10, 64)
		if i := cl.memberByID(id); i >= 0 {
			return fmt.Sprintf("%q:%q", sm[1], "<"+cl.Members[i].Name+">")
		}
		return m
	})
	for _, f := range mask {
		re := regexp.MustCompile(`"` + regexp.QuoteMeta(f) + `":("(\\.|[^"\\])*"|[0-9.eE+-]+|true|false)`)
		line = re.ReplaceAllString(line, fmt.Sprintf("%q:%q", f, "<"+f+">"))
	}
	for _, m := range cl.Members {
		line = strings.ReplaceAll(line, m.PeerURL, "<"+m.Name+"-peer>")
	}
	return cl.normalizeEndpoints(line)
}

// membersByName checks that the members of a member list response are in
// ascending ID order and returns the response with them sorted by name.
func membersByName(t *testing.T, cl *Cluster, body string) string {
	var resp map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return body
	}
	var ms []map[string]json.RawMessage
	if err := json.Unmarshal(resp["members"], &ms); err != nil {
		return body
	}
	id := func(m map[string]json.RawMessage) uint64 {
		v, _ := strconv.ParseUint(strings.Trim(string(m["ID"]), `"`), 10, 64)
		return v
	}
	for i := 1; i < len(ms); i++ {
		if id(ms[i-1]) >= id(ms[i]) {
			t.Errorf("%s: member list not sorted by ID: %s", cl.Kind, body)
		}
	}
	sort.Slice(ms, func(a, b int) bool { return string(ms[a]["name"]) < string(ms[b]["name"]) })
	sorted, _ := json.Marshal(ms)
	resp["members"] = sorted
	out, _ := json.Marshal(resp)
	return string(out)
}

// abbreviate shortens a long request body for the transcript.
func abbreviate(s string) string {
	if len(s) <= 300 {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:100], len(s))
}

// sortArray returns the JSON object body with its array field sorted by
// each element's JSON text.
func sortArray(body, field string) string {
	var resp map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return body
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(resp[field], &elems); err != nil {
		return body
	}
	sort.Slice(elems, func(a, b int) bool { return string(elems[a]) < string(elems[b]) })
	resp[field], _ = json.Marshal(elems)
	out, _ := json.Marshal(resp)
	return string(out)
}
