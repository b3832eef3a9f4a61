// Package tokencmd runs the commands that hand the agent tokens (an externaljwt profile's
// command, an apikey profile's exchange command) and reads what they print, and what
// token files hold. It is shared by the kinds that run commands, so that every command
// runs the same way:
//
//   - with a minimal, explicit environment (PATH, HOME, USER, LANG, KUBERNETES_EXEC_INFO,
//     then the profile's env), never the agent's own;
//   - with no stdin, or with the profile's secret and key id as JSON on stdin (stdin =
//     "secret"): never in argv or the environment, where other processes could read it;
//   - in a process group of its own that is killed whole when the run is cancelled or
//     times out, when the agent stops, and when the agent dies however it dies;
//   - with a failed command's stderr scrubbed of the profile's secrets, of the env's
//     values and of anything shaped like a token before it goes into an error.
//
// It does not decide when to run a command (that is the agent's refresh policy), nor what
// a token is used for (that is each kind's).
package tokencmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authagent/authagent/providers"
)

// DefaultTimeout bounds a command run when the profile sets no timeout.
const DefaultTimeout = 30 * time.Second

// StdinSecret is the value of the stdin key that hands the command the profile's secret.
const StdinSecret = "secret"

const (
	// maxStderr is what is kept of a command's stderr for scrubbing; maxStderrShown is what
	// of it goes into an error message.
	maxStderr      = 64 << 10
	maxStderrShown = 300
	// waitDelay bounds how long a finished or killed command's pipes may stay open (held by
	// a child it left behind) before they are closed under it.
	waitDelay = 2 * time.Second
)

// passedEnv are the only variables of the agent's environment a command sees. The command
// gets a minimal, explicit environment rather than the agent's: whatever the agent was
// started with (AUTHAGENT_* settings, a user's shell secrets) stays out, and the command
// behaves the same under systemd as when the agent was started by hand. Anything else the
// command needs goes in the profile's env.
var passedEnv = []string{"PATH", "HOME", "USER", "LANG"}

// ExecInfo is KUBERNETES_EXEC_INFO in every command's environment: it tells Kubernetes exec
// plugins that nobody is at a terminal, as kubectl does.
const ExecInfo = `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}`

// ErrStopping is why a command was killed or not run: the agent is shutting down.
var ErrStopping = errors.New("the agent is stopping")

// Command is one profile's command, checked and ready to run. Its zero value is not usable;
// New makes one.
type Command struct {
	argv    []string
	env     map[string]string
	dir     string
	timeout time.Duration
	stdin   string // "" or StdinSecret
	stop    context.Context
}

// New checks a profile's command keys (command, env, dir, timeout, stdin) and returns the
// command. cfg.Command must be set. A run in flight is killed when stop ends, and none is
// started after. Errors are *providers.ConfigError.
func New(stop context.Context, cfg *providers.ProfileConfig) (*Command, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, &providers.ConfigError{Key: "command", Message: `needs at least the program to run, like ["vault", "read", "-field=token", "auth/jwt/token"]`}
	}
	for i, arg := range cfg.Command {
		if strings.ContainsRune(arg, 0) {
			return nil, &providers.ConfigError{Key: "command", Message: fmt.Sprintf("word %d contains a NUL byte, which no program can be given; remove it", i+1)}
		}
	}
	for k, v := range cfg.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, &providers.ConfigError{Key: "env", Message: fmt.Sprintf("%q is not a valid environment variable name", k)}
		}
		if strings.ContainsRune(v, 0) {
			return nil, &providers.ConfigError{Key: "env", Message: fmt.Sprintf("the value of %s contains a NUL byte", k)}
		}
	}
	c := &Command{argv: slices.Clone(cfg.Command), env: maps.Clone(cfg.Env), timeout: DefaultTimeout, stop: stop}
	if cfg.Dir != "" {
		if strings.ContainsRune(cfg.Dir, 0) {
			return nil, &providers.ConfigError{Key: "dir", Message: "contains a NUL byte; remove it"}
		}
		if !filepath.IsAbs(cfg.Dir) {
			return nil, &providers.ConfigError{Key: "dir", Message: fmt.Sprintf("%q is not an absolute path (~ is not expanded)", cfg.Dir)}
		}
		c.dir = filepath.Clean(cfg.Dir)
	}
	if cfg.Timeout != 0 {
		c.timeout = cfg.Timeout.D()
	}
	switch cfg.Stdin {
	case "", StdinSecret:
		c.stdin = cfg.Stdin
	default:
		return nil, &providers.ConfigError{Key: "stdin", Message: fmt.Sprintf(`%q is not what a command can read: use "secret" (the profile's secret and key id as JSON), or leave stdin out for none`, cfg.Stdin)}
	}
	if c.stop == nil {
		c.stop = context.Background()
	}
	return c, nil
}

// Name is the program as the profile names it, for messages.
func (c *Command) Name() string { return c.argv[0] }

// WantsSecret reports whether the command reads the profile's secret on stdin.
func (c *Command) WantsSecret() bool { return c.stdin == StdinSecret }

// secretInput is the JSON a command with stdin = "secret" reads.
type secretInput struct {
	Profile string `json:"profile"`
	KeyID   string `json:"key_id"`
	Secret  string `json:"secret"`
}

// SecretInput is what a command with stdin = "secret" reads on stdin: one line of JSON,
// {"profile": NAME, "key_id": KEY_ID, "secret": SECRET}, then end of file.
func SecretInput(profile, keyID, secret string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// The secret as it is, but for quotes and backslashes (see jsonForm). Strings only:
	// encoding cannot fail.
	enc.SetEscapeHTML(false)
	enc.Encode(secretInput{Profile: profile, KeyID: keyID, Secret: secret})
	return b.Bytes()
}

// jsonForm is s as it stands inside a JSON string written by SecretInput: a command that
// echoes its stdin to stderr shows a secret with a quote or a backslash in this form.
func jsonForm(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(b.String(), "\n"), `"`), `"`)
}

// Run runs the command with its own environment and directory, stdin (nil: none) and the
// timeout, in a process group of its own that is killed whole when ctx ends, the timeout
// passes or stop ends, and that dies with the agent however it exits. It returns what the
// command printed on stdout, at most MaxAnswer bytes. When the command fails, known is
// asked for the values to scrub from its stderr besides the env's (given what it printed on
// stdout); an error from known keeps the stderr out of the message.
func (c *Command) Run(ctx context.Context, stdin []byte, known func(stdout []byte) ([]string, error)) ([]byte, error) {
	name := c.argv[0]
	if c.stop.Err() != nil {
		return nil, fmt.Errorf("command %q not run: %w", name, ErrStopping)
	}
	env := c.childEnv()
	path, err := c.lookPath(name, env)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// A command has nothing to save, unlike a refresh that rotated a token: it must not hold
	// up the agent's shutdown.
	defer context.AfterFunc(c.stop, cancel)()
	cmd := exec.CommandContext(rctx, path, c.argv[1:]...)
	cmd.Args[0] = name
	cmd.Env = env
	cmd.Dir = c.dir
	if stdin != nil {
		// Through a pipe that only the command reads: never argv, never the environment.
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr capped
	stdout.max, stderr.max = MaxAnswer, maxStderr
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = waitDelay
	g, err := newGroup()
	if err != nil {
		return nil, fmt.Errorf("command %q: %w", name, err)
	}
	defer g.release()
	g.add(cmd)

	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // it exited 0; a child it left behind held stdout open
	}
	if err != nil {
		if c.stop.Err() != nil {
			return nil, fmt.Errorf("command %q killed: %w", name, ErrStopping)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("command %q: %w", name, ctx.Err())
		}
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("command %q timed out after %s and was killed; raise the profile's timeout if it needs longer", name, c.timeout)
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg := fmt.Sprintf("command %q failed (%s)", name, ee.ProcessState)
			var secrets []string
			var kerr error
			if known != nil {
				secrets, kerr = known(stdout.buf.Bytes())
			}
			for _, v := range c.env {
				secrets = append(secrets, v)
			}
			if stdin != nil {
				for _, v := range secrets {
					if f := jsonForm(v); f != v {
						secrets = append(secrets, f)
					}
				}
			}
			switch s := shortStderr(stderr.buf.Bytes(), secrets); {
			case s == "":
				msg += " and wrote nothing on stderr"
			case kerr != nil:
				msg += fmt.Sprintf("; its stderr is not shown: the profile's secrets could not be read to scrub it from there (%v)", kerr)
			default:
				msg += ": " + s
			}
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("start command %q: %w", name, err)
	}
	if stdout.over {
		return nil, fmt.Errorf("command %q printed more than %d bytes; want one token or JSON", name, MaxAnswer)
	}
	return stdout.buf.Bytes(), nil
}

// childEnv is the command's environment: passedEnv from the agent's, the Kubernetes exec
// info, then the profile's env, which wins.
func (c *Command) childEnv() []string {
	m := make(map[string]string, len(passedEnv)+1+len(c.env))
	for _, k := range passedEnv {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	m["KUBERNETES_EXEC_INFO"] = ExecInfo
	for k, v := range c.env {
		m[k] = v
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// lookPath finds the program in the PATH the command will see (the profile's, if it sets
// one), so a missing program gets an error that names it.
func (c *Command) lookPath(name string, env []string) (string, error) {
	if strings.ContainsRune(name, '/') || strings.ContainsRune(name, filepath.Separator) {
		path := name
		if !filepath.IsAbs(path) && c.dir != "" {
			path = filepath.Join(c.dir, path)
		}
		if _, err := exec.LookPath(path); err != nil {
			if ee := (*exec.Error)(nil); errors.As(err, &ee) {
				err = ee.Err
			}
			return "", fmt.Errorf("command %q not found or not executable: %w", name, err)
		}
		return name, nil
	}
	var pathList string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathList = v
		}
	}
	for _, dir := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(dir) {
			continue // like exec.LookPath, never run a program from a relative PATH entry
		}
		if path, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH (%s); install it, give its absolute path in command, or add env = { PATH = \"…\" } to the profile in config.toml", name, pathList)
}

// capped keeps the first max bytes written to it and drops the rest, without ever failing a
// write: a failed write would stop the copy and leave the command blocked on a full pipe.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(b []byte) (int, error) {
	n := len(b)
	if room := c.max - c.buf.Len(); room < len(b) {
		b = b[:max(room, 0)]
		c.over = true
	}
	c.buf.Write(b)
	return n, nil
}

// shortStderr makes a command's stderr fit in one error message: scrubbed of the known
// secrets and of what looks like a token first (cutting first could leave half a token
// unrecognised), lines joined, then cut short.
func shortStderr(b []byte, known []string) string {
	var lines []string
	for _, l := range strings.Split(providers.Scrub(strings.ToValidUTF8(string(b), "?"), known...), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	s := strings.Join(lines, " | ")
	if len(s) <= maxStderrShown {
		return s
	}
	cut := maxStderrShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
