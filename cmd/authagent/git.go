package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/credhelper"
	"github.com/authagent/authagent/gitsetup"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/packaging"
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
			g := &credhelper.Git{Agent: c.client, Stderr: os.Stderr}
			return g.Do(cmd.Context(), credhelper.GitInput{Op: args[0], In: os.Stdin, Out: os.Stdout})
		},
	}
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
			self = packaging.Front(self) // git runs the one-shot front, when there is one
			for _, h := range hosts {
				if remove {
					if err := gitsetup.Unset(os.Stderr, h); err != nil {
						return err
					}
					continue
				}
				if err := gitsetup.Set(os.Stderr, h, self); err != nil {
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
