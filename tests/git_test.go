package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// gitEnviron is e's environment for running git: global config in e's HOME (so each test
// has its own), no system config, no prompts, and an identity for commits.
func gitEnviron(t testing.TB, e *env) []string {
	t.Helper()
	needTools(t, "git")
	if err := os.MkdirAll(e.vars["HOME"], 0o700); err != nil {
		t.Fatal(err)
	}
	return append(e.environ(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com",
	)
}

// gitOK runs git and fails the test unless it exits 0.
func gitOK(t testing.TB, environ []string, dir string, args ...string) result {
	t.Helper()
	r := runIn(t, environ, dir, "", "git", args...)
	if r.code != 0 {
		t.Fatalf("git %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// gitVersionAtLeast reports whether the installed git is at least major.minor.
func gitVersionAtLeast(t testing.TB, major, minor int) bool {
	t.Helper()
	r := runIn(t, os.Environ(), "", "", "git", "--version")
	m := regexp.MustCompile(`(\d+)\.(\d+)`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("git --version: %s", r)
	}
	ma, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	return ma > major || ma == major && mi >= minor
}

// gitAuth is one request the git server saw.
type gitAuth struct {
	method, path  string
	scheme, user  string // "Basic" or "Bearer"; "" for none
	token         string
	accepted      bool
	reasonRefused string
}

// gitServer is git's smart HTTP protocol (`git http-backend` as a CGI program) behind a
// check that lets only the agent's current token in: in Basic form (user name = the
// profile's username, password = the token) or as a Bearer token. Everything else gets
// 401 with a Basic challenge, as a forge would answer.
type gitServer struct {
	URL      string // http(s)://127.0.0.1:PORT
	HostPort string // 127.0.0.1:PORT
	CAFile   string // https only: the certificate git must trust
	Bare     string // the bare repository behind URL/repo.git

	env      *env
	profile  string
	username string
	backend  http.Handler

	mu      sync.Mutex
	seen    []gitAuth
	revoked map[string]bool
}

// startGitServer serves a bare repository "repo.git", seeded with one commit, that accepts
// only the current token of profile (asked from the agent on each request).
func startGitServer(t *testing.T, e *env, profile, username string, useTLS bool) *gitServer {
	t.Helper()
	root := shortTempDir(t)
	environ := gitEnviron(t, e)
	s := &gitServer{env: e, profile: profile, username: username, revoked: map[string]bool{}, Bare: filepath.Join(root, "repo.git")}
	gitOK(t, environ, root, "init", "--quiet", "--bare", "--initial-branch=main", s.Bare)
	gitOK(t, environ, root, "--git-dir", s.Bare, "config", "http.receivepack", "true")
	seed := filepath.Join(root, "seed")
	gitOK(t, environ, root, "init", "--quiet", "--initial-branch=main", seed)
	if err := os.WriteFile(filepath.Join(seed, "README"), []byte("seeded\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitOK(t, environ, seed, "add", "README")
	gitOK(t, environ, seed, "commit", "--quiet", "-m", "seed")
	gitOK(t, environ, seed, "push", "--quiet", s.Bare, "main")

	execPath := strings.TrimSpace(gitOK(t, environ, root, "--exec-path").stdout)
	s.backend = &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Dir:  root,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + root,
		},
	}
	srv := httptest.NewUnstartedServer(s)
	if useTLS {
		srv.StartTLS()
		s.CAFile = filepath.Join(root, "ca.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(s.CAFile, pemBytes, 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	s.HostPort = srv.Listener.Addr().String()
	return s
}

func (s *gitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := gitAuth{method: r.Method, path: r.URL.Path}
	if u, p, ok := r.BasicAuth(); ok {
		a.scheme, a.user, a.token = "Basic", u, p
	} else if b := bearerOf(r.Header.Get("Authorization")); b != "" {
		a.scheme, a.token = "Bearer", b
	}
	a.accepted, a.reasonRefused = s.check(r.Context(), a)
	s.mu.Lock()
	s.seen = append(s.seen, a)
	s.mu.Unlock()
	if !a.accepted {
		w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
		http.Error(w, "authentication required: "+a.reasonRefused, http.StatusUnauthorized)
		return
	}
	s.backend.ServeHTTP(w, r)
}

func (s *gitServer) check(ctx context.Context, a gitAuth) (bool, string) {
	switch {
	case a.scheme == "":
		return false, "no credentials"
	case a.scheme == "Basic" && a.user != s.username:
		return false, "wrong user name"
	}
	s.mu.Lock()
	revoked := s.revoked[a.token]
	s.mu.Unlock()
	if revoked {
		return false, "token revoked"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	current, err := agentToken(ctx, s.env, s.profile)
	if err != nil {
		return false, "cannot ask the agent: " + err.Error()
	}
	if a.token != current {
		return false, "not the agent's current token"
	}
	return true, ""
}

// revoke makes the server refuse token from now on, while the agent may still serve it:
// a token revoked at the issuer before it expired.
func (s *gitServer) revoke(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[token] = true
}

// mark returns a position in the request log for since.
func (s *gitServer) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// since returns the requests seen after mark.
func (s *gitServer) since(mark int) []gitAuth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]gitAuth(nil), s.seen[mark:]...)
}

// acceptedTokens returns the distinct tokens accepted in reqs, in order.
func acceptedTokens(reqs []gitAuth) []string {
	var toks []string
	for _, a := range reqs {
		if a.accepted && (len(toks) == 0 || toks[len(toks)-1] != a.token) {
			toks = append(toks, a.token)
		}
	}
	return toks
}

// describe lists requests for a log, naming tokens by names instead of showing them.
func describe(reqs []gitAuth, names map[string]string) string {
	var b strings.Builder
	for _, a := range reqs {
		who := "no credentials"
		if a.scheme != "" {
			name := names[a.token]
			if name == "" {
				name = "another token"
			}
			who = a.scheme + " " + name
		}
		verdict := "200"
		if !a.accepted {
			verdict = "401 (" + a.reasonRefused + ")"
		}
		b.WriteString("\n  " + a.method + " " + a.path + " with " + who + " -> " + verdict)
	}
	return b.String()
}

// lastCommit is the subject of the newest commit on main in a bare repository.
func lastCommit(t *testing.T, environ []string, bare string) string {
	t.Helper()
	return strings.TrimSpace(gitOK(t, environ, filepath.Dir(bare), "--git-dir", bare, "log", "-1", "--format=%s", "main").stdout)
}

// commitFile writes a file in a work tree and commits it.
func commitFile(t *testing.T, environ []string, work, name, msg string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(work, name), []byte(msg+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitOK(t, environ, work, "add", name)
	gitOK(t, environ, work, "commit", "--quiet", "-m", msg)
}

// TestGitCloneAndPushOverHTTPS sets git up with `authagent git setup --host` and clones
// and pushes over HTTPS against git http-backend behind a server that takes only the
// agent's current token. The token changes between the two commands and git uses the
// new one.
func TestGitCloneAndPushOverHTTPS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	environ := gitEnviron(t, e)
	addPushProfile(t, e, "forge", "--host", "127.0.0.1", "--username", "forge-bot")
	tok1 := "first-" + canary(t)
	pushToken(t, e, "forge", tok1)
	srv := startGitServer(t, e, "forge", "forge-bot", true)
	environ = append(environ, "GIT_SSL_CAINFO="+srv.CAFile)

	runOK(t, e, "", "git", "setup", "--host", srv.HostPort)
	key := "credential.https://" + srv.HostPort + ".helper"
	got := gitOK(t, environ, e.dir, "config", "--global", "--get-all", key).stdout
	if want := "\n!" + authagentBin + " git-credential\n"; got != want {
		t.Errorf("after git setup, %s = %q, want %q (a reset, then the helper)", key, got, want)
	}

	work := filepath.Join(e.dir, "work")
	m := srv.mark()
	gitOK(t, environ, e.dir, "clone", "--quiet", srv.URL+"/repo.git", work)
	if toks := acceptedTokens(srv.since(m)); len(toks) != 1 || toks[0] != tok1 {
		t.Errorf("clone: the server accepted %d distinct tokens, want just the first one", len(toks))
	}
	// git 2.46+ announces capability[]=authtype, gets authtype=Bearer from the helper and
	// sends the token as a Bearer token; older git sends it as the Basic password, with
	// the profile's username.
	bearerGit := gitVersionAtLeast(t, 2, 46)
	for _, a := range srv.since(m) {
		basic := a.scheme == "Basic" && a.user == "forge-bot"
		if a.accepted && !basic && !(bearerGit && a.scheme == "Bearer") {
			t.Errorf("clone: accepted %s auth as %q; want Basic as the profile's username forge-bot (or Bearer from git 2.46 on)", a.scheme, a.user)
		}
	}
	if b, err := os.ReadFile(filepath.Join(work, "README")); err != nil || string(b) != "seeded\n" {
		t.Fatalf("the clone has no seeded README: %q, %v", b, err)
	}

	// A new token: the server now takes only it, and the next git command uses it.
	commitFile(t, environ, work, "change.txt", "pushed with the second token")
	tok2 := "second-" + canary(t)
	pushToken(t, e, "forge", tok2)
	m = srv.mark()
	gitOK(t, environ, work, "push", "--quiet", "origin", "main")
	if toks := acceptedTokens(srv.since(m)); len(toks) != 1 || toks[0] != tok2 {
		t.Errorf("push after set-token: the server accepted %d distinct tokens, want just the second one", len(toks))
	}
	for _, a := range srv.since(m) {
		if a.token == tok1 {
			t.Errorf("push after set-token: git still sent the first token to %s %s", a.method, a.path)
		}
	}
	if got := lastCommit(t, environ, srv.Bare); got != "pushed with the second token" {
		t.Errorf("the bare repository's main is at %q, want the pushed commit", got)
	}
	// The first token is stale now: the server refuses it.
	if code := basicStatus(t, srv, "forge-bot", tok1); code != http.StatusUnauthorized {
		t.Errorf("the old token: server answered %d, want 401", code)
	}
	if code := basicStatus(t, srv, "forge-bot", tok2); code != http.StatusOK {
		t.Errorf("the current token: server answered %d, want 200", code)
	}

	// No token ever lands in git's files: the helper list starts empty, so no "store"
	// helper could keep it.
	for _, f := range []string{filepath.Join(e.vars["HOME"], ".gitconfig"), filepath.Join(e.vars["HOME"], ".git-credentials"), filepath.Join(work, ".git", "config")} {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), tok1) || strings.Contains(string(b), tok2) {
			t.Errorf("%s holds a token", f)
		}
	}

	// --remove takes the entry out; git then has no credentials for the server.
	runOK(t, e, "", "git", "setup", "--remove", "--host", srv.HostPort)
	if r := runIn(t, environ, e.dir, "", "git", "config", "--global", "--get-all", key); r.code == 0 {
		t.Errorf("after git setup --remove, %s is still set: %q", key, r.stdout)
	}
	if r := runIn(t, environ, work, "", "git", "ls-remote", "origin"); r.code == 0 {
		t.Errorf("git ls-remote without the helper succeeded: %s", r)
	}
}

// basicStatus sends one request for the repository's refs with Basic auth and returns the
// status.
func basicStatus(t *testing.T, srv *gitServer, user, token string) int {
	t.Helper()
	pool := x509.NewCertPool()
	if srv.CAFile != "" {
		b, err := os.ReadFile(srv.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(b)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/repo.git/info/refs?service=git-upload-pack", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestGitRejectedTokenErased: a token the agent still holds is revoked at the server.
// git gets 401 with it, runs the helper's erase, and the agent drops the token; git
// 2.39 then fails that command (it does not ask again within one command). The next git
// command gets a fresh token from the agent and succeeds. Runs over plain http on
// loopback, with git finding the helper by name (git-credential-authagent, a link to the
// binary) through `credential.helper = authagent`.
func TestGitRejectedTokenErased(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	_, environ := linkAs(t, gitEnviron(t, e), "git-credential-authagent")
	mint := addMintProfile(t, e, "forge", "--host", "127.0.0.1")
	srv := startGitServer(t, e, "forge", "oauth2", false)

	// `authagent git setup` writes only https:// entries; plain http on loopback is set
	// up by hand.
	gitOK(t, environ, e.dir, "config", "--global", "credential."+srv.URL+".helper", "authagent")

	work := filepath.Join(e.dir, "work")
	m := srv.mark()
	gitOK(t, environ, e.dir, "clone", "--quiet", srv.URL+"/repo.git", work)
	tok1 := mint.token(1)
	if toks := acceptedTokens(srv.since(m)); len(toks) != 1 || toks[0] != tok1 {
		t.Fatalf("clone: accepted tokens %q, want the first minted one %q", toks, tok1)
	}

	// The issuer revokes the first token; the agent does not know and still serves it.
	srv.revoke(tok1)
	if got, err := agentToken(t.Context(), e, "forge"); err != nil || got != tok1 {
		t.Fatalf("the agent serves %q (%v), want the first token still", got, err)
	}
	commitFile(t, environ, work, "a.txt", "first try")
	m = srv.mark()
	r := runIn(t, append(environ, "GIT_TRACE=1"), work, "", "git", "push", "origin", "main")
	if r.code == 0 {
		t.Fatalf("git push with a revoked token succeeded: %s", r)
	}
	if !strings.Contains(r.stderr, "Authentication failed") {
		t.Errorf("git push with a revoked token: stderr does not say the authentication failed:\n%s", r.stderr)
	}
	// git ran the helper's erase after the 401 …
	if !regexp.MustCompile(`git credential-authagent erase|git-credential-authagent erase`).MatchString(r.stderr) {
		t.Errorf("git did not run the helper's erase after the 401; trace:\n%s", r.stderr)
	}
	// … which told the agent, and the agent dropped the token.
	a.waitLog("about the rejected credential", func(line string) bool {
		return strings.Contains(line, "credential rejected by a server") && strings.Contains(line, "forge")
	})
	refused := 0
	for _, q := range srv.since(m) {
		if q.token == tok1 && !q.accepted {
			refused++
		}
	}
	if refused == 0 {
		t.Error("the server never refused the revoked token")
	}
	names := map[string]string{tok1: "tok-1", mint.token(2): "tok-2"}
	t.Logf("push with the revoked token:%s", describe(srv.since(m), names))
	if strings.Contains(r.stdout+r.stderr, tok1) {
		t.Error("git's output (with GIT_TRACE) holds the token")
	}

	// The retry: the next git command gets a fresh token and the push goes through.
	m = srv.mark()
	gitOK(t, environ, work, "push", "--quiet", "origin", "main")
	tok2 := mint.token(2)
	if toks := acceptedTokens(srv.since(m)); len(toks) != 1 || toks[0] != tok2 {
		t.Errorf("retry: accepted tokens %q, want the second minted one %q", toks, tok2)
	}
	t.Logf("the next push:%s", describe(srv.since(m), names))
	if n := mint.minted(t); n != 2 {
		t.Errorf("the token command ran %d times, want 2 (the first token, then one after the erase)", n)
	}
	if got := lastCommit(t, environ, srv.Bare); got != "first try" {
		t.Errorf("the bare repository's main is at %q, want the pushed commit", got)
	}

	// The Bearer form is accepted too (git 2.46+ sends it when the helper answers with
	// authtype; here curl sends it through `authagent curl`).
	if r := run(t, e, "", "curl", "--", "-sS", "-f", "-o", "/dev/null", "-w", "%{http_code}", srv.URL+"/repo.git/info/refs?service=git-upload-pack"); r.code != 0 || r.stdout != "200" {
		t.Errorf("Bearer form of the current token through authagent curl: %s", r)
	}
	if gitVersionAtLeast(t, 2, 46) {
		var schemes []string
		for _, q := range srv.since(m) {
			if q.accepted {
				schemes = append(schemes, q.scheme)
			}
		}
		t.Logf("git 2.46+: schemes git used on the retry: %v", schemes)
	}
}

// TestGitCredentialHelper drives the helper as git does, through `git credential fill`
// and directly with protocol input, including what git 2.39 cannot send (authtype).
func TestGitCredentialHelper(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	helper, environ := linkAs(t, gitEnviron(t, e), "git-credential-authagent")
	addPushProfile(t, e, "forge", "--host", "git.example.com", "--host", "127.0.0.1:8443")
	tok := "git-" + canary(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	runOK(t, e, tok, "set-token", "forge", "--expires-at", exp.Format(time.RFC3339))
	addPushProfile(t, e, "nothing-yet", "--host", "empty.example.com")

	helperRun := func(op, stdin string) result {
		t.Helper()
		return runIn(t, environ, e.dir, stdin, helper, op)
	}
	expiry := "password_expiry_utc=" + strconv.FormatInt(exp.Unix(), 10) + "\n"

	t.Run("get", func(t *testing.T) {
		want := "username=oauth2\npassword=" + tok + "\n" + expiry
		for _, in := range []string{
			"protocol=https\nhost=git.example.com\n\n",
			"protocol=https\nhost=git.example.com\npath=org/repo.git\nwwwauth[]=Basic realm=\"x\"\nfuture-key=1\n\n",
			"protocol=http\nhost=127.0.0.1:8443\n\n",
			"url=https://git.example.com/org/repo.git\n\n",
			"protocol=https\nhost=git.example.com\npath=" + strings.Repeat("p", 65000) + "\n\n",
		} {
			if r := helperRun("get", in); r.code != 0 || r.stdout != want {
				t.Errorf("get %.60q: %s\nwant stdout %q", in, r, want)
			}
		}
		// The subcommand gives the same answer as the link.
		if r := run(t, e, "protocol=https\nhost=git.example.com\n\n", "git-credential", "get"); r.code != 0 || r.stdout != want {
			t.Errorf("authagent git-credential get: %s", r)
		}
	})

	t.Run("authtype", func(t *testing.T) {
		// What git 2.46+ sends; the installed git may be older, so the helper is driven
		// with the protocol input directly.
		r := helperRun("get", "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=git.example.com\n\n")
		want := "capability[]=authtype\nauthtype=Bearer\ncredential=" + tok + "\nephemeral=true\n" + expiry
		if r.code != 0 || r.stdout != want {
			t.Errorf("get with capability[]=authtype: %s\nwant stdout %q", r, want)
		}
		if strings.Contains(r.stdout, "password=") {
			t.Error("with authtype the token also went out as a password")
		}
	})

	t.Run("no matching profile", func(t *testing.T) {
		for _, in := range []string{
			"protocol=https\nhost=other.example.com\n\n",
			"protocol=https\nhost=127.0.0.1:9999\n\n", // the entry has a port: only that port
			"protocol=http\nhost=git.example.com\n\n", // never plain http off loopback
			"protocol=ssh\nhost=git.example.com\n\n",
		} {
			if r := helperRun("get", in); r.code != 0 || r.stdout != "" || strings.Contains(r.stderr, tok) {
				t.Errorf("get %q: want exit 0 and no output; %s", in, r)
			}
		}
		// The next helper runs: git credential fill falls through to it.
		gitOK(t, environ, e.dir, "config", "--global", "credential.helper", "authagent")
		gitOK(t, environ, e.dir, "config", "--global", "--add", "credential.helper", "!f() { echo username=next; echo password=from-next-helper; }; f")
		r := runIn(t, environ, e.dir, "protocol=https\nhost=other.example.com\n\n", "git", "credential", "fill")
		if r.code != 0 || !strings.Contains(r.stdout, "password=from-next-helper\n") {
			t.Errorf("git credential fill for a host without a profile: want the next helper's answer; %s", r)
		}
		// And for the profile's host, git takes authagent's answer (found by name,
		// git-credential-authagent on PATH).
		r = runIn(t, environ, e.dir, "protocol=https\nhost=git.example.com\n\n", "git", "credential", "fill")
		if r.code != 0 || !strings.Contains(r.stdout, "username=oauth2\npassword="+tok+"\n") {
			t.Errorf("git credential fill for the profile's host: %s", r)
		}
	})

	t.Run("needs a token", func(t *testing.T) {
		r := helperRun("get", "protocol=https\nhost=empty.example.com\n\n")
		if r.code != 0 || r.stdout != "" {
			t.Errorf("get for a profile without a token: want exit 0 and no output; %s", r)
		}
		if lines := strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") + 1; r.stderr == "" || lines != 1 || !strings.Contains(r.stderr, "authagent set-token nothing-yet") {
			t.Errorf("get for a profile without a token: want one line on stderr saying what to run; got %q", r.stderr)
		}
	})

	t.Run("store and unknown operations", func(t *testing.T) {
		for _, op := range []string{"store", "frobnicate"} {
			in := "protocol=https\nhost=git.example.com\nusername=someone\npassword=" + canary(t) + "\n\n"
			if r := helperRun(op, in); r.code != 0 || r.stdout != "" {
				t.Errorf("%s: want exit 0 and no output; %s", op, r)
			}
		}
		if r := helperRun("get", "protocol=https\nhost=git.example.com\n\n"); !strings.Contains(r.stdout, "password="+tok+"\n") {
			t.Errorf("get after store: %s; want the agent's token", r)
		}
	})

	t.Run("erase", func(t *testing.T) {
		r := helperRun("erase", "protocol=https\nhost=git.example.com\nusername=oauth2\npassword="+tok+"\n\n")
		if r.code != 0 || r.stdout != "" {
			t.Errorf("erase: %s", r)
		}
		a.waitLog("about the rejected credential", func(line string) bool {
			return strings.Contains(line, "credential rejected by a server") && strings.Contains(line, "forge")
		})
		// Only the cached copy went: the pushed token (the profile's source) is kept.
		if r := helperRun("get", "protocol=https\nhost=git.example.com\n\n"); !strings.Contains(r.stdout, "password="+tok+"\n") {
			t.Errorf("get after erase: %s; want the pushed token again", r)
		}
		if r := helperRun("erase", "protocol=https\nhost=other.example.com\n\n"); r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("erase for a host without a profile: %s", r)
		}
	})

	t.Run("no agent", func(t *testing.T) {
		dead := prependPath(e.with("AUTHAGENT_SOCK", filepath.Join(t.TempDir(), "none.sock")).environ(), filepath.Dir(helper))
		r := runIn(t, dead, e.dir, "protocol=https\nhost=git.example.com\n\n", helper, "get")
		if r.code != 0 || r.stdout != "" || strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") != 0 {
			t.Errorf("get without an agent: want exit 0, no output, at most one line on stderr; %s", r)
		}
	})
}
