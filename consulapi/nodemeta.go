package consulapi

import (
	"net/http"
	"strings"

	"github.com/synod-db/synod/catalog"
)

// nodeMeta reads ?node-meta=key:value (repeatable) as Consul does: the key
// is what comes before the first ':', the value the rest ("" without one).
func nodeMeta(r *http.Request) map[string]string {
	vs := r.URL.Query()["node-meta"]
	if len(vs) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, v := range vs {
		k, val, _ := strings.Cut(v, ":")
		out[k] = val
	}
	return out
}

// keepNodeMeta keeps the entries whose node carries every ?node-meta pair.
func keepNodeMeta(es []*catalog.ServiceEntry, want map[string]string) []*catalog.ServiceEntry {
	if len(want) == 0 {
		return es
	}
	var out []*catalog.ServiceEntry
	for _, e := range es {
		if catalog.HasNodeMeta(e.Node, want) {
			out = append(out, e)
		}
	}
	return out
}
