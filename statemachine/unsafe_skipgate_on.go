//go:build synod_unsafe_skipgate

package statemachine

// unsafeSkipGate, compiled in only with `-tags synod_unsafe_skipgate`,
// deliberately breaks the state machine: the NOSPACE alarm no longer
// refuses puts and lease grants (AlarmGate), on apply or at the edge. It
// exists so that tests can show the simulation catches a missing gate;
// never ship a build with this tag.
const unsafeSkipGate = true
