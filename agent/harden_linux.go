//go:build linux

package agent

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Harden stops the process from writing core dumps and from being ptrace-attached or read
// through /proc by other processes of the same user, as ssh-agent does.
func Harden() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("disable core dumps: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("disable ptrace attach: %w", err)
	}
	return nil
}
