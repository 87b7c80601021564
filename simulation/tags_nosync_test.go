//go:build synod_unsafe_nosync

package simulation

func init() { buildTags = append(buildTags, "synod_unsafe_nosync") }
