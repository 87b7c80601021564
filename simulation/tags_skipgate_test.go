//go:build synod_unsafe_skipgate

package simulation

func init() { buildTags = append(buildTags, "synod_unsafe_skipgate") }
