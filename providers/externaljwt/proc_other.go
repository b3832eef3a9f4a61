//go:build !unix

package externaljwt

import "os/exec"

// killGroupOnCancel leaves exec's default in place on systems without process groups: a
// timeout kills the command itself, and its children only if they exit with it. The
// WaitDelay set by run still makes Fetch return when they hold its stdout open.
func killGroupOnCancel(cmd *exec.Cmd) {}
