//go:build synod_unsafe_consulstale

package consulapi

// unsafeStaleDefault, compiled in only with `-tags synod_unsafe_consulstale`,
// deliberately breaks the promise that Consul API reads are linearizable by
// default: a read without ?consistent is served from the member's local
// copy, as ?stale would be. A member cut off from the majority then answers
// from state that others have moved past. It exists so that tests can show
// that `synod check --workload catalog` catches it under partitions; never
// ship a build with this tag.
const unsafeStaleDefault = true
