//go:build !unix

package tokencmd

import "os/exec"

// group does nothing on systems without process groups: a timeout kills the command itself,
// and its children only if they exit with it; a command in flight outlives an agent that is
// killed. The WaitDelay set by Run still makes it return when children hold its stdout.
type group struct{}

func newGroup() (*group, error) { return &group{}, nil }

func (g *group) add(cmd *exec.Cmd) {}

func (g *group) release() {}
