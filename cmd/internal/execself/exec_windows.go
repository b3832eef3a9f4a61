package execself

import (
	"errors"
	"os"
	"os/exec"
)

// Replace runs the program at path with this process's standard streams and exits
// with its status, since Windows cannot replace a process's program: on success it does
// not return. The error is the one starting it gave.
func Replace(path string, argv, env []string) error {
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.ExitCode())
	case err != nil:
		return err
	}
	os.Exit(0)
	return nil
}
