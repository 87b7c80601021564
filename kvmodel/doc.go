// Package kvmodel holds porcupine models of etcd's revision-aware key-value
// semantics: per-key registers (get, put, compare-and-set on value or
// mod_revision, delete) and multi-key transactions over small key groups.
// Both the process-level checker (package check) and the in-process
// deterministic simulation (package simulation) check their histories
// against these models. The package is pure: no I/O, no clock.
package kvmodel
