package check

import (
	"os/exec"
	"syscall"
)

// dieWithChecker makes the kernel kill a member if the checker dies, so an
// interrupted check (or test) leaves no synod processes behind.
func dieWithChecker(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
