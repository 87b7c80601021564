package consulkv

import "strings"

// ListKeys is /v1/kv/<prefix>?keys: the keys under prefix (given sorted),
// each cut after the first separator that follows the prefix, without
// repeats, as Consul's KVS.ListKeys.
func ListKeys(keys []string, prefix, sep string) []string {
	out := []string{}
	for _, k := range keys {
		if sep != "" {
			if i := strings.Index(k[len(prefix):], sep); i >= 0 {
				k = k[:len(prefix)+i+len(sep)]
			}
		}
		if n := len(out); n > 0 && out[n-1] == k {
			continue
		}
		out = append(out, k)
	}
	return out
}
