package consulapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/catalog"
	"github.com/synod-db/synod/consulkv"
)

// maxSessionsPerNode bounds the live sessions of one node.
const maxSessionsPerNode = 4096

// maxLocksPerRound bounds the keys one invalidation transaction releases.
const maxLocksPerRound = 16

// errNoLease is returned when sessions with a TTL are asked of a server
// built without a lease client.
var errNoLease = errors.New("consulapi: no lease client: sessions with a TTL are not served")

// newSessionID is a random UUID (version 4), as Consul's session IDs.
func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// decodeSession reads a stored session with its key's revisions as its
// indexes.
func decodeSession(kv *mvccpb.KeyValue) (*consulkv.Session, error) {
	var sess consulkv.Session
	if err := json.Unmarshal(kv.Value, &sess); err != nil {
		return nil, fmt.Errorf("consulapi: stored session %q: %w", kv.Key, err)
	}
	sess.CreateIndex, sess.ModifyIndex = uint64(kv.CreateRevision), uint64(kv.ModRevision)
	return &sess, nil
}

// nodeCheckStates are a node's checks by ID with their status, nil when the
// node is not registered.
func nodeCheckStates(st *catalog.NodeState) map[string]string {
	if st.Node == nil {
		return nil
	}
	out := map[string]string{}
	for id, c := range st.Checks {
		out[id] = c.Status
	}
	return out
}

// createSession stores a new session: its node must be registered and the
// checks it names must exist and not be critical, read and written in one
// transaction compared on the node's index key, so a check that goes
// critical meanwhile makes it read again. A session with a TTL lives on an
// etcd lease of SessionTTLMultiplier times that TTL.
func (s *Server) createSession(ctx context.Context, sess *consulkv.Session) (string, error) {
	ttl, _ := sess.TTLDuration() // validated
	var lease clientv3.LeaseID
	if ttl > 0 {
		if s.cfg.Lease == nil {
			return "", errNoLease
		}
		g, err := s.cfg.Lease.Grant(ctx, ceilSeconds(ttl*SessionTTLMultiplier))
		if err != nil {
			return "", err
		}
		lease = g.ID
	}
	id, err := s.storeSession(ctx, sess, lease)
	if err != nil && lease != 0 {
		s.cfg.Lease.Revoke(context.WithoutCancel(ctx), lease)
	}
	return id, err
}

func (s *Server) storeSession(ctx context.Context, sess *consulkv.Session, lease clientv3.LeaseID) (string, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		st, idxRev, err := s.readNode(ctx, modeConsistent, sess.Node)
		if err != nil {
			return "", err
		}
		if err := sess.Healthy(nodeCheckStates(st), catalog.StatusCritical); err != nil {
			return "", err
		}
		n, err := s.cfg.KV.Get(ctx, consulkv.NodeSessionsPrefix(sess.Node), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return "", err
		}
		if n.Count >= maxSessionsPerNode {
			return "", fmt.Errorf("node %q has %d sessions: at most %d are served", sess.Node, n.Count, maxSessionsPerNode)
		}
		sess.ID = newSessionID()
		doc, _ := json.Marshal(sess)
		resp, err := s.cfg.KV.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(catalog.NodeIndexKey(sess.Node)), "=", idxRev),
			clientv3.Compare(clientv3.CreateRevision(consulkv.ShadowKey(sess.ID)), "=", 0)). // a fresh ID
			Then(clientv3.OpPut(consulkv.SessionKey(sess.ID), string(doc), clientv3.WithLease(lease)),
				clientv3.OpPut(consulkv.NodeSessionKey(sess.Node, sess.ID), "", clientv3.WithLease(lease)),
				clientv3.OpPut(consulkv.ShadowKey(sess.ID), string(doc)),
				clientv3.OpPut(consulkv.SessionIndexKey, "")).Commit()
		if err != nil {
			return "", err
		}
		if resp.Succeeded {
			return sess.ID, nil
		}
	}
	return "", errConflict
}

// SessionTTLMultiplier is how many times its TTL a session lives after its
// last renewal, as in Consul's server (its structs.SessionTTLMultiplier):
// clients count on it, Patroni halving its ttl for the session's TTL so
// that its leader lock lasts the ttl it was configured with.
const SessionTTLMultiplier = 2

func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// destroySession ends a session now: its keys go (with its lease), then
// its locks are released as on any end (finishSession). Destroying a
// session that does not exist does nothing, as in Consul.
func (s *Server) destroySession(ctx context.Context, id string) error {
	resp, err := s.cfg.KV.Get(ctx, consulkv.SessionKey(id))
	if err != nil {
		return err
	}
	if len(resp.Kvs) > 0 {
		kv := resp.Kvs[0]
		sess, err := decodeSession(kv)
		if err != nil {
			return err
		}
		_, err = s.cfg.KV.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(string(kv.Key)), "=", kv.CreateRevision)).
			Then(clientv3.OpDelete(string(kv.Key)), clientv3.OpDelete(consulkv.NodeSessionKey(sess.Node, id)),
				clientv3.OpPut(consulkv.SessionIndexKey, "")).Commit()
		if err != nil {
			return err
		}
		if kv.Lease != 0 && s.cfg.Lease != nil {
			s.cfg.Lease.Revoke(ctx, clientv3.LeaseID(kv.Lease))
		}
	}
	return s.finishSession(ctx, id)
}

// renewSession resets a TTL session's lease; it returns nil when the
// session does not exist (any more).
func (s *Server) renewSession(ctx context.Context, id string) (*consulkv.Session, error) {
	resp, err := s.cfg.KV.Get(ctx, consulkv.SessionKey(id))
	if err != nil || len(resp.Kvs) == 0 {
		return nil, err
	}
	sess, err := decodeSession(resp.Kvs[0])
	if err != nil {
		return nil, err
	}
	if l := resp.Kvs[0].Lease; l != 0 && s.cfg.Lease != nil {
		if _, err := s.cfg.Lease.KeepAliveOnce(ctx, clientv3.LeaseID(l)); err != nil {
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return nil, nil
			}
			return nil, err
		}
	}
	return sess, nil
}

// finishSession cleans up after a session that has ended, however it
// ended (destroyed, its lease expired, a check it depends on failed): each
// key it holds is released (Session cleared, LockIndex kept) or, with
// behavior delete, deleted, and may not be acquired for the session's lock
// delay; then its shadow goes and the session index moves. Each step is a
// transaction that requires the session to be dead and the keys to be as
// read, so any member may run it, at any time, any number of times.
func (s *Server) finishSession(ctx context.Context, id string) error {
	var delayLease clientv3.LeaseID
	for attempt := 0; attempt < maxAttempts; {
		resp, err := s.read(ctx, modeConsistent, clientv3.OpGet(consulkv.ShadowKey(id)),
			clientv3.OpGet(consulkv.SessionKey(id), clientv3.WithKeysOnly()),
			clientv3.OpGet(consulkv.LocksPrefix(id), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(maxLocksPerRound)))
		if err != nil {
			return err
		}
		shadow, alive, locks := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs, resp.Responses[2].GetResponseRange().Kvs
		if len(shadow) == 0 || len(alive) > 0 {
			return nil // done already, or not ended
		}
		sess, err := decodeSession(shadow[0])
		if err != nil {
			return err
		}
		if len(locks) == 0 {
			_, err := s.cfg.KV.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(consulkv.SessionKey(id)), "=", 0),
				clientv3.Compare(clientv3.ModRevision(consulkv.ShadowKey(id)), "=", shadow[0].ModRevision)).
				Then(clientv3.OpDelete(consulkv.ShadowKey(id)), clientv3.OpPut(consulkv.SessionIndexKey, "")).Commit()
			return err
		}
		if delayLease == 0 && sess.LockDelay > 0 && s.cfg.Lease != nil {
			g, err := s.cfg.Lease.Grant(ctx, ceilSeconds(sess.LockDelay))
			if err != nil {
				return err
			}
			delayLease = g.ID
		}
		done, err := s.releaseLocks(ctx, sess, locks, delayLease)
		if err != nil {
			return err
		}
		if !done {
			attempt++
		}
	}
	return errKVConflict
}

// releaseLocks invalidates a dead session's hold on the keys of some of
// its lock records in one transaction, putting each released key's lock
// delay on delayLease (none when 0).
func (s *Server) releaseLocks(ctx context.Context, sess *consulkv.Session, locks []*mvccpb.KeyValue, delayLease clientv3.LeaseID) (bool, error) {
	var ops []consulkv.Op
	for _, kv := range locks {
		if _, k, ok := consulkv.LockedKey(string(kv.Key)); ok {
			ops = append(ops, consulkv.Op{Verb: consulkv.VerbGet, Key: k})
		}
	}
	v, err := s.loadView(ctx, modeConsistent, ops)
	if err != nil {
		return false, err
	}
	var delays []clientv3.Op
	for _, op := range ops {
		if e := v.Entry(op.Key); e != nil && e.Session == sess.ID && delayLease != 0 {
			delays = append(delays, clientv3.OpPut(consulkv.DelayKey(op.Key), "", clientv3.WithLease(delayLease)))
		}
		v.Invalidate(sess.ID, op.Key, sess.Behavior == consulkv.BehaviorDelete)
	}
	done, _, err := s.commitPlan(ctx, v.Plan(time.Now().Unix()), delays...)
	return done, err
}
