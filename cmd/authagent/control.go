package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authagent/authagent/ipc"
)

// stopWait is how long `authagent stop` waits for the agent's process to end.
const stopWait = 15 * time.Second

func newStopCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Ask the agent to exit cleanly",
		Long: `Ask the agent on the socket to exit cleanly (POST /v1/stop), and wait until its process
has ended: it finishes saving what fetches in flight got, removes its socket and exits 0.
Only your own agent takes the request, so no other user's agent is touched.

An agent that systemd starts through socket activation (` + "`authagent install --user`" + `)
starts again on the next request; to stop it for good, run
systemctl --user stop authagent.socket authagent.service`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := c.client.Stop(cmd.Context())
			if err != nil {
				return err
			}
			deadline := time.Now().Add(stopWait)
			for processAlive(pid) {
				if time.Now().After(deadline) {
					return fmt.Errorf("asked the agent (pid %d) to stop, but it is still running after %s; its log says why", pid, stopWait)
				}
				time.Sleep(20 * time.Millisecond)
			}
			fmt.Fprintf(os.Stderr, "agent pid %d stopped\n", pid)
			return nil
		},
	}
}

func newReloadCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the agent read its config file again",
		Long: `Make the agent read its config file again (POST /v1/reload), as SIGHUP does, and say
whether that worked. A file that does not load is refused with its file, line and key, and
the agent keeps the config it had; ` + "`authagent status`" + ` and ` + "`authagent list`" + ` show
the error until a reload works.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := c.client.Reload(ctx); err != nil {
				var ae *ipc.Error
				if errors.As(err, &ae) {
					return fmt.Errorf("config reload failed; the agent keeps the config it had:\n%s\nfix the file, then run `authagent reload` again", indent(ae.Message))
				}
				return err
			}
			st, err := c.client.Status(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "config reloaded: %d profiles\n", st.Profiles)
			if st.ConfigWarning != "" {
				fmt.Fprintln(os.Stderr, "warning:", st.ConfigWarning)
			}
			return nil
		},
	}
}

// printConfigProblems tells what the agent says about its config file: the last reload's
// error, and a change that waits for a restart.
func printConfigProblems(w io.Writer, st *ipc.Status) {
	if st.ConfigError != "" {
		fmt.Fprintf(w, "config error: the last reload failed, so the agent keeps the config it had:\n%s\n"+
			"fix the file, then run `authagent reload`\n", indent(st.ConfigError))
	}
	if st.ConfigWarning != "" {
		fmt.Fprintln(w, "config warning:", st.ConfigWarning)
	}
}

// indent puts two spaces before every line of s.
func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
