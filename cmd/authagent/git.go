package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authagent/authagent/credhelper"
	"github.com/authagent/authagent/ipc"
)

// newGitCredentialCmd is git's credential helper; git runs it as
// `git-credential-authagent OP` (a link to this binary) or through
// `credential.helper = !authagent git-credential`.
func newGitCredentialCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:    "git-credential get|store|erase",
		Short:  "git credential helper (git runs this; see `authagent git setup`)",
		Hidden: true,
		Args:   exactArgs(1, "get|store|erase"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return gitCredential(cmd, c.client, args[0], os.Stdin, os.Stdout)
		},
	}
}

// gitCredential answers one git request. It never fails git: with no agent, no profile
// for the host or a profile that needs a login, it says so on stderr at most and prints
// nothing, so git goes on to its next helper or asks the user. A socket that another user
// serves is an error (git goes on all the same), so scripts notice.
func gitCredential(cmd *cobra.Command, client *ipc.Client, op string, in io.Reader, out io.Writer) error {
	req, err := credhelper.ReadGitRequest(in)
	if err != nil {
		return err
	}
	if op != "get" && op != "erase" {
		return nil // store: the agent owns the token; unknown operations are ignored
	}
	if req.Protocol != "https" && req.Protocol != "http" {
		return nil
	}
	ctx := cmd.Context()
	cred, err := client.CredentialForURL(ctx, req.URL())
	var ae *ipc.Error
	switch {
	case errors.As(err, &ae) && ae.Code == ipc.CodeNoProfile:
		return nil
	case ipc.IsUntrustedServer(err):
		return err
	case err != nil:
		if op == "get" {
			fmt.Fprintln(os.Stderr, "authagent:", oneLine(err.Error()))
		}
		return nil
	}
	if op == "erase" {
		if refused := req.Refused(); refused != "" && refused != cred.Token {
			return nil // the agent moved on to a newer token already; keep that one
		}
		if err := client.Reject(ctx, cred.Profile); err != nil {
			fmt.Fprintln(os.Stderr, "authagent:", oneLine(err.Error()))
		}
		return nil
	}
	a := credhelper.GitAnswer{Username: cred.Username, Token: cred.Token, TokenType: cred.TokenType, ExpiresAt: expiresOf(cred)}
	return credhelper.WriteGitAnswer(out, req, a)
}

// expiresOf is a credential's expiry, zero when it has none.
func expiresOf(c *ipc.Credential) time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return *c.ExpiresAt
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func newGitCmd(c *cli) *cobra.Command {
	git := &cobra.Command{
		Use:   "git",
		Short: "Set up git to get credentials from the agent",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	var hosts []string
	var remove bool
	setup := &cobra.Command{
		Use:   "setup [--host H]… [--remove]",
		Short: "Make authagent the git credential helper for the profiles' hosts (global git config)",
		Long: `Write credential.https://HOST.helper entries to your global git config so that git asks
the agent for credentials on those hosts: for each --host, or else for every host of every
profile. Each entry first resets the helper list for that host, so no other helper (such as
"store") writes the agent's short-lived tokens to disk. --remove takes the entries out again.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(hosts) == 0 {
				ps, err := c.client.Profiles(cmd.Context())
				if err != nil {
					return err
				}
				seen := map[string]bool{}
				for _, p := range ps {
					for _, h := range p.Hosts {
						if !seen[h] {
							seen[h] = true
							hosts = append(hosts, h)
						}
					}
				}
				sort.Strings(hosts)
				if len(hosts) == 0 {
					return errors.New("no profile lists any hosts; give --host or add hosts to a profile")
				}
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			for _, h := range hosts {
				if remove {
					for _, key := range credhelper.GitHelperKeys(h) {
						if err := gitConfig("--global", "--unset-all", key); err != nil && key == credhelper.GitHelperKeys(h)[0] {
							return err
						}
						fmt.Fprintf(os.Stderr, "git: %s removed\n", key)
					}
					continue
				}
				if err := setGitHelper(h, self); err != nil {
					return err
				}
			}
			return nil
		},
	}
	setup.Flags().StringArrayVar(&hosts, "host", nil, "host to set up (repeatable; default: every profile's hosts)")
	setup.Flags().BoolVar(&remove, "remove", false, "remove the entries instead")
	git.AddCommand(setup)
	return git
}

// setGitHelper makes the binary at self git's only credential helper for https://host,
// and for http://host too when host is loopback (where the agent allows plain http).
func setGitHelper(host, self string) error {
	for _, key := range credhelper.GitHelperKeys(host) {
		gitConfig("--global", "--unset-all", key) // start clean; missing is fine
		if err := gitConfig("--global", "--add", key, ""); err != nil {
			return err
		}
		if err := gitConfig("--global", "--add", key, "!"+shellQuote(self)+" git-credential"); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "git: %s set\n", key)
	}
	return nil
}

func gitConfig(args ...string) error {
	out, err := exec.Command("git", append([]string{"config"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("git config %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
