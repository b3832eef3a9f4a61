package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/wire"
)

func newAuditCmd(c *cli) *cobra.Command {
	var q ipc.AuditQuery
	var since string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show who used or changed which profile, newest last",
		Long: `Show the agent's audit log: each credential, signature, login, logout, token push,
reject and profile change (also those a reload of the config file made), with the
program that asked (its executable and pid, and its parent's: for the git and curl
helpers, the program that ran them), the URL's host and the result; and connections
from other users, refused. The log never holds a token or a secret. A name that holds a
control or format character is shown quoted, with Go escapes ("…", "‮"). It lives in
$XDG_STATE_HOME/authagent/audit.log (~/.local/state/authagent/audit.log) and is read
through the agent.`,
		Example: `  authagent audit --profile work --since 1h
  authagent audit --since 2026-01-02T15:04:05Z --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return usageError{err.Error()}
				}
				q.Since = t
			}
			entries, err := c.client.Audit(cmd.Context(), q)
			if err != nil {
				return err
			}
			if asJSON {
				if entries == nil {
					entries = []ipc.AuditEntry{}
				}
				return writeJSON(wire.AuditLog{Entries: entries})
			}
			if len(entries) == 0 {
				fmt.Fprintln(os.Stderr, "no audit entries match")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tPROFILE\tOP\tRESULT\tHOST\tCALLER")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"),
					dash(wire.Printable(e.Profile)), wire.Printable(e.Op), wire.Printable(e.Result), dash(wire.Printable(e.Host)), callerText(e))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&q.Profile, "profile", "", "only this profile's entries")
	cmd.Flags().StringVar(&since, "since", "", "only entries this recent: a duration (30m, 24h) or an RFC 3339 time")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "at most this many entries, the newest (default 100, at most 10000)")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"entries":[…]}, as GET /v1/audit answers`)
	return cmd
}

// parseSince reads --since: a duration back from now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration like 30m or 24h, or an RFC 3339 time like 2026-01-02T15:04:05Z", s)
}

// callerText names an entry's caller: "git-credential-authagent (4242) via git", or for a
// connection refused from another user "? (4242) uid 1001".
func callerText(e ipc.AuditEntry) string {
	if e.Exe == "" && e.PID == 0 && e.UID == nil {
		return "-"
	}
	var b strings.Builder
	b.WriteString(wire.Printable(baseOr(e.Exe, "?")))
	if e.PID != 0 {
		fmt.Fprintf(&b, " (%d)", e.PID)
	}
	if e.ParentExe != "" {
		b.WriteString(" via " + wire.Printable(filepath.Base(e.ParentExe)))
	}
	if e.UID != nil {
		fmt.Fprintf(&b, " uid %d", *e.UID)
	}
	return b.String()
}

func baseOr(path, none string) string {
	if path == "" {
		return none
	}
	return filepath.Base(path)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
