//go:build unix

package execself

import "syscall"

// Replace replaces this process with the program at path (execve): on success it does
// not return.
func Replace(path string, argv, env []string) error { return syscall.Exec(path, argv, env) }
