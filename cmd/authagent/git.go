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

	"github.com/authagent/authagent/agent"
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
	var configPath string
	setup := &cobra.Command{
		Use:   "setup [--host H]… [--remove]",
		Short: "Make authagent the git credential helper for the profiles' hosts (global git config)",
		Long: `Write credential.https://HOST.helper entries to your global git config so that git asks
the agent for credentials on those hosts: for each --host, or else for every host of every
profile. Each entry first resets the helper list for that host, so no other helper (such as
"store") writes the agent's short-lived tokens to disk. --remove takes the entries out again.

The profiles' hosts come from the agent, or, when no agent answers, from the config file.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(hosts) == 0 {
				var err error
				if hosts, err = profileHosts(cmd, c.client, configPath); err != nil {
					return err
				}
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
	setup.Flags().StringVar(&configPath, "config", "", "config file to read the hosts from when no agent answers (default $AUTHAGENT_CONFIG, else $XDG_CONFIG_HOME/authagent/config.toml)")
	git.AddCommand(setup)
	return git
}

// profileHosts lists every host of every profile, sorted: from the agent, or from the
// config file at configPath (default: agent.DefaultConfigPath) when no agent answers.
func profileHosts(cmd *cobra.Command, client *ipc.Client, configPath string) ([]string, error) {
	var lists [][]string
	ps, err := client.Profiles(cmd.Context())
	switch {
	case err == nil:
		for _, p := range ps {
			lists = append(lists, p.Hosts)
		}
	case errors.Is(err, ipc.ErrNoAgent):
		if configPath == "" {
			if configPath, err = agent.DefaultConfigPath(); err != nil {
				return nil, err
			}
		}
		data, rerr := os.ReadFile(configPath)
		if rerr != nil {
			return nil, fmt.Errorf("no agent answers, and the config file cannot be read either (%w); give --host, or start an agent with `eval \"$(authagent start)\"`", rerr)
		}
		cfg, perr := agent.ParseConfig(configPath, data)
		if perr != nil {
			return nil, fmt.Errorf("no agent answers, and the config file does not load: %w", perr)
		}
		for _, pc := range cfg.Profiles {
			lists = append(lists, pc.Hosts)
		}
		fmt.Fprintf(os.Stderr, "no agent answers; the hosts come from %s\n", configPath)
	default:
		return nil, err
	}
	seen := map[string]bool{}
	var hosts []string
	for _, l := range lists {
		for _, h := range l {
			if !seen[h] {
				seen[h] = true
				hosts = append(hosts, h)
			}
		}
	}
	sort.Strings(hosts)
	return hosts, nil
}

// removeGitHelpers takes the credential helper entries that `authagent git setup` wrote
// for hosts out of the global git config, and only those: a host whose entries name no
// authagent helper is left alone. It says on stderr what it did; without git it does
// nothing.
func removeGitHelpers(hosts []string) {
	if _, err := exec.LookPath("git"); err != nil || len(hosts) == 0 {
		return
	}
	for _, h := range hosts {
		for _, key := range credhelper.GitHelperKeys(h) {
			out, err := exec.Command("git", "config", "--global", "--get-all", key).Output()
			if err != nil || !ourGitHelper(string(out)) {
				continue // no such entry (exit 1), or not ours
			}
			if err := gitConfig("--global", "--unset-all", key); err != nil {
				fmt.Fprintln(os.Stderr, "warning:", err)
				continue
			}
			fmt.Fprintf(os.Stderr, "git: %s removed\n", key)
		}
	}
}

// ourGitHelper reports whether the values of a credential.URL.helper key (one a line)
// hold the helper setGitHelper writes.
func ourGitHelper(values string) bool {
	for v := range strings.Lines(values) {
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "!") && strings.Contains(v, "authagent") && strings.HasSuffix(v, " git-credential") {
			return true
		}
	}
	return false
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
