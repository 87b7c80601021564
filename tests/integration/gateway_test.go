package integration

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/synod-db/synod/server"
)

// gwPost sends body to a gateway path of member i and returns the status
// and the body.
func gwPost(t *testing.T, c *cluster, i int, path, body string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Post("http://"+c.endpoint(i)+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// gwPut puts key=value through the gateway and fails the test unless it is
// acknowledged.
func gwPut(t *testing.T, c *cluster, key string, value []byte) {
	t.Helper()
	body := fmt.Sprintf(`{"key":%q,"value":%q}`, base64.StdEncoding.EncodeToString([]byte(key)), base64.StdEncoding.EncodeToString(value))
	if code, resp := gwPost(t, c, 0, "/v3/kv/put", body); code != http.StatusOK {
		t.Fatalf("put %s: %d %s", key, code, resp)
	}
}

// openWatch starts a gateway watch on prefix over a raw connection and
// returns it with the response's first line read (the created message).
func openWatch(t *testing.T, c *cluster, prefix string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", c.endpoint(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	k := base64.StdEncoding.EncodeToString([]byte(prefix))
	end := base64.StdEncoding.EncodeToString([]byte(prefix[:len(prefix)-1] + string(prefix[len(prefix)-1]+1)))
	body := fmt.Sprintf(`{"create_request":{"key":%q,"range_end":%q}}`, k, end)
	fmt.Fprintf(conn, "POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("watch response: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: status %d", resp.StatusCode)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, bufio.NewReader(resp.Body)
}

// TestGatewaySlowWatchReaderIsCutOff: a client that opens a watch through
// the gateway and stops reading neither slows the writes it watches nor
// holds its stream for ever: once a write to it has blocked for the
// stream write timeout, the member closes the connection. With one stream
// allowed, the member's giving up shows as the slot coming free, which the
// test waits for without reading the stalled connection (reading it would
// unblock the member's write and reset the timeout).
func TestGatewaySlowWatchReaderIsCutOff(t *testing.T) {
	c := newCluster(t, 1, func(cfg *server.Config) {
		cfg.HTTP.StreamWriteTimeout = time.Second
		cfg.MaxConcurrentStreams = 1
	})
	conn, _ := openWatch(t, c, "slow/")
	value := bytes.Repeat([]byte("v"), 256<<10)
	// About 48 MiB of events (base64 in JSON): far more than the socket
	// buffers between the member and the client that never reads hold.
	start := time.Now()
	for i := 0; i < 140; i++ {
		gwPut(t, c, fmt.Sprintf("slow/%d", i), value)
	}
	t.Logf("140 puts of 256 KiB in %v while the watcher read nothing", time.Since(start))
	eventually(t, "the stalled watch's stream slot to come free", 30*time.Second, func() error {
		if code := watchStatus(t, c); code != http.StatusOK {
			return fmt.Errorf("a new watch is answered %d: the stalled one still holds the only slot", code)
		}
		return nil
	})
	// The member gave up on the connection: reading drains what the
	// buffers held, then ends.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the member freed the stream but kept the stalled connection open (%d bytes drained, then nothing for 30 s)", n)
	}
	t.Logf("connection closed by the member after %d buffered bytes (err %v)", n, err)
	// And the member still serves.
	if code, body := gwPost(t, c, 0, "/v3/kv/range", `{"key":"c2xvdy8w"}`); code != http.StatusOK {
		t.Fatalf("range after the cut-off: %d %s", code, body)
	}
}

// watchStatus opens a gateway watch on member 0, returns the status it is
// answered with, and closes it.
func watchStatus(t *testing.T, c *cluster) int {
	t.Helper()
	conn, err := net.Dial("tcp", c.endpoint(0))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"create_request":{"key":"cHJvYmU="}}`
	fmt.Fprintf(conn, "POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	return resp.StatusCode
}

// TestGatewayStreamLimit: streaming requests beyond the bound are refused
// with 429 and gRPC's ResourceExhausted code, unary requests still pass,
// and a slot freed by a closed stream can be taken again.
func TestGatewayStreamLimit(t *testing.T) {
	c := newCluster(t, 1, func(cfg *server.Config) { cfg.MaxConcurrentStreams = 2 })
	first, _ := openWatch(t, c, "a/")
	openWatch(t, c, "b/")
	code, body := gwPost(t, c, 0, "/v3/watch", `{"create_request":{"key":"Yw=="}}`)
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if code != http.StatusTooManyRequests || json.Unmarshal([]byte(body), &e) != nil || e.Code != 8 {
		t.Fatalf("third stream: %d %s, want 429 with code 8", code, body)
	}
	gwPut(t, c, "unary", []byte("still served"))
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", c.endpoint(0))
		if err != nil {
			t.Fatal(err)
		}
		body := `{"create_request":{"key":"ZA=="}}`
		fmt.Fprintf(conn, "POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream slot freed after closing a watch: %v %v", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGatewayBadInput: oversized and garbage bodies on every gateway path
// get an HTTP error in grpc-gateway's shape (or the path's own answer),
// never an internal error or a dropped connection, and the member keeps
// serving.
func TestGatewayBadInput(t *testing.T) {
	c := newCluster(t, 1, func(cfg *server.Config) { cfg.MaxRequestBytes = 1024 })
	huge := `{"key":"` + strings.Repeat("QUFB", 1<<20) + `"}` // 4 MiB: over 4 × (1 KiB + 512 KiB)
	if code, body := gwPost(t, c, 0, "/v3/kv/put", huge); code != http.StatusBadRequest || !strings.Contains(body, "too large") {
		t.Fatalf("4 MiB body: %d %.200s", code, body)
	}
	paths := []string{"/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange", "/v3/kv/txn", "/v3/kv/compaction",
		"/v3/lease/grant", "/v3/lease/revoke", "/v3/lease/timetolive", "/v3/lease/leases",
		"/v3/cluster/member/list", "/v3/cluster/member/add", "/v3/maintenance/status", "/v3/maintenance/alarm",
		"/v3/maintenance/hashkv", "/v3/auth/user/add", "/v3/auth/authenticate", "/v3/auth/role/grant",
		"/v3/lock/unlock", "/v3/election/leader", "/v3/election/proclaim"}
	rng := rand.New(rand.NewSource(1))
	garbage := []string{"", "{", "}", "null", "[1,2]", `{"key":{"a":1}}`, `{"ID":"-1"}`, `{"TTL":1e400}`,
		`{"compare":[{"target":"NOPE"}]}`, `{"success":[{"request_put":5}]}`, "\x00\xff\xfe", `{"key":"` + strings.Repeat("\\u0000", 100) + `"}`}
	for i := 0; i < 40; i++ {
		b := make([]byte, rng.Intn(200))
		rng.Read(b)
		garbage = append(garbage, string(b))
	}
	for _, p := range paths {
		for _, g := range garbage {
			code, body := gwPost(t, c, 0, p, g)
			var e struct {
				Code int `json:"code"`
			}
			// etcd answers some of these with codes.Unknown (500), as the
			// errors of its lock and election recipes are plain errors. A
			// recovered panic would be codes.Internal (13).
			if err := json.Unmarshal([]byte(body), &e); (code >= 400 && err != nil) || e.Code == 13 {
				t.Errorf("POST %s %q: %d %s", p, g, code, body)
			}
		}
	}
	if code, body := gwPost(t, c, 0, "/v3/kv/range", `{"key":"YQ=="}`); code != http.StatusOK {
		t.Fatalf("member no longer serves: %d %s", code, body)
	}
}

// TestGatewayWebsocketWatch: a browser's websocket on /v3/watch (etcd wraps
// its gateway in the same websocket proxy) creates a watch with its first
// message and receives the events as messages.
func TestGatewayWebsocketWatch(t *testing.T) {
	c := newCluster(t, 1, nil)
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+c.endpoint(0)+"/v3/watch", nil)
	if err != nil {
		t.Fatalf("websocket dial: %v (%v)", err, resp)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"create_request":{"key":"d3M="}}`)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), `"created":true`) {
		t.Fatalf("created: %s %v", msg, err)
	}
	gwPut(t, c, "ws", []byte("over a websocket"))
	_, msg, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(msg), base64.StdEncoding.EncodeToString([]byte("over a websocket"))) {
		t.Fatalf("event: %s %v", msg, err)
	}
}
