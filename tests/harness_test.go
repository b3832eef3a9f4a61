package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// authagentBin is the binary under test, built once by TestMain as packages install it:
// the one-shot front (cmd/authagent-oneshot) at DIR/bin/authagent, which hands every
// command it does not answer itself to the full binary (cmd/authagent), fullBin, at
// DIR/libexec/authagent/authagent. Both are static (CGO_ENABLED=0), as on Linux.
var authagentBin, fullBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "authagent-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	authagentBin = filepath.Join(dir, "bin", "authagent")
	fullBin = filepath.Join(dir, "libexec", "authagent", "authagent")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	for bin, pkg := range map[string]string{authagentBin: "./cmd/authagent-oneshot", fullBin: "./cmd/authagent"} {
		build := exec.Command(goTool, "build", "-o", bin, "github.com/authagent/authagent/"+strings.TrimPrefix(pkg, "./"))
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: build", pkg+":", err)
			return 1
		}
	}
	return m.Run()
}

// inCI reports whether the tests run in CI, where a missing tool is a failure, not a skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// toolPackage names the Debian package of a program the tests drive.
func toolPackage(tool string) string {
	switch tool {
	case "dbus-daemon":
		return "dbus"
	case "secret-tool":
		return "libsecret-tools"
	case "gnome-keyring-daemon":
		return "gnome-keyring"
	case "useradd", "userdel":
		return "passwd"
	}
	return tool
}

// needTools skips the test when a program it drives is not installed, except in CI.
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s is not installed (apt-get install %s; scripts/deps.sh installs the test tools)", tool, toolPackage(tool))
			if inCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// needRoot skips the test unless it runs as root, except in CI.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		if inCI() {
			t.Fatal("this test needs root (to create a second user); CI runs as root")
		}
		t.Skip("needs root to create a second user")
	}
}

// shortTempDir is t.TempDir under os.TempDir with a short name: Unix socket paths are
// limited to 107 bytes, and t.TempDir's names grow with the test's name.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "aa-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// canary returns a unique value that must never show up where secrets must not be.
func canary(t testing.TB) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "canary-" + hex.EncodeToString(b)
}

// syncBuffer is a bytes.Buffer that a child process writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a started child that is waited for exactly once, in the background.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result; set before done is closed
}

func startProcess(t testing.TB, cmd *exec.Cmd) *process {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	// Registered first, so it runs last: nothing the test started outlives it.
	t.Cleanup(func() { p.terminate(5 * time.Second) })
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig and waits up to timeout for the process to exit. It reports whether
// the process exited.
func (p *process) signal(sig syscall.Signal, timeout time.Duration) bool {
	if p.exited() {
		return true
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// terminate asks the process to stop, then kills it.
func (p *process) terminate(timeout time.Duration) {
	if !p.signal(syscall.SIGTERM, timeout) {
		p.signal(syscall.SIGKILL, timeout)
	}
}

// session is a private D-Bus session bus with gnome-keyring as the Secret Service and its
// "login" keyring created and unlocked.
type session struct {
	dir  string
	vars map[string]string // DBUS_SESSION_BUS_ADDRESS, HOME, XDG_RUNTIME_DIR, XDG_DATA_HOME
	log  *syncBuffer       // dbus-daemon's and gnome-keyring-daemon's output
}

// busConfig is a session bus that activates no services: the only Secret Service on it is
// the gnome-keyring-daemon this harness starts, never one auto-started and still locked.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// runBus starts a private dbus-daemon (busConfig) with its socket in dir and returns its
// address; it stops with the test.
func runBus(t testing.TB, dir string, environ []string, log *syncBuffer) string {
	t.Helper()
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o600); err != nil {
		t.Fatal(err)
	}
	bus := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address=1")
	bus.Env = environ
	bus.Stderr = log
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	proc := startProcess(t, bus)
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatalf("dbus-daemon printed no address; its output:\n%s", log)
		}
		return a
	case <-proc.done:
		t.Fatalf("dbus-daemon exited (%v):\n%s", proc.err, log)
	case <-time.After(15 * time.Second):
		t.Fatalf("dbus-daemon printed no address within 15s:\n%s", log)
	}
	return ""
}

func startSession(t testing.TB) *session {
	t.Helper()
	needTools(t, "dbus-daemon", "gnome-keyring-daemon", "secret-tool")
	dir := shortTempDir(t)
	s := &session{dir: dir, log: &syncBuffer{}, vars: map[string]string{
		"HOME":            filepath.Join(dir, "home"),
		"XDG_RUNTIME_DIR": filepath.Join(dir, "run"),
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
	}}
	for _, d := range []string{"home", "run", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s.vars["DBUS_SESSION_BUS_ADDRESS"] = runBus(t, dir, s.environ(), s.log)

	// --unlock reads the password of the login keyring from stdin and creates the keyring
	// when it does not exist yet; --foreground keeps it our child so Cleanup can stop it.
	keyring := exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	keyring.Env = s.environ()
	keyring.Stdin = strings.NewReader("e2e-login-password")
	keyring.Stdout, keyring.Stderr = s.log, s.log
	keyringProc := startProcess(t, keyring)

	// The Secret Service answers once a value stored through it can be read back.
	probe := canary(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if keyringProc.exited() {
			t.Fatalf("gnome-keyring-daemon exited (%v):\n%s", keyringProc.err, s.log)
		}
		_, _, code := s.secretTool(t, probe, "store", "--label=e2e probe", "service", "authagent-e2e-probe", "user", "probe")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Secret Service did not answer within 20s:\n%s", s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := s.keyringLookup(t, "service", "authagent-e2e-probe", "user", "probe"); got != probe {
		t.Fatalf("secret-tool lookup = %q, want the value just stored", got)
	}
	return s
}

func (s *session) environ() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	for k, v := range s.vars {
		env = append(env, k+"="+v)
	}
	return env
}

// secretTool runs secret-tool in the session.
func (s *session) secretTool(t testing.TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	r := runIn(t, s.environ(), s.dir, stdin, "secret-tool", args...)
	return r.stdout, r.stderr, r.code
}

// keyringLookup returns the secret stored under attrs (pairs of name and value), or "".
func (s *session) keyringLookup(t testing.TB, attrs ...string) string {
	t.Helper()
	out, _, _ := s.secretTool(t, "", append([]string{"lookup"}, attrs...)...)
	return out
}

// keyringStore stores secret under attrs.
func (s *session) keyringStore(t testing.TB, secret string, attrs ...string) {
	t.Helper()
	_, stderr, code := s.secretTool(t, secret, append([]string{"store", "--label=e2e"}, attrs...)...)
	if code != 0 {
		t.Fatalf("secret-tool store %v: exit %d: %s", attrs, code, stderr)
	}
}

// keyringItem is one item that secret-tool search prints.
type keyringItem struct {
	label, secret string
}

// keyringSearch returns every item whose attributes match attrs (pairs of name and value).
func (s *session) keyringSearch(t testing.TB, attrs ...string) []keyringItem {
	t.Helper()
	stdout, stderr, code := s.secretTool(t, "", append([]string{"search", "--all"}, attrs...)...)
	if code != 0 {
		t.Fatalf("secret-tool search %v: exit %d: %s", attrs, code, stderr)
	}
	// Each item starts with a "[/path]" line. (secret-tool writes the attribute lines to
	// stderr, apart from their items, so they are not read.)
	var items []keyringItem
	for line := range strings.Lines(stdout) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "[/"):
			items = append(items, keyringItem{})
		case len(items) == 0:
		case strings.HasPrefix(line, "label = "):
			items[len(items)-1].label = strings.TrimPrefix(line, "label = ")
		case strings.HasPrefix(line, "secret = "):
			items[len(items)-1].secret = strings.TrimPrefix(line, "secret = ")
		}
	}
	return items
}

// env is one user's environment for the agent and its clients: a socket, a config
// directory and a state directory of its own, in a session.
type env struct {
	dir  string
	sess *session
	vars map[string]string
}

// newEnv makes an environment in sess; with a nil sess there is no session bus at all.
func newEnv(t testing.TB, sess *session) *env {
	t.Helper()
	dir := shortTempDir(t)
	e := &env{dir: dir, sess: sess, vars: map[string]string{
		"AUTHAGENT_SOCK":  filepath.Join(dir, "s", "agent.sock"),
		"XDG_CONFIG_HOME": filepath.Join(dir, "cfg"),
		"XDG_STATE_HOME":  filepath.Join(dir, "state"),
		"HOME":            filepath.Join(dir, "home"),
	}}
	if sess != nil {
		for k, v := range sess.vars {
			e.vars[k] = v
		}
	}
	return e
}

// with returns a copy of e with name set to value, or unset when value is "".
func (e *env) with(name, value string) *env {
	c := &env{dir: e.dir, sess: e.sess, vars: map[string]string{}}
	for k, v := range e.vars {
		c.vars[k] = v
	}
	if value == "" {
		delete(c.vars, name)
	} else {
		c.vars[name] = value
	}
	return c
}

func (e *env) sock() string { return e.vars["AUTHAGENT_SOCK"] }

func (e *env) configPath() string {
	return filepath.Join(e.vars["XDG_CONFIG_HOME"], "authagent", "config.toml")
}

// environ is the whole environment of a child: nothing leaks in from the test's own, and
// `authagent` is on PATH for shell scripts.
func (e *env) environ() []string {
	env := []string{"PATH=" + filepath.Dir(authagentBin) + ":" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	for k, v := range e.vars {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// result is what a finished command left behind.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs the authagent CLI in e with stdin and returns its output and exit code.
func run(t testing.TB, e *env, stdin string, args ...string) result {
	t.Helper()
	return runIn(t, e.environ(), e.dir, stdin, authagentBin, args...)
}

// runOK is run that fails the test unless the command exits 0.
func runOK(t testing.TB, e *env, stdin string, args ...string) result {
	t.Helper()
	r := run(t, e, stdin, args...)
	if r.code != 0 {
		t.Fatalf("authagent %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// runIn runs any program with the given environment; it must finish within a minute.
func runIn(t testing.TB, environ []string, dir, stdin, name string, args ...string) result {
	t.Helper()
	r, err := runCmd(environ, dir, stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runCmd is runIn for goroutines other than the test's: it returns what went wrong.
func runCmd(environ []string, dir, stdin, name string, args ...string) (result, error) {
	// Not t.Context(): cleanups run commands too, after it is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir = environ, dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		return r, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, r)
	}
	return r, nil
}

// agentProcess is a running `authagent serve`.
type agentProcess struct {
	t    testing.TB
	env  *env
	proc *process
	log  *syncBuffer // its stderr and stdout
	pid  int
}

// startAgent runs `authagent serve` in e, logging at debug level into a buffer, and waits
// until it answers on its socket.
func startAgent(t testing.TB, e *env) *agentProcess {
	t.Helper()
	a := &agentProcess{t: t, env: e, log: &syncBuffer{}}
	cmd := exec.Command(authagentBin, "serve", "--log-level", "debug")
	cmd.Env, cmd.Dir = e.environ(), e.dir
	cmd.Stdout, cmd.Stderr = a.log, a.log
	a.proc = startProcess(t, cmd)
	a.pid = cmd.Process.Pid
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of agent pid %d:\n%s", a.pid, a.log)
		}
	})

	hc := apiClient(e.sock())
	deadline := time.Now().Add(20 * time.Second)
	for {
		if a.proc.exited() {
			t.Fatalf("the agent exited at start (%v):\n%s", a.proc.err, a.log)
		}
		var st struct {
			PID int `json:"pid"`
		}
		resp, err := hc.Get("http://authagent/v1/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && st.PID == a.pid {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not answer on %s within 20s (last: pid %d, %v):\n%s", e.sock(), st.PID, err, a.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop sends SIGTERM and checks that the agent exits cleanly.
func (a *agentProcess) Stop() {
	a.t.Helper()
	if !a.proc.signal(syscall.SIGTERM, 15*time.Second) {
		a.t.Fatalf("the agent did not exit within 15s of SIGTERM:\n%s", a.log)
	}
	if a.proc.err != nil {
		a.t.Fatalf("the agent did not exit cleanly on SIGTERM: %v\n%s", a.proc.err, a.log)
	}
	if _, err := os.Lstat(a.env.sock()); !errors.Is(err, os.ErrNotExist) {
		a.t.Errorf("after a clean exit the socket %s is still there (%v)", a.env.sock(), err)
	}
}

// Kill sends SIGKILL and waits for the agent to die; it leaves its socket file behind.
func (a *agentProcess) Kill() {
	a.t.Helper()
	if !a.proc.signal(syscall.SIGKILL, 15*time.Second) {
		a.t.Fatal("the agent survived SIGKILL for 15s")
	}
}

// Signal sends sig to the running agent.
func (a *agentProcess) Signal(sig syscall.Signal) {
	a.t.Helper()
	if err := a.proc.cmd.Process.Signal(sig); err != nil {
		a.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Log is everything the agent has logged so far.
func (a *agentProcess) Log() string { return a.log.String() }

// waitLog waits until the log has a line for which match is true and returns that line.
func (a *agentProcess) waitLog(what string, match func(line string) bool) string {
	a.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for line := range strings.Lines(a.Log()) {
			if match(line) {
				return line
			}
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("no log line %s within 15s; log:\n%s", what, a.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiClient is an HTTP client for the agent's socket, one connection per request.
func apiClient(sock string) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		},
	}
}

// apiDo sends one request to the agent's API and returns the status and body.
func apiDo(t testing.TB, e *env, method, path string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://authagent"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := apiClient(e.sock()).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// apiError is the error shape of the socket API.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantAPIError checks that an answer is the API error with status and code.
func wantAPIError(t testing.TB, what string, gotStatus int, body []byte, wantStatus int, wantCode string) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("%s: body is not the API error shape (%v): %s", what, err, body)
	}
	if gotStatus != wantStatus || e.Error.Code != wantCode {
		t.Errorf("%s: got %d %q, want %d %q; body %s", what, gotStatus, e.Error.Code, wantStatus, wantCode, body)
	}
	if e.Error.Message == "" {
		t.Errorf("%s: error has no message: %s", what, body)
	}
	return e
}

// credential is the socket API's Credential.
type credential struct {
	Profile      string            `json:"profile"`
	TokenType    string            `json:"token_type"`
	Token        string            `json:"token"`
	Headers      map[string]string `json:"headers"`
	GRPCMetadata map[string]string `json:"grpc_metadata"`
}

// curlAgent fetches path from the agent with curl over the socket.
func curlAgent(t testing.TB, e *env, path string) (int, []byte) {
	t.Helper()
	needTools(t, "curl")
	r := runIn(t, e.environ(), e.dir, "", "curl", "-sS", "-w", "\n%{http_code}", "--unix-socket", e.sock(), "http://authagent"+path)
	if r.code != 0 {
		t.Fatalf("curl %s: %s", path, r)
	}
	body, code, _ := cutLast(r.stdout, "\n")
	status, err := strconv.Atoi(code)
	if err != nil {
		t.Fatalf("curl %s: no status in %q", path, r.stdout)
	}
	return status, []byte(body)
}

// curlCredential fetches a credential with curl and checks that it is a 200.
func curlCredential(t testing.TB, e *env, path string) credential {
	t.Helper()
	status, body := curlAgent(t, e, path)
	if status != http.StatusOK {
		t.Fatalf("curl %s: status %d: %s", path, status, body)
	}
	var c credential
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("curl %s: %v: %s", path, err, body)
	}
	return c
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return "", s, false
}

// addAPIKey defines an apikey profile through the CLI with the secret on stdin.
func addAPIKey(t testing.TB, e *env, name, secret string, flags ...string) {
	t.Helper()
	runOK(t, e, secret, append([]string{"add", name, "--provider", "apikey"}, flags...)...)
}

// statusJSON is `authagent status --json`.
type statusJSON struct {
	Version     string `json:"version"`
	PID         int    `json:"pid"`
	Profiles    int    `json:"profiles"`
	SecretStore struct {
		Kind       string `json:"kind"`
		Persistent bool   `json:"persistent"`
		Warning    string `json:"warning"`
	} `json:"secret_store"`
}

func agentStatus(t testing.TB, e *env) statusJSON {
	t.Helper()
	r := runOK(t, e, "", "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r)
	}
	return st
}

// listJSON is `authagent list --json`.
type listJSON struct {
	Profiles []struct {
		Name     string   `json:"name"`
		Provider string   `json:"provider"`
		State    string   `json:"state"`
		Hosts    []string `json:"hosts"`
	} `json:"profiles"`
}

func listProfiles(t testing.TB, e *env) listJSON {
	t.Helper()
	r := runOK(t, e, "", "list", "--json")
	var l listJSON
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatalf("list --json: %v\n%s", err, r)
	}
	return l
}

func (l listJSON) names() []string {
	var names []string
	for _, p := range l.Profiles {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// waitFor polls cond until it holds; what says what was awaited.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
