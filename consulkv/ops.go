package consulkv

import (
	"errors"
	"fmt"
)

// Verbs of KV operations, as Consul's /v1/txn spells them (api.KVOp).
const (
	VerbSet            = "set"
	VerbCAS            = "cas"
	VerbLock           = "lock"
	VerbUnlock         = "unlock"
	VerbGet            = "get"
	VerbGetOrEmpty     = "get-or-empty"
	VerbGetTree        = "get-tree"
	VerbCheckIndex     = "check-index"
	VerbCheckSession   = "check-session"
	VerbCheckNotExists = "check-not-exists"
	VerbDelete         = "delete"
	VerbDeleteCAS      = "delete-cas"
	VerbDeleteTree     = "delete-tree"
)

// Op is one KV operation (Consul's TxnKVOp): Index is the ModifyIndex of
// cas, check-index and delete-cas.
type Op struct {
	Verb    string
	Key     string
	Value   []byte
	Flags   uint64
	Index   uint64
	Session string
}

// ErrFailed marks an operation whose condition did not hold (a stale CAS
// index, a lock held by another session): the HTTP endpoints answer false.
var ErrFailed = errors.New("operation failed")

// ErrInvalid marks an operation that cannot be done at all (no session, an
// invalid session, an unknown verb): Consul's RPC error.
var ErrInvalid = errors.New("invalid operation")

// OpError is an operation's error: its kind (ErrFailed or ErrInvalid) and
// Consul's text for it.
type OpError struct {
	Kind error
	Text string
}

// Error returns Consul's text.
func (e *OpError) Error() string { return e.Text }

// Unwrap returns the kind.
func (e *OpError) Unwrap() error { return e.Kind }

func failed(format string, a ...any) error {
	return &OpError{Kind: ErrFailed, Text: fmt.Sprintf(format, a...)}
}

func invalid(format string, a ...any) error {
	return &OpError{Kind: ErrInvalid, Text: fmt.Sprintf(format, a...)}
}

// IsWrite reports whether a verb changes the store.
func IsWrite(verb string) bool {
	switch verb {
	case VerbSet, VerbCAS, VerbLock, VerbUnlock, VerbDelete, VerbDeleteCAS, VerbDeleteTree:
		return true
	}
	return false
}

// IsTree reports whether a verb acts on every key under a prefix.
func IsTree(verb string) bool { return verb == VerbGetTree || verb == VerbDeleteTree }

// Apply runs op on the view, as Consul's state store runs it inside a
// transaction: the entries it returns are its results (a get's with its
// value, a write's without).
func (v *View) Apply(op Op) ([]*Entry, error) {
	switch op.Verb {
	case VerbSet:
		return one(v.set(op), nil)
	case VerbCAS:
		return v.cas(op)
	case VerbLock:
		return v.lock(op)
	case VerbUnlock:
		return v.unlock(op)
	case VerbDelete:
		v.delete(op.Key)
		return nil, nil
	case VerbDeleteCAS:
		return nil, v.deleteCAS(op)
	case VerbDeleteTree:
		v.deleteTree(op.Key)
		return nil, nil
	}
	return v.read(op)
}

func (v *View) read(op Op) ([]*Entry, error) {
	e := v.cur[op.Key]
	switch op.Verb {
	case VerbGet:
		if e == nil {
			return nil, failed("key %q doesn't exist", op.Key)
		}
		return []*Entry{e.clone()}, nil
	case VerbGetOrEmpty:
		if e == nil {
			return []*Entry{{Key: op.Key, Flags: op.Flags, Session: op.Session}}, nil
		}
		return []*Entry{e.clone()}, nil
	case VerbGetTree:
		var out []*Entry
		for _, k := range v.under(op.Key) {
			out = append(out, v.cur[k].clone())
		}
		return out, nil
	case VerbCheckIndex:
		if e == nil {
			return nil, failed("failed to check index, key %q doesn't exist", op.Key)
		}
		if e.dirty || e.ModifyIndex != op.Index {
			return nil, failed("failed index check for key %q, current modify index %d != %d", op.Key, e.ModifyIndex, op.Index)
		}
		return one(e, nil)
	case VerbCheckSession:
		if e == nil {
			return nil, failed("failed to check session, key %q doesn't exist", op.Key)
		}
		if e.Session != op.Session {
			return nil, failed("failed session check for key %q, current session %q != %q", op.Key, e.Session, op.Session)
		}
		return one(e, nil)
	case VerbCheckNotExists:
		if e != nil {
			return nil, failed("key %q exists", op.Key)
		}
		return nil, nil
	}
	return nil, invalid("unknown KV verb %q", op.Verb)
}

// one is a write's result: the entry without its value.
func one(e *Entry, err error) ([]*Entry, error) {
	if err != nil || e == nil {
		return nil, err
	}
	c := e.clone()
	c.Value = nil
	return []*Entry{c}, nil
}

// set writes value and flags, keeping the session and lock index; an
// entry that would not change is not written (Consul's Equal check).
func (v *View) set(op Op) *Entry {
	old := v.cur[op.Key]
	n := &Entry{Key: op.Key, Flags: op.Flags, Value: op.Value}
	if old != nil {
		n.Session, n.LockIndex = old.Session, old.LockIndex
		if same(old, n) {
			return old
		}
	}
	return v.put(n)
}

func (v *View) cas(op Op) ([]*Entry, error) {
	old := v.cur[op.Key]
	stale := (op.Index == 0 && old != nil) || (op.Index != 0 && (old == nil || old.dirty || old.ModifyIndex != op.Index))
	if stale {
		return nil, failed("failed to set key %q, index is stale", op.Key)
	}
	return one(v.set(op), nil)
}

// lock acquires op.Key for op.Session: the session must be alive, the key
// free (or already its own) and not under a lock delay.
func (v *View) lock(op Op) ([]*Entry, error) {
	if op.Session == "" {
		return nil, invalid("missing session")
	}
	if v.sessions[op.Session] == 0 {
		return nil, invalid("invalid session %q", op.Session)
	}
	old := v.cur[op.Key]
	held := old != nil && old.Session != ""
	if (held && old.Session != op.Session) || (!held && v.delayed[op.Key]) {
		return nil, failed("failed to lock key %q, lock is already held", op.Key)
	}
	n := &Entry{Key: op.Key, Flags: op.Flags, Value: op.Value, Session: op.Session, LockIndex: 1}
	if old != nil {
		n.LockIndex = old.LockIndex
		if !held {
			n.LockIndex++
		}
		if same(old, n) {
			return one(old, nil)
		}
	}
	return one(v.put(n), nil)
}

// unlock releases op.Key if op.Session holds it, writing op's value and
// flags and keeping the lock index.
func (v *View) unlock(op Op) ([]*Entry, error) {
	if op.Session == "" {
		return nil, invalid("missing session")
	}
	old := v.cur[op.Key]
	if old == nil || old.Session != op.Session {
		return nil, failed("failed to unlock key %q, lock isn't held, or is held by another session", op.Key)
	}
	n := &Entry{Key: op.Key, Flags: op.Flags, Value: op.Value, LockIndex: old.LockIndex}
	return one(v.put(n), nil)
}

func (v *View) delete(k string) {
	if v.cur[k] != nil {
		v.remove(k)
	}
}

// deleteCAS deletes k if its ModifyIndex is op.Index; a missing key is a
// success, as in Consul.
func (v *View) deleteCAS(op Op) error {
	old := v.cur[op.Key]
	if old == nil {
		return nil
	}
	if old.dirty || old.ModifyIndex != op.Index {
		return failed("failed to delete key %q, index is stale", op.Key)
	}
	v.remove(op.Key)
	return nil
}

// deleteTree deletes every key under p and leaves one tombstone for p.
func (v *View) deleteTree(p string) {
	ks := v.under(p)
	for _, k := range ks {
		v.remove(k)
	}
	if len(ks) > 0 {
		v.tombs[p] = true
	}
}

// Invalidate ends session id's hold on k, as Consul does when a session
// ends: with behavior delete the key is deleted, otherwise its session is
// cleared (LockIndex kept) and it is written again, so its index moves
// and blocked readers wake. A key id does not hold is left alone, but its
// lock record is dropped. The commit then also requires id to be dead.
func (v *View) Invalidate(id, k string, deleteKeys bool) {
	v.mustBeDead = id
	old := v.cur[k]
	if old == nil || old.Session != id {
		v.drops[LockKey(id, k)] = true
		return
	}
	if deleteKeys {
		v.remove(k)
		return
	}
	n := old.clone()
	n.Session = ""
	v.put(n)
}
