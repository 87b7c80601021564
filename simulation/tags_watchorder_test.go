//go:build synod_unsafe_watchorder

package simulation

func init() { buildTags = append(buildTags, "synod_unsafe_watchorder") }
