//go:build synod_unsafe_nostatesync

package simulation

func init() { buildTags = append(buildTags, "synod_unsafe_nostatesync") }
