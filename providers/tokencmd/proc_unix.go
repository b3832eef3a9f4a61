//go:build unix

package tokencmd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// watchdogScript blocks until its stdin reaches end of file, then kills its whole process
// group, itself included.
const watchdogScript = "read x; kill -KILL 0"

// group is the process group a command runs in. Its leader is a watchdog (/bin/sh running
// watchdogScript) whose stdin is a pipe that only the agent holds open: when the agent
// exits, however it exits (SIGKILL included), the kernel closes the pipe and the watchdog
// kills the command and every child it left in the group. A command that moves itself to
// another group or session (setsid, a daemon) leaves this net.
//
// This is used instead of Linux's PR_SET_PDEATHSIG, which fires when the thread that forked
// the child ends, not the process (Go ends a thread when a goroutine locked to it exits),
// and reaches only the direct child, never its children.
type group struct {
	watchdog *exec.Cmd
	lifeline *os.File // the agent's end of the watchdog's stdin
}

// newGroup starts the watchdog that leads a new process group.
func newGroup() (*group, error) {
	r, w, err := os.Pipe() // close-on-exec: no command inherits the agent's end
	if err != nil {
		return nil, fmt.Errorf("start the command's watchdog: %w", err)
	}
	defer r.Close()
	wd := exec.Command("/bin/sh", "-c", watchdogScript)
	wd.Stdin = r
	wd.Env = []string{}
	wd.Dir = "/"
	wd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := wd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start the command's watchdog: %w", err)
	}
	return &group{watchdog: wd, lifeline: w}, nil
}

// add makes cmd start in the group and makes a cancelled or timed-out command kill the whole
// group, so a shell script's children die with it instead of holding its stdout open.
func (g *group) add(cmd *exec.Cmd) {
	pgid := g.watchdog.Process.Pid
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	cmd.Cancel = func() error {
		err := syscall.Kill(-pgid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone // it finished just before the timeout
		}
		return err
	}
}

// release ends the watchdog once the command has been waited for. Children the command left
// behind after it exited keep running, as they would had a shell started it.
func (g *group) release() {
	g.watchdog.Process.Kill()
	g.watchdog.Wait()
	g.lifeline.Close()
}
