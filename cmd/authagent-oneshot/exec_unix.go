//go:build unix

package main

import "syscall"

// execReplace replaces this process with the program at path (execve): on success it
// does not return.
func execReplace(path string, argv, env []string) error { return syscall.Exec(path, argv, env) }
