package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
)

// b64 is s as the gateway's JSON carries bytes.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// j replaces every {name} in format by the base64 of name's text: j(`{"key":"{foo}"}`)
// is {"key":"Zm9v"}.
func j(format string) string {
	var b strings.Builder
	for {
		i := strings.Index(format, "{{")
		if i < 0 {
			b.WriteString(format)
			return b.String()
		}
		k := strings.Index(format[i:], "}}")
		b.WriteString(format[:i])
		b.WriteString(b64(format[i+2 : i+k]))
		format = format[i+k+2:]
	}
}

// gatewaySteps is the gateway script: every path etcd's gateway serves,
// with good and bad requests. Lease IDs are chosen by the script so that
// lock and election keys (which name the lease) are the same on both
// servers.
func gatewaySteps() []hstep {
	var s []hstep
	s = append(s, gwKvSteps()...)
	s = append(s, gwBadInputSteps()...)
	s = append(s, gwLeaseSteps()...)
	s = append(s, gwWatchSteps()...)
	s = append(s, gwLockElectionSteps()...)
	s = append(s, gwClusterMaintenanceSteps()...)
	s = append(s, gwAuthSteps()...)
	// The other HTTP endpoints of a client URL, behind the same access control.
	// etcd writes its storage version a moment after it starts serving
	// (3.5.0 until then): the field is checked, not its value.
	s = append(s, hstep{method: http.MethodGet, path: "/version"}.masking("storage"), hstep{method: http.MethodGet, path: "/health"},
		hstep{method: http.MethodGet, path: "/nothing"})
	return s
}

func gwKvSteps() []hstep {
	return []hstep{
		post("/v3/kv/put", j(`{"key":"{{foo}}","value":"{{bar}}"}`)),
		post("/v3/kv/put", j(`{"key":"{{foo}}","value":"{{baz}}","prev_kv":true}`)),
		post("/v3/kv/put", j(`{"key":"{{fop}}","value":"{{1}}"}`)),
		post("/v3/kv/put", j(`{"key":"{{fox}}","value":"{{2}}"}`)),
		post("/v3/kv/range", j(`{"key":"{{foo}}"}`)),
		post("/v3/kv/range", j(`{"key":"{{fo}}","range_end":"{{fp}}","sort_order":"DESCEND","sort_target":"KEY","limit":2}`)),
		post("/v3/kv/range", j(`{"key":"{{fo}}","range_end":"{{fp}}","keys_only":true}`)),
		post("/v3/kv/range", j(`{"key":"{{fo}}","range_end":"{{fp}}","count_only":true}`)),
		post("/v3/kv/range", j(`{"key":"{{foo}}","revision":"2"}`)),
		post("/v3/kv/range", j(`{"key":"{{foo}}","revision":100}`)),
		post("/v3/kv/range", j(`{"key":"AA==","range_end":"AA==","serializable":true,"keys_only":true}`)),
		post("/v3/kv/deleterange", j(`{"key":"{{fox}}","prev_kv":true}`)),
		post("/v3/kv/deleterange", j(`{"key":"{{nothing}}"}`)),
		post("/v3/kv/txn", j(`{"compare":[{"key":"{{foo}}","target":"VALUE","result":"EQUAL","value":"{{baz}}"}],`+
			`"success":[{"request_put":{"key":"{{foo}}","value":"{{qux}}"}},{"request_range":{"key":"{{foo}}"}}],`+
			`"failure":[{"request_range":{"key":"{{fop}}"}}]}`)),
		post("/v3/kv/txn", j(`{"compare":[{"key":"{{foo}}","target":"VERSION","result":"GREATER","version":"10"}],`+
			`"failure":[{"request_delete_range":{"key":"{{fop}}","prev_kv":true}}]}`)),
		post("/v3/kv/txn", j(`{"compare":[{"key":"{{foo}}","target":"MOD","result":"LESS","mod_revision":"100"},`+
			`{"key":"{{foo}}","target":"CREATE","result":"NOT_EQUAL","create_revision":"0"}],`+
			`"success":[{"request_txn":{"success":[{"request_range":{"key":"{{foo}}","keys_only":true}}]}}]}`)),
		post("/v3/kv/txn", j(`{"success":[{"request_put":{"key":"{{a}}"}},{"request_put":{"key":"{{a}}"}}]}`)),
		post("/v3/kv/txn", j(`{"success":[{"request_range":{"key":"{{a}}"}},{"request_range":{"key":"{{b}}"}},`+
			`{"request_range":{"key":"{{c}}"}},{"request_range":{"key":"{{d}}"}},{"request_range":{"key":"{{e}}"}}]}`)),
		post("/v3/kv/compaction", `{"revision":"3"}`),
		post("/v3/kv/compaction", `{"revision":"3"}`),
		post("/v3/kv/compaction", `{"revision":"1000"}`),
		post("/v3/kv/range", j(`{"key":"{{foo}}","revision":"2"}`)),
	}
}

func gwBadInputSteps() []hstep {
	return []hstep{
		post("/v3/kv/range", `{"key":`),
		post("/v3/kv/range", `not json`),
		post("/v3/kv/range", `{"key":1}`),
		post("/v3/kv/range", `{"key":"!!!"}`),
		post("/v3/kv/range", `{"key":"Zm9v","limit":"ten"}`),
		post("/v3/kv/range", `{"key":"Zm9v","sort_order":"SIDEWAYS"}`),
		post("/v3/kv/range", `{"nokey":"Zm9v"}`),
		post("/v3/kv/range", ``),
		post("/v3/kv/range", `[]`),
		post("/v3/kv/put", `{"key":""}`),
		post("/v3/kv/put", j(`{"key":"{{big}}","value":"`+b64(strings.Repeat("x", 2000))+`"}`)),
		post("/v3/kv/put", j(`{"key":"{{big}}","value":"`+b64(strings.Repeat("x", 600<<10))+`"}`)),
		post("/v3/kv/put", j(`{"key":"{{k}}","lease":"12345"}`)),
		post("/v3/kv/put", j(`{"key":"{{k}}","ignore_value":true}`)),
		post("/v3/kv/nothing", `{}`),
		post("/v3/nothing", `{}`),
		post("/v3beta/kv/range", j(`{"key":"{{foo}}"}`)),
		{method: http.MethodGet, path: "/v3/kv/range"},
		{method: http.MethodPut, path: "/v3/kv/put", body: j(`{"key":"{{foo}}"}`)},
		{method: http.MethodOptions, path: "/v3/kv/range"},
	}
}

func gwLeaseSteps() []hstep {
	return []hstep{
		post("/v3/lease/grant", `{"TTL":"60","ID":"1000"}`),
		post("/v3/lease/grant", `{"TTL":60,"ID":1000}`),
		post("/v3/lease/grant", `{"TTL":"60","ID":"1001"}`),
		post("/v3/lease/grant", `{"TTL":"60","ID":"1002"}`),
		post("/v3/kv/put", j(`{"key":"{{leased}}","value":"{{v}}","lease":"1000"}`)),
		post("/v3/lease/timetolive", `{"ID":"1000","keys":true}`).masking("TTL"),
		post("/v3/lease/timetolive", `{"ID":"999"}`),
		post("/v3/lease/leases", `{}`).sorting("leases"),
		post("/v3/lease/keepalive", `{"ID":"1000"}`).stream(1),
		post("/v3/lease/keepalive", `{"ID":"999"}`).stream(1),
		post("/v3/lease/revoke", `{"ID":"1000"}`),
		post("/v3/lease/revoke", `{"ID":"1000"}`),
		post("/v3/kv/range", j(`{"key":"{{leased}}"}`)),
		post("/v3/lease/grant", `{"TTL":"-1"}`).masking("ID"),
	}
}

func gwWatchSteps() []hstep {
	return []hstep{
		post("/v3/watch", j(`{"create_request":{"key":"{{foo}}","start_revision":"4","prev_kv":true}}`)).stream(2),
		post("/v3/watch", j(`{"create_request":{"key":"{{fo}}","range_end":"{{fp}}","start_revision":"4","filters":["NOPUT"]}}`)).stream(2),
		post("/v3/watch", j(`{"create_request":{"key":"{{foo}}","start_revision":"2"}}`)).stream(2),
		post("/v3/watch", j(`{"create_request":{"key":"{{foo}}","watch_id":"7"}}{"progress_request":{}}`)).stream(2).inAnyOrder(),
		post("/v3/watch", `{"create_request":{"key":1}}`).stream(1),
	}
}

func gwLockElectionSteps() []hstep {
	return []hstep{
		post("/v3/lock/lock", j(`{"name":"{{mylock}}","lease":"1001"}`)),
		post("/v3/kv/range", j(`{"key":"{{mylock/}}","range_end":"{{mylock0}}"}`)),
		post("/v3/lock/unlock", j(`{"key":"{{mylock/3e9}}"}`)),
		post("/v3/lock/lock", `{"name":"","lease":"1001"}`),
		post("/v3/election/campaign", j(`{"name":"{{myelection}}","lease":"1002","value":"{{v1}}"}`)).capturing("erev", "rev"),
		post("/v3/election/leader", j(`{"name":"{{myelection}}"}`)),
		post("/v3/election/observe", j(`{"name":"{{myelection}}"}`)).stream(1),
		post("/v3/election/proclaim", j(`{"leader":{"name":"{{myelection}}","key":"{{myelection/3ea}}","rev":"${erev}","lease":"1002"},"value":"{{v2}}"}`)),
		post("/v3/election/leader", j(`{"name":"{{myelection}}"}`)),
		post("/v3/election/resign", j(`{"leader":{"name":"{{myelection}}","key":"{{myelection/3ea}}","rev":"${erev}","lease":"1002"}}`)),
		post("/v3/election/leader", j(`{"name":"{{myelection}}"}`)),
		post("/v3/election/leader", j(`{"name":"{{noelection}}"}`)),
	}
}

func gwClusterMaintenanceSteps() []hstep {
	// A status's sizes, raft indexes and versions are the servers' own;
	// which member leads is chance.
	status := []string{"version", "dbSize", "dbSizeInUse", "raftIndex", "raftAppliedIndex", "storageVersion", "dbSizeQuota", "leader"}
	return []hstep{
		post("/v3/cluster/member/list", `{}`).membersByID(),
		post("/v3/cluster/member/list", `{"linearizable":true}`).membersByID(),
		post("/v3/cluster/member/add", `{"peerURLs":["not a url"]}`),
		post("/v3/cluster/member/remove", `{"ID":"1"}`),
		post("/v3/cluster/member/update", `{"ID":"1","peerURLs":["http://127.0.0.1:1"]}`),
		post("/v3/cluster/member/promote", `{"ID":"1"}`),
		post("/v3/maintenance/status", `{}`).masking(status...),
		post("/v3/maintenance/alarm", `{"action":"GET"}`),
		post("/v3/maintenance/alarm", `{"action":"ACTIVATE","memberID":"1","alarm":"NOSPACE"}`),
		post("/v3/maintenance/hash", `{}`).masking("hash"),
		post("/v3/maintenance/hashkv", `{"revision":"0"}`),
		post("/v3/maintenance/hashkv", `{"revision":"2"}`),
		post("/v3/maintenance/hashkv", `{"revision":"1000"}`),
		post("/v3/maintenance/defragment", `{}`),
		// A snapshot's bytes, and how etcd cuts them into messages (whether
		// the first carries remaining_bytes and the version), are its own.
		post("/v3/maintenance/snapshot", `{}`).stream(1).summarized(snapshotChunk),
		post("/v3/maintenance/transfer-leadership", `{"targetID":"1"}`).toFollower(),
		post("/v3/maintenance/transfer-leadership", `{"targetID":"1"}`).toLeader(),
		post("/v3/maintenance/downgrade", `{"action":"VALIDATE","version":"3.6"}`).
			differs("Downgrade is not implemented: synod has one storage format (docs/compatibility.md)"),
	}
}

func gwAuthSteps() []hstep {
	return []hstep{
		post("/v3/auth/status", `{}`),
		post("/v3/auth/enable", `{}`),
		post("/v3/auth/user/add", `{"name":"root","password":"rootpw"}`),
		post("/v3/auth/user/add", `{"name":"root","password":"rootpw"}`),
		post("/v3/auth/user/grant", `{"user":"root","role":"root"}`),
		post("/v3/auth/role/add", `{"name":"reader"}`),
		post("/v3/auth/role/grant", j(`{"name":"reader","perm":{"permType":"READ","key":"{{fo}}","range_end":"{{fp}}"}}`)),
		post("/v3/auth/user/add", `{"name":"alice","password":"alicepw"}`),
		post("/v3/auth/user/grant", `{"user":"alice","role":"reader"}`),
		post("/v3/auth/user/get", `{"name":"alice"}`),
		post("/v3/auth/user/list", `{}`),
		post("/v3/auth/role/get", `{"role":"reader"}`),
		post("/v3/auth/role/list", `{}`),
		post("/v3/auth/enable", `{}`),
		post("/v3/kv/range", j(`{"key":"{{foo}}"}`)),
		post("/v3/auth/authenticate", `{"name":"alice","password":"wrong"}`),
		post("/v3/auth/authenticate", `{"name":"alice","password":"alicepw"}`).masking("token").capturing("alice", "token"),
		post("/v3/kv/range", j(`{"key":"{{foo}}"}`)).withToken("alice"),
		post("/v3/kv/put", j(`{"key":"{{foo}}","value":"{{no}}"}`)).withToken("alice"),
		post("/v3/auth/authenticate", `{"name":"root","password":"rootpw"}`).masking("token").capturing("root", "token"),
		post("/v3/auth/status", `{}`).withToken("root"),
		post("/v3/auth/role/revoke", j(`{"role":"reader","key":"{{fo}}","range_end":"{{fp}}"}`)).withToken("root"),
		post("/v3/kv/range", j(`{"key":"{{foo}}"}`)).withToken("alice"),
		post("/v3/auth/user/changepw", `{"name":"alice","password":"newpw"}`).withToken("root"),
		post("/v3/auth/user/revoke", `{"name":"alice","role":"reader"}`).withToken("root"),
		post("/v3/auth/user/delete", `{"name":"alice"}`).withToken("root"),
		post("/v3/auth/role/delete", `{"role":"reader"}`).withToken("root"),
		post("/v3/auth/disable", `{}`).withToken("root"),
		post("/v3/kv/range", j(`{"key":"{{foo}}"}`)),
		post("/v3/maintenance/alarm", `{"action":"DEACTIVATE","memberID":"1","alarm":"NOSPACE"}`),
		post("/v3/kv/put", j(`{"key":"{{foo}}","value":"{{end}}"}`)),
		post("/v3/maintenance/hashkv", `{"revision":"0"}`),
	}
}

// snapshotChunk shows a snapshot stream's message by its shape: a result
// carrying a non-empty blob.
func snapshotChunk(line string) string {
	var m struct {
		Result struct {
			Blob []byte `json:"blob"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(line), &m); err != nil || len(m.Result.Blob) == 0 {
		return "not a snapshot chunk: " + line
	}
	return `{"result":{"blob":<bytes>}}`
}
