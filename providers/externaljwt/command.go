package externaljwt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authagent/authagent/providers"
)

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

// execInfo tells Kubernetes exec plugins that nobody is at a terminal, as kubectl does.
const execInfo = `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}`

// run runs the command with its own environment and directory, no stdin, and the timeout,
// in a process group of its own that is killed whole when the fetch is cancelled, times out
// or the agent stops (p.stop), and that dies with the agent however it exits. It returns
// stdout.
func (p *Provider) run(ctx context.Context) ([]byte, error) {
	name := p.argv[0]
	if p.stop.Err() != nil {
		return nil, fmt.Errorf("command %q not run: %w", name, errStopping)
	}
	env := p.childEnv()
	path, err := p.lookPath(name, env)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	// A command has nothing to save, unlike a refresh that rotated a token: it must not hold
	// up the agent's shutdown.
	defer context.AfterFunc(p.stop, cancel)()
	cmd := exec.CommandContext(rctx, path, p.argv[1:]...)
	cmd.Args[0] = name
	cmd.Env = env
	cmd.Dir = p.dir
	var stdout, stderr capped
	stdout.max, stderr.max = maxAnswer, maxStderr
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
		if p.stop.Err() != nil {
			return nil, fmt.Errorf("command %q killed: %w", name, errStopping)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("command %q: %w", name, ctx.Err())
		}
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("command %q timed out after %s and was killed; raise the profile's timeout if it needs longer", name, p.timeout)
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg := fmt.Sprintf("command %q failed (%s)", name, ee.ProcessState)
			known, kerr := p.knownSecrets(ctx, stdout.buf.Bytes())
			switch s := shortStderr(stderr.buf.Bytes(), known); {
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
		return nil, fmt.Errorf("command %q printed more than %d bytes; want one token or JSON", name, maxAnswer)
	}
	return stdout.buf.Bytes(), nil
}

// errStopping is why a command was killed or not run: the agent is shutting down.
var errStopping = errors.New("the agent is stopping")

// knownSecrets are the values this profile knows to be secret, to be scrubbed from the
// command's stderr whatever their length: the profile's stored secret and pushed token, the
// last token the command printed, the token in out (what it printed this time), and the
// values of the profile's env. It fails when the secret store cannot say what it holds.
func (p *Provider) knownSecrets(ctx context.Context, out []byte) ([]string, error) {
	var known []string
	for _, key := range []string{providers.SecretKey, providers.PushedTokenKey} {
		v, err := p.secrets.Get(ctx, key)
		if errors.Is(err, providers.ErrSecretNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		known = append(known, v)
		var st pushed
		if key == providers.PushedTokenKey && json.Unmarshal([]byte(v), &st) == nil {
			known = append(known, st.Token)
		}
	}
	p.mu.Lock()
	known = append(known, p.lastToken)
	p.mu.Unlock()
	if a, err := parseAnswer(out, p.now(), "output"); err == nil {
		known = append(known, a.token)
	}
	for _, v := range p.env {
		known = append(known, v)
	}
	return known, nil
}

// childEnv is the command's environment: passedEnv from the agent's, the Kubernetes exec
// info, then the profile's env, which wins.
func (p *Provider) childEnv() []string {
	m := make(map[string]string, len(passedEnv)+1+len(p.env))
	for _, k := range passedEnv {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	m["KUBERNETES_EXEC_INFO"] = execInfo
	for k, v := range p.env {
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
func (p *Provider) lookPath(name string, env []string) (string, error) {
	if strings.ContainsRune(name, '/') || strings.ContainsRune(name, filepath.Separator) {
		path := name
		if !filepath.IsAbs(path) && p.dir != "" {
			path = filepath.Join(p.dir, path)
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
	return "", fmt.Errorf("command %q not found in PATH (%s); install it, give its absolute path, or set PATH in the profile's env", name, pathList)
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
