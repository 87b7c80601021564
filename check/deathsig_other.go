//go:build !linux

package check

import "os/exec"

// dieWithChecker is a no-op where the kernel cannot tie a child's life to
// its parent's; Cluster.Stop still kills every member on a normal exit.
func dieWithChecker(*exec.Cmd) {}
