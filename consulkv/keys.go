package consulkv

import "strings"

// Prefixes of the KV store and of sessions in synod's keyspace
// (docs/discovery.md). A Consul key k is stored as is, unescaped, so etcd
// clients find its raw value at KVPrefix+k.
const (
	KVPrefix        = "/consul/kv/"           // <key> → the raw value
	MetaPrefix      = "/consul/kvmeta/"       // <key> → Meta as JSON, absent when all zero
	TombPrefix      = "/consul/kvtomb/"       // <key or tree prefix> → deletion time; keeps indexes from going back
	DelayPrefix     = "/consul/kvdelay/"      // <key> → empty, on a lease of the lock delay
	IndexKey        = "/consul/index/kv"      // empty; put by every KV write: the index of reads that find nothing
	SessionRoot     = "/consul/session/"      // everything of sessions is below it
	SessionPrefix   = SessionRoot + "id/"     // <id> → Session, on the session's lease when it has a TTL
	SessionNodePfx  = SessionRoot + "node/"   // <node>/<id> → empty, same lease
	ShadowPrefix    = SessionRoot + "shadow/" // <id> → Session, no lease: what is left to clean up when it ends
	LockPrefix      = SessionRoot + "lock/"   // <id>/<key> → empty: the session holds key
	SessionIndexKey = SessionRoot + "index"   // empty; put by every session change: the index of session reads
)

// ValueKey is the etcd key of a Consul key's value.
func ValueKey(k string) string { return KVPrefix + k }

// MetaKey is the etcd key of a Consul key's metadata.
func MetaKey(k string) string { return MetaPrefix + k }

// TombKey is the etcd key of a deleted key's (or tree's) tombstone.
func TombKey(k string) string { return TombPrefix + k }

// DelayKey is the etcd key whose presence is a key's lock delay.
func DelayKey(k string) string { return DelayPrefix + k }

// SessionKey is the etcd key of a live session.
func SessionKey(id string) string { return SessionPrefix + id }

// ShadowKey is the etcd key of a session's shadow.
func ShadowKey(id string) string { return ShadowPrefix + id }

// NodeSessionsPrefix is the prefix of a node's sessions.
func NodeSessionsPrefix(node string) string { return SessionNodePfx + nodeEscaper.Replace(node) + "/" }

// nodeEscaper percent-encodes "%" and "/" in a node name, as the catalog's
// keys do, so a "/" in it cannot be read as a separator.
var nodeEscaper = strings.NewReplacer("%", "%25", "/", "%2F")

// NodeSessionKey is the key of one session in its node's list.
func NodeSessionKey(node, id string) string { return NodeSessionsPrefix(node) + id }

// LocksPrefix is the prefix of the locks a session holds.
func LocksPrefix(id string) string { return LockPrefix + id + "/" }

// LockKey is the key recording that session id holds k.
func LockKey(id, k string) string { return LocksPrefix(id) + k }

// LockedKey parses a LockKey into its session and Consul key.
func LockedKey(etcdKey string) (id, k string, ok bool) {
	rest, ok := strings.CutPrefix(etcdKey, LockPrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}
