package consulapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/consulkv"
)

// maxListKeys bounds the keys one recursive KV read (or txn tree
// operation) reads; a prefix with more is refused.
const maxListKeys = 10000

// readChunk bounds the operations of one read transaction, under etcd's
// default --max-txn-ops.
const readChunk = 64

// errKVConflict is returned when a KV write lost its compares maxAttempts
// times in a row.
var errKVConflict = errors.New("KV update kept conflicting with concurrent updates; try again")

// errTooManyKeys is a recursive read or tree operation over more than
// maxListKeys keys.
var errTooManyKeys = fmt.Errorf("more than %d keys under the prefix: synod reads at most %d at once", maxListKeys, maxListKeys)

// getSpec is one read of a view: a key, or a prefix.
type getSpec struct {
	key      string
	prefix   bool
	keysOnly bool
	newest   bool // only the key of the prefix with the highest mod revision
}

func (g getSpec) op(extra ...clientv3.OpOption) clientv3.Op {
	opts := extra
	switch {
	case g.newest:
		opts = append(opts, clientv3.WithPrefix(), clientv3.WithLimit(1),
			clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend))
	case g.prefix:
		opts = append(opts, clientv3.WithPrefix(), clientv3.WithLimit(maxListKeys+1))
	}
	if g.keysOnly || g.newest {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	return clientv3.OpGet(g.key, opts...)
}

// readAll runs gets as read transactions of at most readChunk operations,
// all at one revision: the first at the consistency mode, the others at its
// revision. It returns the responses in order and the revision.
func (s *Server) readAll(ctx context.Context, mode string, gets []getSpec) ([]*etcdserverpb.RangeResponse, int64, error) {
	var out []*etcdserverpb.RangeResponse
	var rev int64
	for start := 0; start < len(gets) || start == 0; start += readChunk {
		chunk := gets[start:min(start+readChunk, len(gets))]
		var ops []clientv3.Op
		for _, g := range chunk {
			switch {
			case rev != 0:
				ops = append(ops, g.op(clientv3.WithRev(rev), clientv3.WithSerializable()))
			case mode == modeStale:
				ops = append(ops, g.op(clientv3.WithSerializable()))
			default:
				ops = append(ops, g.op())
			}
		}
		resp, err := s.read(ctx, mode, ops...)
		if err != nil {
			return nil, 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, r := range resp.Responses {
			rr := r.GetResponseRange()
			if len(rr.Kvs) > maxListKeys {
				return nil, 0, errTooManyKeys
			}
			out = append(out, rr)
		}
	}
	return out, rev, nil
}

// viewReads lists what a view for ops must read: each key's value and
// metadata, each tree's, the sessions of locks and the lock delays of the
// keys they lock.
func viewReads(ops []consulkv.Op) (keys, trees, sessions []string) {
	seen := map[string]bool{}
	addOnce := func(list *[]string, kind, v string) {
		if !seen[kind+v] {
			seen[kind+v] = true
			*list = append(*list, v)
		}
	}
	for _, op := range ops {
		if consulkv.IsTree(op.Verb) {
			addOnce(&trees, "t", op.Key)
			continue
		}
		addOnce(&keys, "k", op.Key)
		if op.Verb == consulkv.VerbLock && op.Session != "" {
			addOnce(&sessions, "s", op.Session)
		}
	}
	return keys, trees, sessions
}

// loadView reads, at one revision, everything ops act on.
func (s *Server) loadView(ctx context.Context, mode string, ops []consulkv.Op) (*consulkv.View, error) {
	keys, trees, sessions := viewReads(ops)
	var gets []getSpec
	for _, k := range keys {
		gets = append(gets, getSpec{key: consulkv.ValueKey(k)}, getSpec{key: consulkv.MetaKey(k)},
			getSpec{key: consulkv.DelayKey(k), keysOnly: true})
	}
	for _, p := range trees {
		gets = append(gets, getSpec{key: consulkv.ValueKey(p), prefix: true}, getSpec{key: consulkv.MetaKey(p), prefix: true})
	}
	for _, id := range sessions {
		gets = append(gets, getSpec{key: consulkv.SessionKey(id), keysOnly: true})
	}
	rs, rev, err := s.readAll(ctx, mode, gets)
	if err != nil {
		return nil, err
	}
	v := consulkv.NewView(rev)
	locked := map[string]bool{}
	for _, op := range ops {
		locked[op.Key] = locked[op.Key] || op.Verb == consulkv.VerbLock
	}
	for i, k := range keys {
		entries, err := entriesOf(consulkv.KVPrefix, consulkv.MetaPrefix, rs[3*i].Kvs, rs[3*i+1].Kvs)
		if err != nil {
			return nil, err
		}
		v.AddKey(k, entries[k], len(rs[3*i+1].Kvs) > 0)
		if locked[k] {
			v.AddDelay(k, len(rs[3*i+2].Kvs) > 0)
		}
	}
	rs = rs[3*len(keys):]
	for i, p := range trees {
		if err := addTree(v, p, rs[2*i].Kvs, rs[2*i+1].Kvs); err != nil {
			return nil, err
		}
	}
	rs = rs[2*len(trees):]
	for i, id := range sessions {
		var crev int64
		if kvs := rs[i].Kvs; len(kvs) > 0 {
			crev = kvs[0].CreateRevision
		}
		v.AddSession(id, crev)
	}
	return v, nil
}

func addTree(v *consulkv.View, p string, values, metas []*mvccpb.KeyValue) error {
	entries, err := entriesOf(consulkv.KVPrefix, consulkv.MetaPrefix, values, metas)
	if err != nil {
		return err
	}
	metaOf := map[string]bool{}
	for _, m := range metas {
		metaOf[string(m.Key[len(consulkv.MetaPrefix):])] = true
	}
	for k, e := range entries {
		if v.Entry(k) == nil {
			v.AddKey(k, e, metaOf[k])
		}
	}
	v.AddTree(p)
	return nil
}

// entriesOf joins values and their metadata into entries by Consul key.
func entriesOf(valuePrefix, metaPrefix string, values, metas []*mvccpb.KeyValue) (map[string]*consulkv.Entry, error) {
	meta := map[string][]byte{}
	for _, m := range metas {
		meta[string(m.Key[len(metaPrefix):])] = m.Value
	}
	out := map[string]*consulkv.Entry{}
	for _, kv := range values {
		k := string(kv.Key[len(valuePrefix):])
		e, err := consulkv.Decode(consulkv.Stored{Key: k, Value: kv.Value, CreateRev: kv.CreateRevision,
			ModRev: kv.ModRevision, Meta: meta[k]})
		if err != nil {
			return nil, err
		}
		out[k] = e
	}
	return out, nil
}

// txnError is one failed operation of a KV transaction (Consul's
// TxnError).
type txnError struct {
	OpIndex int
	What    string
	invalid bool // consulkv.ErrInvalid: the HTTP endpoints answer 500
}

// runKV is the one write path of Consul's KV store: it reads what ops act
// on (linearizably), runs them on that view, and commits the changes in
// one etcd transaction compared on everything read; a lost compare reads
// again and retries. Operations whose condition fails are returned as
// txnErrors and nothing is written; extra adds writes to the commit.
func (s *Server) runKV(ctx context.Context, ops []consulkv.Op) ([]*consulkv.Entry, []txnError, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		v, err := s.loadView(ctx, modeConsistent, ops)
		if err != nil {
			return nil, nil, err
		}
		results, errs, err := applyOps(v, ops)
		if err != nil || len(errs) > 0 {
			return nil, errs, err
		}
		done, rev, err := s.commitPlan(ctx, v.Plan(time.Now().Unix()))
		if err != nil {
			return nil, nil, err
		}
		if done {
			consulkv.Finish(rev, results)
			return results, nil, nil
		}
	}
	return nil, nil, errKVConflict
}

// applyOps runs ops on v, collecting each failed one's error (with its
// index) as Consul's txn does.
func applyOps(v *consulkv.View, ops []consulkv.Op) ([]*consulkv.Entry, []txnError, error) {
	var results []*consulkv.Entry
	var errs []txnError
	for i, op := range ops {
		r, err := v.Apply(op)
		var oe *consulkv.OpError
		switch {
		case errors.As(err, &oe):
			errs = append(errs, txnError{OpIndex: i, What: oe.Text, invalid: errors.Is(err, consulkv.ErrInvalid)})
		case err != nil:
			return nil, nil, err
		}
		results = append(results, r...)
	}
	return results, errs, nil
}

// commitPlan commits a plan as one etcd transaction: false when a compare
// failed; the revision of the commit when it wrote.
func (s *Server) commitPlan(ctx context.Context, p consulkv.Plan, extra ...clientv3.Op) (bool, int64, error) {
	if p.Empty() && len(extra) == 0 {
		return true, 0, nil
	}
	var cmps []clientv3.Cmp
	for _, c := range p.Compares {
		t := clientv3.ModRevision(c.Key)
		if c.Create {
			t = clientv3.CreateRevision(c.Key)
		}
		cmp := clientv3.Compare(t, c.Op, c.Rev)
		if c.Prefix {
			cmp = cmp.WithPrefix()
		}
		cmps = append(cmps, cmp)
	}
	ops := extra
	for _, w := range p.Writes {
		if w.Delete {
			ops = append(ops, clientv3.OpDelete(w.Key))
		} else {
			ops = append(ops, clientv3.OpPut(w.Key, string(w.Value)))
		}
	}
	resp, err := s.cfg.KV.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, 0, err
	}
	return resp.Succeeded, resp.Header.Revision, nil
}
