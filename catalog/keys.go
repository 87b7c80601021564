package catalog

import "strings"

// Root is the prefix of everything the Consul API stores; etcd clients see
// it as ordinary keys (docs/discovery.md lists every prefix below it).
const Root = "/consul/"

// Prefixes of the catalog's documents and of its index keys. Documents are
// JSON; index keys hold no value and exist for their mod revision, which is
// the X-Consul-Index of the queries they stand for (see Index*).
const (
	NodePrefix      = Root + "catalog/node/"    // <node> → Node
	ServicePrefix   = Root + "catalog/service/" // <node>/<id> → Service
	CheckPrefix     = Root + "catalog/check/"   // <node>/<checkID> → Check
	ByNamePrefix    = Root + "catalog/byname/"  // <name>/<node>/<id> → Service (same Txn as ServicePrefix)
	IndexPrefix     = Root + "index/"
	IndexNodes      = IndexPrefix + "nodes"      // any node added, changed or removed
	IndexServices   = IndexPrefix + "services"   // any service instance changed
	IndexChecks     = IndexPrefix + "checks"     // any check changed
	IndexNodePrefix = IndexPrefix + "node/"      // <node>: anything of that node changed (the CAS key of node writes)
	IndexNamePrefix = IndexPrefix + "service/"   // <name>: an instance of that name or one of its checks changed
	IndexNodeCheck  = IndexPrefix + "nodecheck/" // <node>: the node or one of its node-level checks changed
)

// Escaping of a key segment: "%" and "/" percent-encoded (as in a URL
// path), so a "/" in a name or ID cannot be read as a separator and every
// prefix query stays exact; every other byte is kept, so keys stay readable.
var (
	segEscaper   = strings.NewReplacer("%", "%25", "/", "%2F")
	segUnescaper = strings.NewReplacer("%2F", "/", "%25", "%")
)

// seg escapes one key segment.
func seg(s string) string { return segEscaper.Replace(s) }

// unseg reverses seg.
func unseg(s string) string { return segUnescaper.Replace(s) }

// NodeKey is the key of a node's document.
func NodeKey(node string) string { return NodePrefix + seg(node) }

// ServiceKey is the key of a service instance's document.
func ServiceKey(node, id string) string { return ServicePrefix + seg(node) + "/" + seg(id) }

// NodeServicesPrefix is the prefix of every service instance on a node.
func NodeServicesPrefix(node string) string { return ServicePrefix + seg(node) + "/" }

// CheckKey is the key of a check's document.
func CheckKey(node, id string) string { return CheckPrefix + seg(node) + "/" + seg(id) }

// NodeChecksPrefix is the prefix of every check on a node.
func NodeChecksPrefix(node string) string { return CheckPrefix + seg(node) + "/" }

// ByNameKey is the key of an instance in the by-name index.
func ByNameKey(name, node, id string) string {
	return ByNamePrefix + seg(name) + "/" + seg(node) + "/" + seg(id)
}

// ByNamePrefixOf is the prefix of every instance of a service name.
func ByNamePrefixOf(name string) string { return ByNamePrefix + seg(name) + "/" }

// NodeIndexKey is the index key of a node's data.
func NodeIndexKey(node string) string { return IndexNodePrefix + seg(node) }

// NameIndexKey is the index key of a service name.
func NameIndexKey(name string) string { return IndexNamePrefix + seg(name) }

// NodeCheckIndexKey is the index key of a node's node-level health.
func NodeCheckIndexKey(node string) string { return IndexNodeCheck + seg(node) }

// NodeOfKey returns the node name of a node, service or check key, and
// false for a key of another shape.
func NodeOfKey(key string) (string, bool) {
	for _, p := range []string{NodePrefix, ServicePrefix, CheckPrefix} {
		if rest, ok := strings.CutPrefix(key, p); ok {
			node, _, _ := strings.Cut(rest, "/")
			return unseg(node), node != ""
		}
	}
	return "", false
}
