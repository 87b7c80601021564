//go:build !linux

package main

import "time"

// applyTimerSlack does nothing outside Linux (no per-thread timer slack).
func applyTimerSlack(time.Duration) error { return nil }
