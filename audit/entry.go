package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// Entry is one line of the audit log. Fields that do not apply to a request
// are left empty and are omitted from the line.
type Entry struct {
	// Time is when the request finished (written in UTC, RFC 3339 with
	// nanoseconds).
	Time time.Time
	// User is the caller's identity: the authenticated user, or the common
	// name of its verified TLS client certificate; empty if unknown.
	User string
	// Peer is the caller's network address.
	Peer string
	// RPC is the gRPC full method, e.g. "/etcdserverpb.KV/Put".
	RPC string
	// Key and RangeEnd are the request's key range (Put, DeleteRange,
	// Range, a permission, a lock or election name).
	Key, RangeEnd []byte
	// Ops are the writes of a Txn (see Describe for which branch).
	Ops []Op
	// OpsTruncated counts the writes of a Txn left out of Ops (MaxOps).
	OpsTruncated int
	// Lease is the lease ID of LeaseGrant and LeaseRevoke, or the lease of a
	// Put.
	Lease int64
	// Member is the member ID of a membership change or of MoveLeader.
	Member uint64
	// Name is the user (or role, for role RPCs) an Auth RPC names. Passwords
	// are never recorded.
	Name string
	// Role is the role an Auth RPC names, when it names a user too.
	Role string
	// Detail says more where a request has more to say: the alarm action
	// and type, the compaction revision, the permission type.
	Detail string
	// Code is "OK" or the gRPC code name of the error the caller got
	// (e.g. "PermissionDenied"); Message is that error's message (etcd's
	// text, e.g. "etcdserver: permission denied").
	Code, Message string
	// Revision is the revision in the response header (0 if none).
	Revision int64
	// Dropped, when not zero, makes this a "dropped" line: that many
	// entries were lost to a full queue just before this point.
	Dropped uint64
}

// Op is one write of a Txn.
type Op struct {
	// Type is "put" or "delete_range".
	Type string
	// Key and RangeEnd are the op's key range.
	Key, RangeEnd []byte
}

// line is the JSON form of an Entry; field order is the line's.
type line struct {
	Time           string   `json:"time"`
	User           string   `json:"user,omitempty"`
	Peer           string   `json:"peer,omitempty"`
	RPC            string   `json:"rpc,omitempty"`
	Key            *string  `json:"key,omitempty"`
	KeyB64         *string  `json:"key_base64,omitempty"`
	RangeEnd       *string  `json:"range_end,omitempty"`
	RangeEndB64    *string  `json:"range_end_base64,omitempty"`
	Ops            []opLine `json:"ops,omitempty"`
	OpsTruncated   int      `json:"ops_truncated,omitempty"`
	Lease          int64    `json:"lease,omitempty"`
	Member         string   `json:"member,omitempty"`
	Name           string   `json:"name,omitempty"`
	Role           string   `json:"role,omitempty"`
	Detail         string   `json:"detail,omitempty"`
	Outcome        string   `json:"outcome,omitempty"`
	Message        string   `json:"message,omitempty"`
	Revision       int64    `json:"revision,omitempty"`
	DroppedEntries uint64   `json:"dropped_entries,omitempty"`
}

type opLine struct {
	Type        string  `json:"type"`
	Key         *string `json:"key,omitempty"`
	KeyB64      *string `json:"key_base64,omitempty"`
	RangeEnd    *string `json:"range_end,omitempty"`
	RangeEndB64 *string `json:"range_end_base64,omitempty"`
}

// printable splits b into the text form (valid UTF-8: the bytes as they
// are, JSON escaping control characters) or the base64 form (anything
// else), exactly one of which is set; both are nil for an empty b.
func printable(b []byte) (text, b64 *string) {
	if len(b) == 0 {
		return nil, nil
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

// AppendJSON appends e as one JSON line (with its newline) to dst.
func (e *Entry) AppendJSON(dst []byte) []byte {
	l := line{
		Time: e.Time.UTC().Format(time.RFC3339Nano), User: e.User, Peer: e.Peer, RPC: e.RPC,
		OpsTruncated: e.OpsTruncated, Lease: e.Lease, Name: e.Name, Role: e.Role, Detail: e.Detail,
		Outcome: e.Code, Message: e.Message, Revision: e.Revision, DroppedEntries: e.Dropped,
	}
	l.Key, l.KeyB64 = printable(e.Key)
	l.RangeEnd, l.RangeEndB64 = printable(e.RangeEnd)
	if e.Member != 0 {
		l.Member = formatID(e.Member)
	}
	for _, op := range e.Ops {
		ol := opLine{Type: op.Type}
		ol.Key, ol.KeyB64 = printable(op.Key)
		ol.RangeEnd, ol.RangeEndB64 = printable(op.RangeEnd)
		l.Ops = append(l.Ops, ol)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&l); err != nil {
		// Every field is a string, number or slice of them: Encode cannot
		// fail. Keep the line anyway rather than lose it.
		return append(dst, `{"time":"`+l.Time+`","error":"audit: encoding failed"}`+"\n"...)
	}
	return append(dst, buf.Bytes()...)
}

// formatID writes a member ID as etcd does, in lowercase hex.
func formatID(id uint64) string { return strconv.FormatUint(id, 16) }
