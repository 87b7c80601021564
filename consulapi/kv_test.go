package consulapi

import (
	"strings"
	"testing"
)

// The KV, session and txn endpoints refuse bad input as Consul does before
// they touch the store (the test server has none).
func TestKVSessionTxnRefuseAsConsul(t *testing.T) {
	s := newTestServer()
	big := strings.Repeat("v", maxValueBytes+1)
	ops := func(n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(`{"KV":{"Verb":"get","Key":"a"}},`, n), ",") + "]"
	}
	for _, tc := range []struct {
		method, target, body string
		code                 int
		text                 string
	}{
		{"PUT", "/v1/kv/", "", 400, "Missing key name"},
		{"GET", "/v1/kv/", "", 400, "Missing key name"},
		{"DELETE", "/v1/kv/", "", 400, "Missing key name"},
		{"POST", "/v1/kv/a", "", 405, "method POST not allowed"},
		{"PUT", "/v1/kv/a?cas=1&release=x", "", 400, "Conflicting flags: cas=1&release=x\n"},
		{"DELETE", "/v1/kv/a?cas=1&recurse", "", 400, "Conflicting flags: cas=1&recurse=\n"},
		{"PUT", "/v1/kv/a?flags=x", "", 500, `strconv.ParseUint: parsing "x": invalid syntax`},
		{"PUT", "/v1/kv/a", big, 413, "Request body(524289 bytes) too large, max size: 524288 bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size."},
		{"PUT", "/v1/txn", "{", 400, "Failed to parse body: unexpected end of JSON input"},
		{"PUT", "/v1/txn", ops(65), 413, "Transaction contains too many operations (65 > 64)"},
		{"PUT", "/v1/txn", `[{"Node":{"Verb":"get"}}]`, 400, "Operation 0: synod serves only KV operations in /v1/txn"},
		{"PUT", "/v1/txn", `[{"KV":{"Verb":"set","Key":"a","Value":"` + strings.Repeat("A", 700000) + `"}}]`, 413, "Request body too large, max size: 524288 bytes"},
		{"PUT", "/v1/session/create", `{"TTL":"1h","Behavior":"keep"}`, 500, "Invalid Behavior setting 'keep'"},
		{"PUT", "/v1/session/create", `{"TTL":"25h"}`, 500, "Invalid Session TTL '90000000000000', must be between [10s=24h0m0s]"},
		{"PUT", "/v1/session/create", `{"LockDelay":"soon"}`, 400, `Request decode failed: time: invalid duration "soon"`},
		{"PUT", "/v1/session/destroy/", "", 400, "Missing session"},
		{"PUT", "/v1/session/renew/", "", 400, "Missing session"},
		{"GET", "/v1/session/info/", "", 400, "Missing session"},
		{"GET", "/v1/session/node/", "", 400, "Missing node name"},
	} {
		resp, body := do(t, s, tc.method, tc.target, tc.body)
		if resp.StatusCode != tc.code || body != tc.text {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.target, resp.StatusCode, body, tc.code, tc.text)
		}
	}
}
