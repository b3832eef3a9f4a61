//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// detach makes cmd lead a session of its own, so that it outlives the terminal that
// started it and stopGroup reaches whatever it starts.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }

// stopGroup signals the process group that pid leads: SIGTERM, or SIGKILL when hard.
func stopGroup(pid int, hard bool) {
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	syscall.Kill(-pid, sig)
}

// processAlive reports whether a process with pid runs and is ours. (An agent reached
// through a forwarded socket runs elsewhere: its pid means nothing here, and no process
// of ours by that number is taken for it only until stopWait runs out.)
func processAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}
