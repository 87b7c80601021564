//go:build synod_unsafe_reapply

package simulation

// unsafeReapply mirrors raftnode's switch (`-tags synod_unsafe_reapply`):
// entries raft replays after a restart are applied again, so tests can show
// the simulation catches an entry applied twice.
const unsafeReapply = true
