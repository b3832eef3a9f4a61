package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authagent/authagent/cmd/internal/execself"
	"github.com/authagent/authagent/credhelper"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/providers/apikey"
)

func newTokenCmd(c *cli) *cobra.Command {
	var minValid time.Duration
	var idToken bool
	cmd := &cobra.Command{
		Use:   "token NAME",
		Short: "Print a profile's current access token (or ID token)",
		Long: `Print a profile's current access token. With --id-token, print its OpenID Connect ID
token instead (oidc and devicecode profiles with an issuer): verified by the agent when it
came, refreshed like the access token.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := &credhelper.Token{Agent: c.client}
			return u.Do(cmd.Context(), credhelper.TokenInput{Profile: args[0], MinValid: minValid, IDToken: idToken, Out: os.Stdout})
		},
	}
	cmd.Flags().DurationVar(&minValid, "min-valid", 0, "refresh first when less than this is left")
	cmd.Flags().BoolVar(&idToken, "id-token", false, "print the profile's OpenID Connect ID token instead of its access token")
	return cmd
}

func newHeaderCmd(c *cli) *cobra.Command {
	var minValid time.Duration
	cmd := &cobra.Command{
		Use:     "header NAME",
		Short:   "Print a profile's HTTP headers, one 'Name: value' per line (for curl -H @-)",
		Example: `  authagent header work | curl -H @- https://api.example.com/`,
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := &credhelper.Header{Agent: c.client}
			return u.Do(cmd.Context(), credhelper.HeaderInput{Profile: args[0], MinValid: minValid, Out: os.Stdout})
		},
	}
	cmd.Flags().DurationVar(&minValid, "min-valid", 0, "refresh first when less than this is left")
	return cmd
}

func newExecCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec NAME -- COMMAND [ARG…]",
		Short: "Run a command with the profile's token in AUTHAGENT_TOKEN",
		Long: `Run a command with the profile's current access token in the environment variable
AUTHAGENT_TOKEN. Only that command (and what it starts) sees the token; authagent replaces
itself with the command, so its exit status is the command's. As in a shell, a command
that is not found exits 127, and one that cannot be run (not executable) 126.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 || cmd.ArgsLenAtDash() != 1 {
				return usageError{"usage: authagent exec NAME -- COMMAND [ARG…]"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			// The command first: a typo in it should not cost a token fetch.
			path, err := exec.LookPath(args[1])
			if err != nil {
				return cannotRun(args[1], err)
			}
			cred, err := c.client.Credential(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			env := append(withoutVar(os.Environ(), "AUTHAGENT_TOKEN"), "AUTHAGENT_TOKEN="+cred.Token)
			return cannotRun(args[1], execself.Replace(path, args[1:], env))
		},
	}
	return cmd
}

// Exit statuses of a command exec could not run, as a shell has them.
const (
	exitNotFound      = 127
	exitNotExecutable = 126
)

// cannotRun says why command could not be run and exits as a shell would: 127 when it is
// not found, 126 when it is there but cannot be run.
func cannotRun(command string, err error) error {
	code, why := exitNotExecutable, err.Error()
	var ee *exec.Error
	if errors.As(err, &ee) {
		why = ee.Err.Error()
	}
	switch {
	case errors.Is(err, exec.ErrNotFound):
		code, why = exitNotFound, "command not found"
	case errors.Is(err, fs.ErrNotExist):
		code, why = exitNotFound, "no such file"
	case errors.Is(err, fs.ErrPermission):
		why = "not executable (permission denied)"
	}
	fmt.Fprintf(os.Stderr, "authagent: exec: %s: %s\n", command, why)
	return exitStatus{code}
}

func withoutVar(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func newStatusCmd(c *cli) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether an agent answers, its version, uptime and secret store",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := c.client.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(st)
			}
			fmt.Printf("agent %s, pid %d, up %s, socket %s\n", st.Version, st.PID, (time.Duration(st.UptimeS) * time.Second).String(), c.socket)
			persist := "secrets survive a restart"
			if !st.SecretStore.Persistent {
				persist = "secrets do NOT survive a restart"
			}
			fmt.Printf("secret store: %s (%s)\n", st.SecretStore.Kind, persist)
			if w := st.SecretStore.Warning; w != "" {
				fmt.Println("warning:", w)
			}
			fmt.Printf("profiles: %d\n", st.Profiles)
			printConfigProblems(os.Stdout, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Println("authagent", version)
		},
	}
}

func newSetTokenCmd(c *cli) *cobra.Command {
	var expiresAt string
	cmd := &cobra.Command{
		Use:   "set-token NAME [--expires-at TIME]",
		Short: "Push a token (read from stdin) into an externaljwt profile",
		Long: `Push a token into an externaljwt profile that has neither command nor file. The token is
read from stdin (or a no-echo prompt), never from the command line, and survives an agent
restart. Its expiry comes from --expires-at (RFC 3339), else from the JWT's exp claim.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var exp time.Time
			if expiresAt != "" {
				t, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return usageError{fmt.Sprintf("--expires-at %q: want RFC 3339, like 2026-01-02T15:04:05Z", expiresAt)}
				}
				exp = t
			}
			tok, err := readSecret(fmt.Sprintf("Token for %s: ", args[0]), "authagent set-token "+args[0])
			if err != nil {
				return err
			}
			if err := c.client.PushToken(cmd.Context(), args[0], tok, exp); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "token pushed to %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&expiresAt, "expires-at", "", "when the token expires (RFC 3339)")
	return cmd
}

func newSignCmd(c *cli) *cobra.Command {
	var method, target, bodyFile string
	var headers []string
	cmd := &cobra.Command{
		Use:   "sign NAME --method M --url U [--body-file F] [--header 'Name: value']…",
		Short: "Sign a request with a sigv4 profile and print the headers to add",
		Long: `Sign a request in the agent with an apikey profile in sigv4 mode and print the headers to
add to it, one 'Name: value' per line (ready for curl -H @-). The secret never leaves the
agent; only the SHA-256 of the body is sent to it.`,
		Args: exactArgs(1, "NAME --method M --url U"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if target == "" {
				return usageError{"--url is required"}
			}
			req := ipc.SignRequest{Method: strings.ToUpper(method), URL: target, Headers: map[string]string{}}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					return usageError{fmt.Sprintf("--header %q: want 'Name: value'", h)}
				}
				req.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			sum := sha256.New()
			if bodyFile != "" {
				f, err := os.Open(bodyFile)
				if err != nil {
					return err
				}
				_, err = io.Copy(sum, f)
				f.Close()
				if err != nil {
					return err
				}
			}
			req.BodySHA256 = hex.EncodeToString(sum.Sum(nil))
			out, err := c.client.Sign(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return printHeaders(out)
		},
	}
	cmd.Flags().StringVar(&method, "method", "GET", "HTTP method")
	cmd.Flags().StringVar(&target, "url", "", "URL of the request")
	cmd.Flags().StringVar(&bodyFile, "body-file", "", "file holding the request body (default: empty body)")
	cmd.Flags().StringArrayVar(&headers, "header", nil, "a header the request carries and that is signed (repeatable)")
	return cmd
}

// printHeaders writes headers as sorted 'Name: value' lines.
func printHeaders(h map[string]string) error {
	lines, err := credhelper.HeaderLines(h)
	if err != nil {
		return err
	}
	_, err = os.Stdout.WriteString(lines)
	return err
}

func newKeygenCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Create a new API key id and secret (for people who run the server side)",
		Long: `Create an API key id (24 characters from [0-9a-zA-Z]) and a secret (64 characters from
[0-9a-zA-Z-._~]) with the operating system's random generator. Give the id and secret to the
server. Store the secret in the agent from stdin: with ` + "`authagent add NAME --provider apikey --key-id ID …`" + `
for a new profile, or ` + "`authagent set-secret NAME`" + ` to rotate the key of one you have.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, secret, err := apikey.GenerateKey()
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(struct {
					KeyID  string `json:"key_id"`
					Secret string `json:"secret"`
				}{id, secret})
			}
			fmt.Printf("key_id=%s\nsecret=%s\n", id, secret)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// terminalPrompt asks the questions of profiles with confirm set on the controlling
// terminal (/dev/tty), when there is one and no desktop notification could ask: the
// agent takes the answer only from this executable. nil without a terminal.
func terminalPrompt() func(ctx context.Context, question string) (bool, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	tty.Close()
	return func(ctx context.Context, question string) (bool, error) {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return false, err
		}
		defer tty.Close()
		fmt.Fprintf(tty, "authagent: %s\nAllow? [y/N] ", question)
		line := make(chan string, 1)
		go func() {
			s, _ := bufio.NewReader(tty).ReadString('\n')
			line <- s
		}()
		select {
		case s := <-line:
			s = strings.ToLower(strings.TrimSpace(s))
			return s == "y" || s == "yes", nil
		case <-ctx.Done():
			fmt.Fprintln(tty)
			return false, ctx.Err()
		}
	}
}
