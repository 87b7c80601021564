//go:build synod_unsafe_watchorder

package statemachine

// unsafeWatchOrder, compiled in only with `-tags synod_unsafe_watchorder`,
// deliberately breaks the state machine: a committed run of more than one
// revision hands its last two revisions to the watchers in the wrong
// order (watch.Hub then drops the older one). It exists so that tests can
// show the simulation catches a reordered watch event; never ship a build
// with this tag.
const unsafeWatchOrder = true
