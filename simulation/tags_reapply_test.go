//go:build synod_unsafe_reapply

package simulation

func init() { buildTags = append(buildTags, "synod_unsafe_reapply") }
