// Command authagent is ssh-agent for bearer credentials: `authagent serve` runs the agent;
// every other subcommand is a client of its socket. This package is glue: flag parsing and
// wiring; the logic lives in agent, ipc and the providers.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/authagent/authagent/ipc"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes scripts can rely on.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a mistake in how the command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError carries a child's exit status through (authagent exec).
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// Tools find helpers by name: git runs git-credential-authagent, docker runs
	// docker-credential-authagent. Both are links to this binary.
	switch filepath.Base(os.Args[0]) {
	case "git-credential-authagent":
		args = append([]string{"git-credential"}, args...)
	case "docker-credential-authagent":
		args = append([]string{"docker-credential"}, args...)
	}
	root := newRoot()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var es exitStatus
	if errors.As(err, &es) {
		return es.code
	}
	fmt.Fprintln(os.Stderr, "authagent:", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		fmt.Fprintln(os.Stderr, "Run 'authagent --help' for usage.")
		return exitUsage
	}
	return exitError
}

// cli holds what every client subcommand shares.
type cli struct {
	socket string
	client *ipc.Client
}

func newRoot() *cobra.Command {
	c := &cli{}
	root := &cobra.Command{
		Use:   "authagent",
		Short: "ssh-agent for bearer credentials",
		Long: `authagent keeps you logged in: one agent per user owns your OAuth2 refresh tokens,
API keys and externally managed JWTs, refreshes access tokens before they expire, and
serves current HTTP headers and gRPC metadata to local programs over a Unix socket.

Start an agent with  eval "$(authagent start)"  (or run  authagent serve).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			c.client = &ipc.Client{Socket: c.socket}
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.PersistentFlags().StringVar(&c.socket, "socket", "", "agent socket (default $AUTHAGENT_SOCK, else $XDG_RUNTIME_DIR/authagent/agent.sock)")
	root.AddCommand(
		newServeCmd(c),
		newStartCmd(c),
		newAddCmd(c),
		newRemoveCmd(c),
		newLoginCmd(c),
		newLogoutCmd(c),
		newListCmd(c),
		newTokenCmd(c),
		newHeaderCmd(c),
		newExecCmd(c),
		newSetTokenCmd(c),
		newSignCmd(c),
		newGitCredentialCmd(c),
		newGitCmd(c),
		newCurlCmd(c),
		newKubeCredentialCmd(c),
		newDockerCredentialCmd(c),
		newBazelCredentialCmd(c),
		newInstallCmd(),
		newTrayCmd(c),
		newKeygenCmd(),
		newStatusCmd(c),
		newVersionCmd(),
	)
	for _, cmd := range extraCommands {
		root.AddCommand(cmd())
	}
	return root
}

// extraCommands are added by files built only with a build tag (gen-docs).
var extraCommands []func() *cobra.Command

// noArgs and exactArgs are cobra argument checks that report usage errors.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usageError{fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())}
		}
		return usageError{fmt.Sprintf("%s takes no arguments", cmd.CommandPath())}
	}
	return nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Sprintf("usage: %s %s", cmd.CommandPath(), what)}
		}
		return nil
	}
}
