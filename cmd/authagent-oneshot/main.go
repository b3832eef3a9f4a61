// Command authagent-oneshot is authagent's one-shot front, installed as authagent (and as
// git-credential-authagent and docker-credential-authagent): the commands other programs
// run once per use (the git, Docker and Bazel helpers, kube-credential, token, header)
// it answers itself, through ipc/oneshot and credhelper, with nothing else linked, so they
// start about as fast as any Go program can. Every other command, --help, and any call it
// does not parse exactly as the full binary would, it hands over (exec) to the full
// binary next to it (packaging.FullBinary), which answers it as it always does.
//
// This package is glue: argument parsing and wiring.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/authagent/authagent/cmd/internal/execself"
	"github.com/authagent/authagent/credhelper"
	"github.com/authagent/authagent/ipc/oneshot"
	"github.com/authagent/authagent/ipc/wire"
	"github.com/authagent/authagent/packaging"
)

func main() {
	os.Exit(run(os.Args))
}

// call is a one-shot command line as the full binary's flags read it.
type call struct {
	socket   string // --socket
	command  string // token, header, kube-credential, git-credential, docker-credential, credential-helper
	arg      string // the profile, or the helper's operation
	minValid time.Duration
	idToken  bool
}

func run(argv []string) int {
	c, ok := parse(argv)
	if !ok {
		return handOver(argv)
	}
	err := c.do(context.Background())
	if err == nil {
		return 0
	}
	var answered *credhelper.ExitError
	if errors.As(err, &answered) {
		return answered.Code // the helper told its caller already
	}
	if wire.IsCode(err, wire.CodeConfirmRequired) {
		return handOver(argv) // the full binary asks on the terminal (nothing was printed)
	}
	fmt.Fprintln(os.Stderr, "authagent:", err)
	return 1
}

// parse reads argv as the full binary would, for the one-shot commands only. ok is false
// for anything else: another command, a flag it does not know (--help among them), a
// value it cannot read, or the wrong number of arguments. The full binary then answers.
func parse(argv []string) (c call, ok bool) {
	switch filepath.Base(argv[0]) {
	case "git-credential-authagent":
		c.command = "git-credential"
	case "docker-credential-authagent":
		c.command = "docker-credential"
	}
	var pos []string
	args := argv[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		flag, value, hasValue := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "-") {
			if c.command == "" {
				c.command = a
			} else {
				pos = append(pos, a)
			}
			continue
		}
		if !hasValue && (flag == "--socket" || flag == "--min-valid") {
			if i+1 >= len(args) {
				return c, false
			}
			i++
			value = args[i]
		}
		switch {
		case flag == "--socket":
			c.socket = value
		case flag == "--min-valid" && (c.command == "token" || c.command == "header"):
			d, err := time.ParseDuration(value)
			if err != nil {
				return c, false
			}
			c.minValid = d
		case a == "--id-token" && c.command == "token":
			c.idToken = true
		default:
			return c, false
		}
	}
	if len(pos) != 1 {
		return c, false
	}
	c.arg = pos[0]
	switch c.command {
	case "token", "header", "kube-credential", "git-credential":
		return c, true
	case "docker-credential":
		return c, slices.Contains([]string{"get", "store", "erase", "list"}, c.arg)
	case "credential-helper":
		return c, c.arg == "get"
	}
	return c, false
}

func (c *call) do(ctx context.Context) error {
	agent := &oneshot.Client{Socket: wire.SocketPath(c.socket)}
	if c.command == "token" || c.command == "header" {
		// They read no stdin, so the full binary can run them again and ask on the
		// terminal when a profile asks before each use and the desktop cannot.
		if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
			tty.Close()
			agent.Prompt = "handover"
		}
	}
	defer agent.Close()
	switch c.command {
	case "token":
		return (&credhelper.Token{Agent: agent}).Do(ctx, credhelper.TokenInput{Profile: c.arg, MinValid: c.minValid, IDToken: c.idToken, Out: os.Stdout})
	case "header":
		return (&credhelper.Header{Agent: agent}).Do(ctx, credhelper.HeaderInput{Profile: c.arg, MinValid: c.minValid, Out: os.Stdout})
	case "git-credential":
		return (&credhelper.Git{Agent: agent, Stderr: os.Stderr}).Do(ctx, credhelper.GitInput{Op: c.arg, In: os.Stdin, Out: os.Stdout})
	case "docker-credential":
		return (&credhelper.Docker{Agent: agent}).Do(ctx, credhelper.DockerInput{Op: c.arg, In: os.Stdin, Out: os.Stdout})
	case "credential-helper":
		return (&credhelper.Bazel{Agent: agent}).Do(ctx, credhelper.BazelInput{In: os.Stdin, Out: os.Stdout})
	case "kube-credential":
		k := &credhelper.Kube{Agent: agent, Login: c.login}
		return k.Do(ctx, credhelper.KubeInput{Profile: c.arg, ExecInfo: os.Getenv("KUBERNETES_EXEC_INFO"), Out: os.Stdout})
	}
	return fmt.Errorf("unknown command %q", c.command)
}

// login runs `authagent login NAME` in the full binary with what it shows on stderr, as
// kube-credential does in the full binary: stdout belongs to kubectl. The full binary
// reports its own failure.
func (c *call) login(ctx context.Context, name string) error {
	args := []string{"login", name}
	if c.socket != "" {
		args = append(args, "--socket", c.socket)
	}
	full, err := fullBinary()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, full, args...)
	cmd.Args[0] = "authagent"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stderr, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &credhelper.ExitError{Code: ee.ExitCode()}
	}
	return err
}

// handOver replaces this process with the full binary, on the same command line.
func handOver(argv []string) int {
	full, err := fullBinary()
	if err == nil {
		err = execself.Replace(full, argv, os.Environ())
	}
	fmt.Fprintf(os.Stderr, "authagent: %v\n", err)
	return 1
}

// fullBinary is the full binary that belongs to this front.
func fullBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the full authagent binary: %w", err)
	}
	full := packaging.FullBinary(self)
	if _, err := os.Stat(full); err != nil {
		return "", fmt.Errorf("this command needs the full authagent binary at %s, which is missing (%v): reinstall authagent", full, err)
	}
	return full, nil
}
