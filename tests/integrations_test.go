package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
)

// Issue 5: the tools people already run get their credentials from the agent. This file
// holds curl, kubectl, Docker and Bazel, and the helpers the other integration tests share
// (git_test.go, goclient_test.go, ssh_test.go).

// addPushProfile defines an externaljwt profile that takes pushed tokens
// (`authagent set-token`), so a test can change the token whenever it likes.
func addPushProfile(t testing.TB, e *env, name string, flags ...string) {
	t.Helper()
	runOK(t, e, "", append([]string{"add", name, "--provider", "externaljwt"}, flags...)...)
}

// pushToken pushes token into a push profile, valid for an hour.
func pushToken(t testing.TB, e *env, name, token string) {
	t.Helper()
	runOK(t, e, token, "set-token", name, "--expires-at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
}

// minter is an externaljwt profile whose command mints a new token each time the agent
// runs it, like a token service would: tok-1-SALT, tok-2-SALT, …
type minter struct {
	counter, salt string
}

func addMintProfile(t testing.TB, e *env, name string, flags ...string) *minter {
	t.Helper()
	m := &minter{counter: filepath.Join(e.dir, name+".count"), salt: canary(t)}
	script := fmt.Sprintf(`n=$(cat %[1]s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]s; printf '{"token":"tok-%%s-%[2]s","expires_in":3600}' $n`, m.counter, m.salt)
	args := []string{"add", name, "--provider", "externaljwt", "--command", "sh", "--command", "-c", "--command", script}
	runOK(t, e, "", append(args, flags...)...)
	return m
}

// token is the n-th token the command mints.
func (m *minter) token(n int) string { return fmt.Sprintf("tok-%d-%s", n, m.salt) }

// minted is how many tokens the command has minted.
func (m *minter) minted(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile(m.counter)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("counter %s: %v", m.counter, err)
	}
	return n
}

// agentToken is the token the agent currently serves for a profile.
func agentToken(ctx context.Context, e *env, profile string) (string, error) {
	c := &ipc.Client{Socket: e.sock()}
	defer c.CloseIdleConnections()
	cred, err := c.Credential(ctx, profile)
	if err != nil {
		return "", err
	}
	return cred.Token, nil
}

// bearerOf returns the token of an "Authorization: Bearer T" header, or "".
func bearerOf(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// linkAs makes a directory holding a link named name to the authagent binary, for the
// tools that find helpers by name (git-credential-authagent, docker-credential-authagent),
// and returns the link and an environment with its directory first on PATH.
func linkAs(t testing.TB, environ []string, name string) (string, []string) {
	t.Helper()
	dir := shortTempDir(t)
	link := filepath.Join(dir, name)
	if err := os.Symlink(authagentBin, link); err != nil {
		t.Fatal(err)
	}
	return link, prependPath(environ, dir)
}

func prependPath(environ []string, dir string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			kv = "PATH=" + dir + ":" + v
		}
		out = append(out, kv)
	}
	return out
}

// childrenOf returns the pids whose parent is pid.
func childrenOf(pid int) []int {
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	var kids []int
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			kid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			kids = append(kids, kid)
		}
	}
	return kids
}

// TestCurlWrapper runs `authagent curl` against a server that checks the header. While
// curl waits for the answer, its argv and environment are read from /proc: the token is
// in neither; it reached curl on an inherited pipe.
func TestCurlWrapper(t *testing.T) {
	t.Parallel()
	needTools(t, "curl")
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	addPushProfile(t, e, "api", "--host", "127.0.0.1")
	tok := "curl-" + canary(t)
	pushToken(t, e, "api", tok)
	// Besides the targeted look at curl below, every process's argv is watched throughout.
	argvHits := watchCmdlines(t, tok)
	t.Cleanup(func() {
		if hits := argvHits(); len(hits) > 0 {
			t.Errorf("the token showed up in the argv of %v", hits)
		}
	})

	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	var stall sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bearerOf(r.Header.Get("Authorization")) != tok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="x"`)
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/slow" {
			stall.Do(func() {
				arrived <- struct{}{}
				select {
				case <-release:
				case <-time.After(30 * time.Second):
				}
			})
		}
		fmt.Fprint(w, "hello from the server")
	}))
	t.Cleanup(srv.Close)

	t.Run("chosen by host and by name", func(t *testing.T) {
		for _, args := range [][]string{
			{"curl", "--", "-sS", "-f", srv.URL + "/x"},
			{"curl", "api", "--", "-sS", "-f", srv.URL + "/x"},
		} {
			r := run(t, e, "", args...)
			if r.code != 0 || r.stdout != "hello from the server" {
				t.Errorf("authagent %s: want exit 0 and the server's answer; %s", strings.Join(args, " "), r)
			}
		}
		// curl's exit status comes through: -f makes a 404 exit 22.
		if r := run(t, e, "", "curl", "--", "-sS", "-f", srv.URL+"/missing"); r.code != 22 {
			t.Errorf("authagent curl -- -f URL of a 404: exit %d, want curl's 22; %s", r.code, r)
		}
	})

	t.Run("token not in argv or environment", func(t *testing.T) {
		cmd := exec.Command(authagentBin, "curl", "--", "-sS", "-f", srv.URL+"/slow")
		cmd.Env, cmd.Dir = e.environ(), e.dir
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		p := startProcess(t, cmd)
		select {
		case <-arrived:
		case <-p.done:
			t.Fatalf("authagent curl exited before the request arrived: %v\n%s", p.err, out)
		case <-time.After(30 * time.Second):
			t.Fatalf("no request within 30s:\n%s", out)
		}
		// The request is held: curl is alive and waiting. Find it below `authagent curl`.
		var curlPID int
		for _, kid := range childrenOf(cmd.Process.Pid) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", kid)); strings.TrimSpace(string(b)) == "curl" {
				curlPID = kid
			}
		}
		if curlPID == 0 {
			close(release)
			t.Fatalf("no curl process under authagent curl (pid %d)", cmd.Process.Pid)
		}
		for _, pid := range []int{curlPID, cmd.Process.Pid} {
			for _, file := range []string{"cmdline", "environ"} {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
				if err != nil {
					t.Errorf("read /proc/%d/%s: %v", pid, file, err)
					continue
				}
				if len(b) == 0 {
					t.Errorf("/proc/%d/%s is empty: nothing was checked", pid, file)
				}
				if bytes.Contains(b, []byte(tok)) {
					t.Errorf("the token is in /proc/%d/%s", pid, file)
				}
			}
		}
		argv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", curlPID))
		if !bytes.Contains(argv, []byte("-K\x00/dev/fd/")) {
			t.Errorf("curl's argv %q has no -K /dev/fd/N", bytes.ReplaceAll(argv, []byte{0}, []byte{' '}))
		}
		// The config fd is a pipe, not a file someone else could open later.
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", curlPID)); err != nil || !strings.HasPrefix(target, "pipe:") {
			t.Errorf("curl's fd 3 is %q (%v), want a pipe", target, err)
		}
		close(release)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatal("authagent curl did not finish within 30s of the answer")
		}
		if p.err != nil || out.String() != "hello from the server" {
			t.Errorf("authagent curl: %v, output %q", p.err, out)
		}
	})

	t.Run("no matching profile", func(t *testing.T) {
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("a request reached a host no profile covers, with Authorization %q", r.Header.Get("Authorization"))
		}))
		defer other.Close()
		// localhost is loopback too, but no profile lists it.
		u := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
		r := run(t, e, "", "curl", "--", "-sS", u)
		if r.code != 1 || !strings.Contains(r.stderr, "authagent:") || r.stdout != "" {
			t.Errorf("authagent curl to a host no profile covers: want exit 1 and a message; %s", r)
		}
		if strings.Contains(r.stdout+r.stderr, tok) {
			t.Errorf("the answer holds the token: %s", r)
		}
		// A named profile whose hosts do not cover the URL is refused too.
		r = run(t, e, "", "curl", "api", "--", "-sS", u)
		if r.code != 1 || r.stderr == "" {
			t.Errorf("authagent curl api to a host outside its hosts: want exit 1 and a message; %s", r)
		}
	})
}

// execCredential is client.authentication.k8s.io/v1 ExecCredential as published in
// k8s.io/client-go/pkg/apis/clientauthentication/v1 (types.go), field for field.
type execCredential struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Cluster     json.RawMessage `json:"cluster,omitempty"`
		Interactive bool            `json:"interactive"`
	} `json:"spec"`
	Status *struct {
		ExpirationTimestamp   *string `json:"expirationTimestamp,omitempty"`
		Token                 string  `json:"token,omitempty"`
		ClientCertificateData string  `json:"clientCertificateData,omitempty"`
		ClientKeyData         string  `json:"clientKeyData,omitempty"`
	} `json:"status,omitempty"`
}

func parseExecCredential(t *testing.T, out string) execCredential {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var ec execCredential
	if err := dec.Decode(&ec); err != nil {
		t.Fatalf("kube-credential output is not a published ExecCredential: %v\n%s", err, out)
	}
	if ec.APIVersion != "client.authentication.k8s.io/v1" || ec.Kind != "ExecCredential" || ec.Status == nil {
		t.Fatalf("kube-credential output: apiVersion %q, kind %q, status %v; want client.authentication.k8s.io/v1 ExecCredential with a status", ec.APIVersion, ec.Kind, ec.Status)
	}
	return ec
}

const (
	execInfoNonInteractive = `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}`
	execInfoInteractive    = `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true}}`
)

func TestKubeCredential(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	addPushProfile(t, e, "kube", "--host", "k8s.example.com")
	tok := "kube-" + canary(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	runOK(t, e, tok, "set-token", "kube", "--expires-at", exp.Format(time.RFC3339))

	for _, info := range []string{"", execInfoNonInteractive, execInfoInteractive} {
		r := runOK(t, e.with("KUBERNETES_EXEC_INFO", info), "", "kube-credential", "kube")
		ec := parseExecCredential(t, r.stdout)
		if ec.Status.Token != tok {
			t.Errorf("KUBERNETES_EXEC_INFO=%q: status.token is not the profile's token", info)
		}
		if ec.Status.ExpirationTimestamp == nil {
			t.Errorf("KUBERNETES_EXEC_INFO=%q: no status.expirationTimestamp", info)
			continue
		}
		got, err := time.Parse(time.RFC3339, *ec.Status.ExpirationTimestamp)
		if err != nil || !got.Equal(exp) {
			t.Errorf("KUBERNETES_EXEC_INFO=%q: status.expirationTimestamp %q (%v), want %s", info, *ec.Status.ExpirationTimestamp, err, exp.Format(time.RFC3339))
		}
	}
	if r := run(t, e, "", "kube-credential", "nope"); r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "nope") {
		t.Errorf("kube-credential of an unknown profile: want exit 1, no output, a message naming it; %s", r)
	}
	if r := run(t, e.with("KUBERNETES_EXEC_INFO", "{not json"), "", "kube-credential", "kube"); r.code == 0 || r.stdout != "" {
		t.Errorf("kube-credential with a garbled KUBERNETES_EXEC_INFO: want a failure; %s", r)
	}
}

// TestKubeCredentialNeedsLogin: kubectl says the session is not interactive, and the
// devicecode profile was never logged in: no prompt, no login started, a failure with a
// message. When kubectl says it is interactive, the device login runs with its prompt on
// stderr and the credential follows.
func TestKubeCredentialNeedsLogin(t *testing.T) {
	t.Parallel()
	s := newDeviceSetup(t, time.Hour)
	s.waitState(t, ipc.StateNeedsLogin)

	r := run(t, s.env.with("KUBERNETES_EXEC_INFO", execInfoNonInteractive), "", "kube-credential", "work")
	if r.code == 0 || r.stdout != "" {
		t.Errorf("non-interactive kube-credential of a profile that needs a login: want a failure and no output; %s", r)
	}
	if !strings.Contains(r.stderr, "login") {
		t.Errorf("non-interactive kube-credential: the message does not mention the login:\n%s", r.stderr)
	}
	p, err := s.api.Profile(context.Background(), "work")
	if err != nil {
		t.Fatal(err)
	}
	if p.State != ipc.StateNeedsLogin || p.Login != nil {
		t.Errorf("after a non-interactive kube-credential the profile is %s with login %+v; want needs_login and no login started", p.State, p.Login)
	}
	// A message, not a prompt: one line, and no verification URL to visit.
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || strings.Contains(r.stderr, "/device") {
		t.Errorf("non-interactive kube-credential: want a one-line message, no prompt:\n%s", r.stderr)
	}
	t.Logf("non-interactive kube-credential says: %s", strings.TrimSpace(r.stderr))

	// Interactive: the login runs, the user approves at the IdP, kubectl gets its token.
	cmd := exec.Command(authagentBin, "kube-credential", "work")
	cmd.Env, cmd.Dir = s.env.with("KUBERNETES_EXEC_INFO", execInfoInteractive).environ(), s.env.dir
	var stdout bytes.Buffer
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	proc := startProcess(t, cmd)
	code := s.waitUserCode(t)
	if !strings.Contains(waitOutput(t, stderr, code), code) {
		t.Errorf("interactive kube-credential: stderr does not show the user code %s:\n%s", code, stderr)
	}
	if err := s.idp.Approve(code); err != nil {
		t.Fatalf("approve %s: %v", code, err)
	}
	select {
	case <-proc.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("interactive kube-credential did not finish within 60s of the approval:\n%s", stderr)
	}
	if proc.err != nil {
		t.Fatalf("interactive kube-credential: %v\n%s", proc.err, stderr)
	}
	ec := parseExecCredential(t, stdout.String())
	if err := s.idp.CheckAccessToken(ec.Status.Token); err != nil {
		t.Errorf("the token kubectl got is not one the IdP issued: %v", err)
	}
	if strings.Contains(stderr.String(), ec.Status.Token) {
		t.Error("the token was printed on stderr")
	}
}

// dockerCred is the Docker credential helpers protocol's credential
// (github.com/docker/docker-credential-helpers/credentials.Credentials).
type dockerCred struct {
	ServerURL string
	Username  string
	Secret    string
}

// TestDockerCredentialHelper drives docker-credential-authagent as docker does: the
// operation in argv, the server on stdin.
func TestDockerCredentialHelper(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	addPushProfile(t, e, "registry", "--host", "registry.example.com", "--host", "*.wild.example.com")
	tok := "docker-" + canary(t)
	pushToken(t, e, "registry", tok)
	helper, environ := linkAs(t, e.environ(), "docker-credential-authagent")
	docker := func(stdin string, op string) result {
		t.Helper()
		return runIn(t, environ, e.dir, stdin, helper, op)
	}

	for _, server := range []string{"registry.example.com", "https://registry.example.com", "https://registry.example.com/v2/"} {
		r := docker(server, "get")
		if r.code != 0 {
			t.Errorf("get %s: %s", server, r)
			continue
		}
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		dec.DisallowUnknownFields()
		var c dockerCred
		if err := dec.Decode(&c); err != nil {
			t.Errorf("get %s: not the protocol's JSON: %v\n%s", server, err, r.stdout)
		}
		if c.Username != "oauth2" || c.Secret != tok || c.ServerURL != server {
			t.Errorf("get %s: %+v; want ServerURL %s, Username oauth2 and the token as Secret", server, c, server)
		}
	}

	// Not found: stdout exactly the message docker looks for, exit 1.
	r := docker("other.example.com", "get")
	if r.code != 1 || strings.TrimSpace(r.stdout) != "credentials not found in native keychain" {
		t.Errorf("get of a server no profile covers: want exit 1 and \"credentials not found in native keychain\" on stdout; %s", r)
	}

	r = docker("", "list")
	var list map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil {
		t.Fatalf("list: %s", r)
	}
	if len(list) != 1 || list["https://registry.example.com"] != "oauth2" {
		t.Errorf("list = %v; want {https://registry.example.com: oauth2} (wildcards cannot be listed)", list)
	}
	if strings.Contains(r.stdout, tok) {
		t.Error("list holds the token")
	}

	// store: docker login hands its own credential over; the agent owns the credential
	// and keeps nothing of it.
	stored := canary(t)
	body, _ := json.Marshal(dockerCred{ServerURL: "registry.example.com", Username: "someone", Secret: stored})
	if r := docker(string(body), "store"); r.code != 0 {
		t.Errorf("store: %s", r)
	}
	if r := docker("registry.example.com", "get"); !strings.Contains(r.stdout, tok) || strings.Contains(r.stdout, stored) {
		t.Errorf("get after store: %s; want the agent's token, not the stored secret", r)
	}
	if strings.Contains(a.Log(), stored) {
		t.Error("the secret docker stored shows up in the agent's log")
	}

	// erase: the registry refused the token, so the agent drops it from its cache.
	if r := docker("registry.example.com", "erase"); r.code != 0 {
		t.Errorf("erase: %s", r)
	}
	a.waitLog("about the rejected credential", func(line string) bool {
		return strings.Contains(line, "credential rejected by a server") && strings.Contains(line, "registry")
	})
	if r := docker("other.example.com", "erase"); r.code != 0 {
		t.Errorf("erase of a server no profile covers: %s", r)
	}
	// The pushed token itself is kept: the next get finds it again.
	if r := docker("registry.example.com", "get"); !strings.Contains(r.stdout, tok) {
		t.Errorf("get after erase: %s; want the pushed token again", r)
	}
	// Called by its subcommand name too.
	if r := run(t, e, "registry.example.com", "docker-credential", "get"); r.code != 0 || !strings.Contains(r.stdout, tok) {
		t.Errorf("authagent docker-credential get: %s", r)
	}
}

// TestBazelCredentialHelper follows the EngFlow credential helper spec: {"uri"} in,
// {"headers":{name:[values]},"expires"} out.
func TestBazelCredentialHelper(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	addPushProfile(t, e, "remote", "--host", "cache.example.com")
	tok := "bazel-" + canary(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	runOK(t, e, tok, "set-token", "remote", "--expires-at", exp.Format(time.RFC3339))

	r := runOK(t, e, `{"uri":"https://cache.example.com/cas/abc"}`, "credential-helper", "get")
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	var resp struct {
		Headers map[string][]string `json:"headers"`
		Expires string              `json:"expires"`
	}
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("credential-helper get: not the spec's JSON: %v\n%s", err, r.stdout)
	}
	if len(resp.Headers) != 1 || len(resp.Headers["Authorization"]) != 1 || resp.Headers["Authorization"][0] != "Bearer "+tok {
		t.Errorf("headers = %v; want Authorization: [Bearer <token>]", resp.Headers)
	}
	if got, err := time.Parse(time.RFC3339, resp.Expires); err != nil || !got.Equal(exp) {
		t.Errorf("expires = %q, want %s", resp.Expires, exp.Format(time.RFC3339))
	}

	r = runOK(t, e, `{"uri":"https://elsewhere.example.com/x"}`, "credential-helper", "get")
	if strings.TrimSpace(r.stdout) != `{"headers":{}}` {
		t.Errorf("a URI no profile covers: got %s, want {\"headers\":{}}", r.stdout)
	}
	if r := run(t, e, `garbage`, "credential-helper", "get"); r.code == 0 || r.stdout != "" {
		t.Errorf("garbage request: want a failure and no output; %s", r)
	}
	// A token never goes to plain http off loopback.
	if r := run(t, e, `{"uri":"http://cache.example.com/x"}`, "credential-helper", "get"); strings.Contains(r.stdout, tok) {
		t.Errorf("an http:// URI got the token: %s", r)
	}
}

// TestCurlWrapperLargeHeaders: headers larger than a pipe's buffer (64 KiB on Linux) still
// reach curl. A profile may hold that much: an apikey secret may be 64 KiB and go into
// several headers; an externaljwt token file may be up to 1 MiB.
func TestCurlWrapperLargeHeaders(t *testing.T) {
	t.Parallel()
	needTools(t, "curl")
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	secret := longSecret(t, 40000)
	addAPIKey(t, e, "big", secret, "--header", "X-A={secret}", "--header", "X-B={secret}", "--host", "127.0.0.1")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-A") != secret || r.Header.Get("X-B") != secret {
			http.Error(w, "missing headers", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	srv.Config.MaxHeaderBytes = 1 << 20
	srv.Start()
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, authagentBin, "curl", "--", "-sS", "-f", srv.URL)
	cmd.Env, cmd.Dir = e.environ(), e.dir
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("authagent curl with 80 KB of headers did not finish within 20s (hung writing the curl config to the pipe before starting curl?); output %q", out)
	}
	if err != nil || string(out) != "ok" {
		t.Errorf("authagent curl with 80 KB of headers: %v, output %.200q", err, out)
	}
}
