package agent

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Harden stops the process from writing core dumps and denies debuggers the ptrace attach
// (PT_DENY_ATTACH), as OpenSSH's ssh-agent does on macOS. It does not stop task_for_pid,
// which macOS gives only to root and to signed debuggers the user approved.
func Harden() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("disable core dumps: %w", err)
	}
	if err := unix.PtraceDenyAttach(); err != nil {
		return fmt.Errorf("deny ptrace attach: %w", err)
	}
	return nil
}
