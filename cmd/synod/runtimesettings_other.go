//go:build !linux

package main

import "time"

// applyRuntimeSettings does nothing outside Linux (no per-thread timer
// slack; the runtime's defaults are kept).
func applyRuntimeSettings(time.Duration) error { return nil }
