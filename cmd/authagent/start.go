package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authagent/authagent/gitsetup"
	"github.com/authagent/authagent/ipc"
)

func newStartCmd(c *cli) *cobra.Command {
	var fish bool
	var configPath string
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start an agent in the background unless one answers, and print its environment",
		Long: `Start an agent in the background unless one already answers on the socket, then print
the shell commands that point clients at it, like ssh-agent -s:

    eval "$(authagent start)"          # sh, bash, zsh
    authagent start --fish | source    # fish

The background agent logs to $XDG_STATE_HOME/authagent/agent.log
(default ~/.local/state/authagent/agent.log).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sock, client := c.socket, c.client
			st, err := client.Status(cmd.Context())
			if err != nil {
				if ipc.IsUntrustedServer(err) {
					return err // another user's socket: a new agent could not listen there either
				}
				if st, err = spawnAgent(cmd.Context(), client, sock, configPath); err != nil {
					return err
				}
			}
			if fish {
				fmt.Printf("set -x AUTHAGENT_SOCK %s;\necho Agent pid %d;\n", gitsetup.ShellQuote(sock), st.PID)
			} else {
				fmt.Printf("AUTHAGENT_SOCK=%s; export AUTHAGENT_SOCK;\necho Agent pid %d;\n", gitsetup.ShellQuote(sock), st.PID)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fish, "fish", false, "print fish syntax")
	cmd.Flags().StringVar(&configPath, "config", "", "config file for the new agent")
	return cmd
}

// spawnAgent starts `authagent serve` detached from this terminal and waits until it answers.
func spawnAgent(ctx context.Context, client *ipc.Client, sock, configPath string) (*ipc.Status, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath, err := agentLogPath()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open agent log: %w", err)
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd) // what the new agent logs starts here
	args := []string{"serve", "--socket", sock}
	if configPath != "" {
		args = append(args, "--config", configPath)
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(startTimeout)
	for {
		st, err := client.Status(ctx)
		if err == nil {
			cmd.Process.Release()
			return st, nil
		}
		if ipc.IsUntrustedServer(err) {
			return nil, fmt.Errorf("%w; the agent started in its place (pid %d): %s", err, cmd.Process.Pid, stopAgent(cmd.Process.Pid, exited))
		}
		select {
		case err := <-exited:
			if said := logSince(logPath, logStart, 20); said != "" {
				return nil, fmt.Errorf("the agent exited at start (%v); it said:\n%s\n(from %s)", err, indent(said), logPath)
			}
			return nil, fmt.Errorf("the agent exited at start (%v); see %s", err, logPath)
		case <-deadline:
			stopped := stopAgent(cmd.Process.Pid, exited)
			said := ""
			if s := logSince(logPath, logStart, 20); s != "" {
				said = "; its last log lines:\n" + indent(s)
			}
			return nil, fmt.Errorf("the agent (pid %d) did not answer on %s within %s; %s; "+
				"see %s for why, or run `authagent serve` to watch it start in the foreground%s",
				cmd.Process.Pid, sock, startTimeout, stopped, logPath, said)
		case <-ctx.Done():
			return nil, fmt.Errorf("start interrupted (%w); %s", ctx.Err(), stopAgent(cmd.Process.Pid, exited))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startTimeout is how long start waits for a new agent to answer on its socket.
const startTimeout = 10 * time.Second

// stopAgent ends an agent that start launched but gave up on, and whatever that agent
// started (it leads a process group of its own, from Setsid): SIGTERM first so it can
// remove its socket, SIGKILL if it is still there after a moment. It waits until the agent
// is reaped (exited receives Wait's result), so start leaves nothing behind, and says what
// it did for the error message.
func stopAgent(pid int, exited <-chan error) string {
	stopGroup(pid, false)
	select {
	case <-exited:
		return "it was stopped"
	case <-time.After(2 * time.Second):
	}
	stopGroup(pid, true)
	select {
	case <-exited:
		return "it was killed"
	case <-time.After(5 * time.Second):
		// Only a process stuck in the kernel (a hung network file system) outlives SIGKILL.
		return fmt.Sprintf("it could not be stopped: kill process group %d yourself once it can be", pid)
	}
}

// logSince returns the last n lines the log at path got from offset on, or "".
func logSince(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func agentLogPath() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "authagent", "agent.log"), nil
}
