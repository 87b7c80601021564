//go:build synod_unsafe_nostatesync

package raftnode

// unsafeNoStateSync, compiled in only with `-tags synod_unsafe_nostatesync`,
// deliberately skips the state's sync before a snapshot truncates the raft
// log, so a crash can leave the state behind a log that no longer holds the
// entries in between. It exists so that tests can show that the
// deterministic simulation catches it; never ship a build with this tag.
const unsafeNoStateSync = true
