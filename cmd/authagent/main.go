// Command authagent is ssh-agent for bearer credentials: `authagent serve` runs the agent;
// every other subcommand is a client of its socket. This package is glue: flag parsing and
// wiring; the logic lives in packages (agent, ipc/server, ipc, credhelper, login,
// gitsetup, the providers). Packages install it as PREFIX/libexec/authagent/authagent
// behind the one-shot front (cmd/authagent-oneshot); built alone, it answers every command.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/authagent/authagent/credhelper"
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
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var es exitStatus
	if errors.As(err, &es) {
		return es.code
	}
	var answered *credhelper.ExitError
	if errors.As(err, &answered) {
		return answered.Code // the helper told its caller already
	}
	fmt.Fprintln(os.Stderr, "authagent:", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitError
}

// cli holds what every client subcommand shares.
type cli struct {
	socket string // absolute, once a subcommand runs
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
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			c.socket = ipc.SocketPath(c.socket) // the one place the socket is resolved
			c.client = &ipc.Client{Socket: c.socket, Prompt: terminalPrompt()}
		},
	}
	root.SetVersionTemplate("authagent {{.Version}}\n") // as `authagent version` prints it
	root.SetFlagErrorFunc(flagError)
	root.PersistentFlags().StringVar(&c.socket, "socket", "", "agent socket (default $AUTHAGENT_SOCK, else $XDG_RUNTIME_DIR/authagent/agent.sock, else /tmp/authagent-$UID/agent.sock)")
	// `authagent help lsit` is a mistake like `authagent lsit`: say so, with a suggestion.
	defaultHelp := root.HelpFunc()
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return noArgs(root, args)
			}
			defaultHelp(target, nil)
			return nil
		},
	})
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
		newSetSecretCmd(c),
		newStopCmd(c),
		newReloadCmd(c),
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
		newAuditCmd(c),
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
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			if s := suggest(args[0], names); s != "" {
				msg += "; did you mean " + s + "?"
			}
			return usageError{msg}
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

// flagError turns a flag parsing error into a usage error that helps: the closest flag
// the command has for an unknown one, and where the arguments of the program that curl
// and exec run belong.
func flagError(cmd *cobra.Command, err error) error {
	// "authagent lsit --json": the command is the mistake, not the flag it has.
	if pos := cmd.Flags().Args(); cmd.HasSubCommands() && len(pos) > 0 {
		return noArgs(cmd, pos)
	}
	msg := err.Error()
	name, unknown := unknownFlag(msg)
	if !unknown {
		return usageError{msg}
	}
	switch cmd.Name() {
	case "curl":
		return usageError{fmt.Sprintf("%s: curl's own arguments go after --, as in `authagent curl [NAME] -- %s URL`", msg, name)}
	case "exec":
		return usageError{fmt.Sprintf("%s: the command and its arguments go after --, as in `authagent exec NAME -- COMMAND %s …`", msg, name)}
	}
	var names []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, "--"+f.Name)
		}
	})
	if s := suggest(name, names); s != "" {
		msg += "; did you mean " + s + "?"
	}
	return usageError{msg}
}

// unknownFlag reads the flag out of pflag's "unknown flag: --x" and "unknown shorthand
// flag: 'x' in -x" errors.
func unknownFlag(msg string) (flag string, ok bool) {
	if f, ok := strings.CutPrefix(msg, "unknown flag: "); ok {
		return f, true
	}
	if rest, ok := strings.CutPrefix(msg, "unknown shorthand flag: "); ok {
		if _, arg, ok := strings.Cut(rest, " in "); ok {
			return arg, true
		}
	}
	return "", false
}

// suggest returns the choice closest to got: at most two edits away (ignoring case), or
// else one that starts with got, or holds it; "" when none is close.
func suggest(got string, choices []string) string {
	best, bestDist := "", 3
	for _, c := range choices {
		d := editDistance(strings.ToLower(got), strings.ToLower(c))
		if d < bestDist || (d == bestDist && best == "") {
			best, bestDist = c, d
		}
	}
	if best != "" && bestDist <= 2 {
		return best
	}
	for _, c := range choices {
		if len(got) >= 2 && strings.HasPrefix(c, got) {
			return c
		}
	}
	for _, c := range choices {
		if len(got) >= 3 && strings.Contains(c, got) {
			return c
		}
	}
	return ""
}

// oneOf checks that value (of flag) is one of choices; otherwise a usage error names the
// closest choice and lists them all.
func oneOf(flag, value string, choices []string) error {
	if slices.Contains(choices, value) {
		return nil
	}
	msg := fmt.Sprintf("%s %q is not one of %s", flag, value, orList(choices))
	if s := suggest(value, choices); s != "" {
		msg = fmt.Sprintf("%s %q: did you mean %s? (want %s)", flag, value, s, orList(choices))
	}
	return usageError{msg}
}

// orList writes "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// editDistance is the edit distance between a and b where swapping two neighbours
// counts as one edit, as typing "lsit" for "list" is one slip (optimal string alignment).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
