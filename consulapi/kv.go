package consulapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/consulkv"
)

// maxValueBytes is Consul's default kv_max_value_size.
const maxValueBytes = 512 << 10

func (s *Server) registerKV() {
	s.Handle("/v1/kv/", s.kvEndpoint, http.MethodGet, http.MethodPut, http.MethodDelete)
}

func (s *Server) kvEndpoint(w http.ResponseWriter, r *http.Request) (any, error) {
	key := pathArg(r, "/v1/kv/")
	switch r.Method {
	case http.MethodPut:
		return s.kvPut(r, key)
	case http.MethodDelete:
		return s.kvDelete(r, key)
	}
	q := r.URL.Query()
	if _, ok := q["keys"]; ok {
		return s.kvKeys(w, r, key)
	}
	_, recurse := q["recurse"]
	if !recurse && key == "" {
		return nil, BadRequest("Missing key name")
	}
	obj, err := s.blockingQuery(w, r, kvSpecs(key, recurse), func(ctx context.Context, mode string) (uint64, any, error) {
		return s.kvRead(ctx, mode, key, recurse)
	})
	if err != nil {
		return nil, err
	}
	entries := obj.([]*consulkv.Entry)
	if len(entries) == 0 {
		w.WriteHeader(http.StatusNotFound)
		return nil, nil
	}
	if _, raw := q["raw"]; raw && !recurse {
		writeRaw(w, entries[0].Value)
		return nil, nil
	}
	return entries, nil
}

// writeRaw sends a value as ?raw does, with Consul's headers against a
// browser sniffing it.
func writeRaw(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Content-Type", "text/plain")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	w.Write(body)
}

// kvSpecs are the keys a KV read blocks on: the value (or every value
// under the prefix) and its tombstone(s).
func kvSpecs(key string, prefix bool) []watchSpec {
	return []watchSpec{{key: consulkv.ValueKey(key), prefix: prefix}, {key: consulkv.TombKey(key), prefix: prefix}}
}

// kvIndex is a KV read's X-Consul-Index: the highest mod revision of what
// it read and of the tombstones under it (so a deletion moves it); for a
// read that finds nothing, the KV index key's (Consul's KV table index),
// which every KV write moves: no single key's revision can say that a
// key went with a tree delete of a prefix of it.
func kvIndex(found bool, table *etcdserverpb.RangeResponse, rs ...*etcdserverpb.RangeResponse) uint64 {
	if !found {
		rs = []*etcdserverpb.RangeResponse{table}
	}
	var idx int64
	for _, r := range rs {
		for _, kv := range r.Kvs {
			idx = max(idx, kv.ModRevision)
		}
	}
	return uint64(idx)
}

// kvRead reads one key, or every key under a prefix, at a consistency
// mode, with their index.
func (s *Server) kvRead(ctx context.Context, mode, key string, recurse bool) (uint64, any, error) {
	rs, _, err := s.readAll(ctx, mode, []getSpec{
		{key: consulkv.ValueKey(key), prefix: recurse}, {key: consulkv.MetaKey(key), prefix: recurse},
		{key: consulkv.TombKey(key), newest: recurse, keysOnly: true}, {key: consulkv.IndexKey, keysOnly: true}})
	if err != nil {
		return 0, nil, err
	}
	byKey, err := entriesOf(consulkv.KVPrefix, consulkv.MetaPrefix, rs[0].Kvs, rs[1].Kvs)
	if err != nil {
		return 0, nil, err
	}
	entries := make([]*consulkv.Entry, 0, len(byKey))
	for _, e := range byKey {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Key < entries[j].Key })
	return kvIndex(len(entries) > 0, rs[3], rs[:3]...), entries, nil
}

// kvKeys is ?keys (with ?separator, or Consul's historic ?seperator): the
// keys under a prefix; a 404 when there are none, unless the prefix is
// empty.
func (s *Server) kvKeys(w http.ResponseWriter, r *http.Request, prefix string) (any, error) {
	q := r.URL.Query()
	sep := q.Get("seperator")
	if _, ok := q["separator"]; ok {
		sep = q.Get("separator")
	}
	obj, err := s.blockingQuery(w, r, kvSpecs(prefix, true), func(ctx context.Context, mode string) (uint64, any, error) {
		rs, _, err := s.readAll(ctx, mode, []getSpec{{key: consulkv.ValueKey(prefix), prefix: true, keysOnly: true},
			{key: consulkv.TombKey(prefix), newest: true}, {key: consulkv.IndexKey, keysOnly: true}})
		if err != nil {
			return 0, nil, err
		}
		keys := make([]string, 0, len(rs[0].Kvs))
		for _, kv := range rs[0].Kvs {
			keys = append(keys, string(kv.Key[len(consulkv.KVPrefix):]))
		}
		return kvIndex(len(keys) > 0, rs[2], rs[:2]...), consulkv.ListKeys(keys, prefix, sep), nil
	})
	if err != nil {
		return nil, err
	}
	if keys := obj.([]string); len(keys) == 0 && prefix != "" {
		w.WriteHeader(http.StatusNotFound)
		return nil, nil
	}
	return obj, nil
}

// conflicting is Consul's 400 for flags that do not compose.
func conflicting(r *http.Request, flags ...string) error {
	q := r.URL.Query()
	found := false
	for _, f := range flags {
		if _, ok := q[f]; ok {
			if found {
				return BadRequest("Conflicting flags: %v\n", q.Encode())
			}
			found = true
		}
	}
	return nil
}

// kvPut is PUT /v1/kv/<key>: set, ?cas, ?acquire or ?release, with ?flags;
// the body is the value. A set answers true; the others whether they
// happened.
func (s *Server) kvPut(r *http.Request, key string) (any, error) {
	if key == "" {
		return nil, BadRequest("Missing key name")
	}
	if err := conflicting(r, "cas", "acquire", "release"); err != nil {
		return nil, err
	}
	op, err := putOp(r, key)
	if err != nil {
		return nil, err
	}
	if op.Value, err = readValue(r); err != nil {
		return nil, err
	}
	return s.runOne(r.Context(), op)
}

func putOp(r *http.Request, key string) (consulkv.Op, error) {
	q := r.URL.Query()
	op := consulkv.Op{Verb: consulkv.VerbSet, Key: key}
	var err error
	if _, ok := q["flags"]; ok {
		if op.Flags, err = strconv.ParseUint(q.Get("flags"), 10, 64); err != nil {
			return op, err
		}
	}
	if _, ok := q["cas"]; ok {
		if op.Index, err = strconv.ParseUint(q.Get("cas"), 10, 64); err != nil {
			return op, err
		}
		op.Verb = consulkv.VerbCAS
	}
	if _, ok := q["acquire"]; ok {
		op.Verb, op.Session = consulkv.VerbLock, q.Get("acquire")
	}
	if _, ok := q["release"]; ok {
		op.Verb, op.Session = consulkv.VerbUnlock, q.Get("release")
	}
	return op, nil
}

// readValue reads a PUT's body, refused with Consul's 413 over
// kv_max_value_size.
func readValue(r *http.Request) ([]byte, error) {
	tooLarge := func(n int64) error {
		return &HTTPError{Code: http.StatusRequestEntityTooLarge, Reason: fmt.Sprintf(
			"Request body(%d bytes) too large, max size: %d bytes. See %s.", n, maxValueBytes,
			"https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size")}
	}
	if r.ContentLength > maxValueBytes {
		return nil, tooLarge(r.ContentLength)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxValueBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxValueBytes {
		return nil, tooLarge(int64(len(b)))
	}
	return b, nil
}

// runOne runs one KV write as its HTTP endpoint answers it: a set or a
// delete answers true, the conditional ones whether they happened; an
// invalid one (no session, a dead session) is Consul's 500 with its text.
func (s *Server) runOne(ctx context.Context, op consulkv.Op) (any, error) {
	_, errs, err := s.runKV(ctx, []consulkv.Op{op})
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 && errs[0].invalid {
		return nil, &HTTPError{Code: http.StatusInternalServerError, Reason: errs[0].What}
	}
	return len(errs) == 0, nil
}

// kvDelete is DELETE /v1/kv/<key>: one key, ?cas, or ?recurse.
func (s *Server) kvDelete(r *http.Request, key string) (any, error) {
	if err := conflicting(r, "recurse", "cas"); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	if _, ok := q["recurse"]; ok {
		return true, s.deleteTree(r.Context(), key)
	}
	if key == "" {
		return nil, BadRequest("Missing key name")
	}
	op := consulkv.Op{Verb: consulkv.VerbDelete, Key: key}
	if _, ok := q["cas"]; ok {
		n, err := strconv.ParseUint(q.Get("cas"), 10, 64)
		if err != nil {
			return nil, err
		}
		op.Verb, op.Index = consulkv.VerbDeleteCAS, n
	}
	return s.runOne(r.Context(), op)
}

// deleteTree deletes every key under prefix in one transaction, whatever
// their number, and leaves one tombstone for the prefix; it writes nothing
// when there is no key. Lock records of deleted keys are dropped when
// their sessions end.
func (s *Server) deleteTree(ctx context.Context, prefix string) error {
	_, err := s.cfg.KV.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(consulkv.ValueKey(prefix)), ">", 0).WithPrefix()).
		Then(clientv3.OpDelete(consulkv.ValueKey(prefix), clientv3.WithPrefix()),
			clientv3.OpDelete(consulkv.MetaKey(prefix), clientv3.WithPrefix()),
			clientv3.OpPut(consulkv.TombKey(prefix), strconv.FormatInt(time.Now().Unix(), 10)),
			clientv3.OpPut(consulkv.IndexKey, "")).Commit()
	return err
}
