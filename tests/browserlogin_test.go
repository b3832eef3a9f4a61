package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/tests/idp"
)

// The browser of these tests is this test binary: `authagent login` runs $BROWSER with
// the authorization URL, and with browserModeEnv set the binary plays the user at the
// browser instead of running tests (see fakeBrowser).
const (
	browserModeEnv   = "AUTHAGENT_TEST_BROWSER"        // what the user does; "" runs the tests
	browserIssuerEnv = "AUTHAGENT_TEST_BROWSER_ISSUER" // the test IdP's issuer
	browserLogEnv    = "AUTHAGENT_TEST_BROWSER_LOG"    // where it reports each step, one JSON per line
)

// Browser modes.
const (
	modeSignIn     = "sign-in"     // sign in, land on the redirect
	modeIdle       = "idle"        // open the page and do nothing (the user walked away)
	modeWrongState = "wrong-state" // land on the redirect with another state first, then the real one
	modeTwice      = "twice"       // land on the redirect twice at once
)

func init() {
	if mode := os.Getenv(browserModeEnv); mode != "" {
		os.Exit(fakeBrowser(mode, os.Args[1:]))
	}
}

// browserStep is one thing the fake browser did, as it reports it.
type browserStep struct {
	Step   string `json:"step"` // "opened", "forged", "redirect"
	URL    string `json:"url,omitempty"`
	Auth   string `json:"auth,omitempty"` // "opened": the authorization request the start page led to
	Status int    `json:"status,omitempty"`
	Title  string `json:"title,omitempty"` // the page's <h1>
	Text   string `json:"text,omitempty"`  // its first paragraph
	Err    string `json:"err,omitempty"`
}

// fakeBrowser is what a user with a browser does with the URL `authagent login` opens:
// sign in at the test IdP (idp.SignIn: the login form, as a browser submits it) and land
// on the loopback redirect, or not, as mode says.
func fakeBrowser(mode string, args []string) int {
	logf, err := os.OpenFile(os.Getenv(browserLogEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake browser:", err)
		return 1
	}
	defer logf.Close()
	var mu sync.Mutex
	report := func(s browserStep) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(logf).Encode(s)
	}
	if len(args) != 1 {
		report(browserStep{Step: "opened", Err: fmt.Sprintf("want one URL, got %q", args)})
		return 2
	}
	if mode == modeIdle {
		report(browserStep{Step: "opened", URL: args[0]})
		return 0
	}
	// The browser keeps cookies: the login's start page sets one that its redirect must
	// carry back.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Timeout: 90 * time.Second, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authURL, err := startPage(c, args[0])
	report(browserStep{Step: "opened", URL: args[0], Auth: authURL})
	if err != nil {
		report(browserStep{Step: "redirect", Err: err.Error()})
		return 1
	}
	back, err := idp.SignIn(os.Getenv(browserIssuerEnv), authURL)
	if err != nil {
		report(browserStep{Step: "redirect", Err: err.Error()})
		return 1
	}
	visit := func(step, u string) browserStep {
		resp, err := c.Get(u)
		if err != nil {
			return browserStep{Step: step, URL: u, Err: err.Error()}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		s := browserStep{Step: step, URL: u, Status: resp.StatusCode}
		if m := regexp.MustCompile(`<h1>(.*?)</h1>`).FindSubmatch(b); m != nil {
			s.Title = string(m[1])
		}
		if m := regexp.MustCompile(`<p>(.*?)</p>`).FindSubmatch(b); m != nil {
			s.Text = string(m[1])
		}
		return s
	}
	switch mode {
	case modeWrongState:
		forged := *back
		q := forged.Query()
		q.Set("state", "not-"+q.Get("state"))
		forged.RawQuery = q.Encode()
		report(visit("forged", forged.String()))
		report(visit("redirect", back.String()))
	case modeTwice:
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				report(visit("redirect", back.String()))
			}()
		}
		wg.Wait()
	default:
		report(visit("redirect", back.String()))
	}
	return 0
}

// browserSetup is an agent on a real keyring with one oidc profile "work" against the
// real test OpenID provider, whose client allows the browser login, and this binary as
// the user's browser.
type browserSetup struct {
	idp   *idp.IdP
	env   *env
	agent *agentProcess
	api   *ipc.Client
	log   string // the fake browser's report
}

// newBrowserSetup writes the profile (extra: more of its keys, TOML) and starts the agent.
func newBrowserSetup(t *testing.T, opts idp.Options, extra string) *browserSetup {
	t.Helper()
	s := &browserSetup{idp: idp.Start(t, opts)}
	e := newEnv(t, startSession(t))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s.log = filepath.Join(e.dir, "browser.log")
	s.env = e.with("BROWSER", exe).with(browserModeEnv, modeSignIn).with(browserIssuerEnv, s.idp.Issuer()).with(browserLogEnv, s.log)
	cfg := fmt.Sprintf(`[profile.work]
provider  = "oidc"
issuer    = %q
client_id = %q
hosts     = ["kube.example.com"]
%s`, s.idp.Issuer(), s.idp.ClientID(), extra)
	if err := os.MkdirAll(filepath.Dir(s.env.configPath()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.env.configPath(), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.agent = startAgent(t, s.env)
	s.api = &ipc.Client{Socket: s.env.sock()}
	return s
}

// steps reads the fake browser's report, waiting until it has n steps.
func (s *browserSetup) steps(t *testing.T, n int) []browserStep {
	t.Helper()
	var steps []browserStep
	waitFor(t, fmt.Sprintf("%d steps of the browser", n), func() bool {
		steps = nil
		f, err := os.Open(s.log)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var st browserStep
			if json.Unmarshal(sc.Bytes(), &st) == nil {
				steps = append(steps, st)
			}
		}
		return len(steps) >= n
	})
	return steps
}

// verifyIDToken checks raw as a relying party would, with the IdP's keys.
func (s *browserSetup) verifyIDToken(t *testing.T, raw string) *oidc.IDToken {
	t.Helper()
	op, err := oidc.NewProvider(t.Context(), s.idp.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: s.idp.ClientID()}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("the ID token the agent served does not verify: %v", err)
	}
	return idt
}

// redirectOf is the redirect_uri of an authorization URL.
// startPage opens a browser login's start page (http://127.0.0.1:PORT/start) with c, which
// follows no redirects, and returns the authorization request it sends the browser to.
func startPage(c *http.Client, start string) (string, error) {
	if !strings.HasPrefix(start, "http://127.0.0.1:") || !strings.HasSuffix(start, "/start") {
		return "", fmt.Errorf("the login opened %q, want its start page on 127.0.0.1", start)
	}
	resp, err := c.Get(start)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("start page: %s, want 302", resp.Status)
	}
	return resp.Header.Get("Location"), nil
}

// redirectOf opens a login's start page, as the first browser there would, and returns the
// redirect URI of the authorization request it leads to.
func redirectOf(t *testing.T, start string) string {
	t.Helper()
	authURL, err := startPage(&http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, start)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("redirect_uri")
}

// wantPortClosed checks that nothing answers at the redirect URI any more.
func wantPortClosed(t *testing.T, redirect string) {
	t.Helper()
	waitFor(t, "the login's port closed", func() bool {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(redirect + "?state=x&code=y")
		if err == nil {
			resp.Body.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
}

// The browser login end to end: `authagent login` opens $BROWSER on the IdP's
// authorization page with PKCE S256, state and nonce; the user signs in; the agent takes
// the redirect, the tab says it worked, and the port closes. The ID token is served
// (token --id-token, kube-credential with kube_token = "id_token"), verifies with the
// IdP's keys and carries the login's nonce. Nobody asks for a token, yet the agent
// refreshes ahead of the ID token's expiry (the earlier of the two); logout revokes the
// grant at the IdP.
func TestBrowserLoginIDTokenAndRefresh(t *testing.T) {
	t.Parallel()
	// The refresh comes at 75 % ± 10 % of the ID token's life as the agent sees it (its exp
	// is in whole seconds, so a second less at worst): with 20 s, 2.85 s before it expired at
	// the latest, for the refresh, the keyring write and the test's polls below. 24 s leave
	// 3.45 s, and the test waits about 3 s longer.
	const idLife = 24 * time.Second
	s := newBrowserSetup(t, idp.Options{AccessTokenLifetime: time.Hour, IDTokenLifetime: idLife}, `kube_token = "id_token"`)

	r := run(t, s.env, "", "login", "work")
	if r.code != 0 || !strings.Contains(r.stderr, "logged in to work") {
		t.Fatalf("authagent login work: %s", r)
	}
	steps := s.steps(t, 2)
	auth, err := url.Parse(steps[0].Auth)
	if err != nil || steps[0].Step != "opened" || steps[0].Auth == "" {
		t.Fatalf("the browser opened %+v", steps[0])
	}
	if !strings.Contains(r.stdout, steps[0].URL) {
		t.Errorf("the command did not show the URL it opened:\n%s", r)
	}
	q := auth.Query()
	// The authorization request's state and challenge appear on no command line (the
	// browser's argv is readable by every user) and in no output: only the start page does.
	for _, k := range []string{"state", "code_challenge", "nonce"} {
		if v := q.Get(k); v == "" || strings.Contains(steps[0].URL, v) || strings.Contains(r.stdout+r.stderr, v) {
			t.Errorf("the authorization request's %s %q is on the browser's command line or in the output", k, v)
		}
	}
	for k, want := range map[string]string{"response_type": "code", "client_id": s.idp.ClientID(), "code_challenge_method": "S256"} {
		if q.Get(k) != want {
			t.Errorf("authorization request %s = %q, want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 20 {
			t.Errorf("authorization request %s = %q, want a random value", k, q.Get(k))
		}
	}
	redirect := q.Get("redirect_uri")
	if !strings.HasPrefix(redirect, "http://127.0.0.1:") || !strings.HasSuffix(redirect, "/") {
		t.Errorf("redirect_uri %q, want the loopback http://127.0.0.1:PORT/", redirect)
	}
	if st := steps[1]; st.Status != http.StatusOK || st.Title != "Logged in" || !strings.Contains(st.Text, "work") {
		t.Errorf("the browser tab after the redirect: %+v", st)
	}
	wantPortClosed(t, redirect)
	if got := s.idp.TokenRequests()["authorization_code"]; got != 1 {
		t.Errorf("%d code exchanges, want 1", got)
	}
	if items := s.env.sess.keyringSearch(t, "service", "authagent", "username", "work/refresh_token"); len(items) != 1 {
		t.Errorf("refresh token in the keyring: %d items, want 1", len(items))
	}

	// The access token works; the ID token verifies and is the browser login's (nonce).
	if err := s.idp.CheckAccessToken(strings.TrimSpace(runOK(t, s.env, "", "token", "work").stdout)); err != nil {
		t.Errorf("the access token: %v", err)
	}
	first := strings.TrimSpace(runOK(t, s.env, "", "token", "work", "--id-token").stdout)
	idt := s.verifyIDToken(t, first)
	if idt.Nonce != q.Get("nonce") || idt.Subject != idp.Username {
		t.Errorf("ID token nonce %q subject %q; want the login's nonce and %s", idt.Nonce, idt.Subject, idp.Username)
	}
	p, err := s.api.Profile(t.Context(), "work")
	if err != nil || !p.Can("id_token") || p.KubeToken != ipc.TokenID || p.State != ipc.StateValid {
		t.Errorf("profile %+v, %v; want valid, capability id_token, kube_token id_token", p, err)
	}

	// kube-credential hands kubectl the ID token, expiring at its exp, for the profile's host.
	kube := s.env.with("KUBERNETES_EXEC_INFO", `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false,"cluster":{"server":"https://kube.example.com"}}}`)
	var ec struct {
		Status struct {
			Token               string    `json:"token"`
			ExpirationTimestamp time.Time `json:"expirationTimestamp"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(runOK(t, kube, "", "kube-credential", "work").stdout), &ec); err != nil {
		t.Fatal(err)
	}
	if ec.Status.Token != first || !ec.Status.ExpirationTimestamp.Equal(idt.Expiry.UTC().Truncate(time.Second)) {
		t.Errorf("kube-credential: token is the ID token: %v, expires %s, want %s", ec.Status.Token == first, ec.Status.ExpirationTimestamp, idt.Expiry)
	}
	other := s.env.with("KUBERNETES_EXEC_INFO", `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false,"cluster":{"server":"https://other.example.com"}}}`)
	if r := run(t, other, "", "kube-credential", "work"); r.code == 0 || strings.Contains(r.stdout, first) {
		t.Errorf("kube-credential for a cluster outside the profile's hosts: %s", r)
	}

	// Nobody asks; the agent refreshes before the ID token expires (the access token lives
	// an hour: only the ID token's expiry can have brought the refresh this early).
	before := s.idp.TokenRequests()["refresh_token"]
	var refreshedAt time.Time
	deadline := idt.Expiry.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s.idp.TokenRequests()["refresh_token"] > before {
			refreshedAt = time.Now()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if refreshedAt.IsZero() {
		t.Fatalf("no refresh by %s, 10 s after the ID token expired", deadline.Format(time.RFC3339))
	}
	if !refreshedAt.Before(idt.Expiry) {
		t.Errorf("the refresh came at %s, after the ID token expired at %s", refreshedAt.Format(time.RFC3339Nano), idt.Expiry.Format(time.RFC3339))
	}
	// The refresh's answer is on its way to the agent: once there, the new ID token is served.
	var second string
	waitFor(t, "the refreshed ID token served", func() bool {
		c, err := s.api.Credential(t.Context(), "work", ipc.IDToken())
		if err == nil && c.Token != first {
			second = c.Token
		}
		return second != ""
	})
	if !time.Now().Before(idt.Expiry) {
		t.Errorf("the new ID token was served only after the old one expired at %s", idt.Expiry.Format(time.RFC3339))
	}
	if cli := strings.TrimSpace(runOK(t, s.env, "", "token", "work", "--id-token").stdout); cli != second {
		t.Errorf("authagent token --id-token does not print the refreshed ID token")
	}
	idt2 := s.verifyIDToken(t, second)
	if second == first || !idt2.Expiry.After(idt.Expiry) {
		t.Errorf("after the refresh the ID token is the old one: same %v, exp %s (was %s)", second == first, idt2.Expiry, idt.Expiry)
	}
	if n := s.idp.TokenRequests()["refresh_token"] - before; n != 1 {
		t.Errorf("%d refreshes for one ID token request after a refresh, want 1", n)
	}

	// Logout revokes the grant at the IdP; the ID token is gone with it.
	runOK(t, s.env, "", "logout", "work")
	if got := s.idp.RevokedRefreshTokens(); got != 1 {
		t.Errorf("%d refresh tokens revoked at the IdP, want 1", got)
	}
	if got := s.idp.ActiveGrants(); got != 0 {
		t.Errorf("%d grants alive at the IdP after logout, want 0", got)
	}
	if r := run(t, s.env, "", "token", "work", "--id-token"); r.code == 0 || !strings.Contains(r.stderr, "authagent login work") {
		t.Errorf("ID token after logout: %s", r)
	}
	if strings.Contains(s.agent.Log(), first) || strings.Contains(s.agent.Log(), auth.Query().Get("code_challenge")) {
		t.Errorf("the agent's log holds the ID token or the PKCE challenge")
	}
}

// A redirect whose state is not the login's gets 400 and does not end the login; the real
// one then gets through. Of two copies of the real redirect, exactly one is taken: the
// other is refused (400 while the first is being exchanged, or no answer once the port is
// closed), and the IdP sees one code exchange.
func TestBrowserLoginStateAndSecondRedirect(t *testing.T) {
	t.Parallel()
	s := newBrowserSetup(t, idp.Options{AccessTokenLifetime: time.Hour}, "")

	r := run(t, s.env.with(browserModeEnv, modeWrongState), "", "login", "work")
	if r.code != 0 {
		t.Fatalf("login with a forged redirect first: %s", r)
	}
	steps := s.steps(t, 3)
	forged, real := steps[1], steps[2]
	if forged.Step != "forged" || forged.Status != http.StatusBadRequest || !strings.Contains(forged.Text, "state does not match") {
		t.Errorf("the forged redirect: %+v; want 400 saying the state does not match", forged)
	}
	if real.Status != http.StatusOK || real.Title != "Logged in" {
		t.Errorf("the real redirect after a forged one: %+v", real)
	}
	if strings.Contains(s.agent.Log(), "code=") {
		t.Errorf("the agent's log holds a redirect URL:\n%s", s.agent.Log())
	}

	runOK(t, s.env, "", "logout", "work")
	if err := os.Remove(s.log); err != nil {
		t.Fatal(err)
	}
	exchanges := s.idp.TokenRequests()["authorization_code"]
	r = run(t, s.env.with(browserModeEnv, modeTwice), "", "login", "work")
	if r.code != 0 {
		t.Fatalf("login with the redirect twice: %s", r)
	}
	steps = s.steps(t, 3)
	t.Logf("browser: %+v", steps)
	ok, refused := 0, 0
	for _, st := range steps[1:] {
		switch {
		case st.Status == http.StatusOK && st.Title == "Logged in":
			ok++
		case st.Status == http.StatusBadRequest && strings.Contains(st.Text, "already received its redirect"),
			st.Status == 0 && st.Err != "": // the port closed before it came
			refused++
		}
	}
	if ok != 1 || refused != 1 {
		t.Errorf("two copies of the redirect: %+v; want one taken and one refused", steps[1:])
	}
	if got := s.idp.TokenRequests()["authorization_code"] - exchanges; got != 1 {
		t.Errorf("%d code exchanges for two copies of a redirect, want 1", got)
	}
	if p, err := s.api.Profile(t.Context(), "work"); err != nil || p.State != ipc.StateValid {
		t.Errorf("after the login: %+v, %v", p, err)
	}
}

// A browser login that nobody completes ends at login_timeout, and one that is cancelled
// (DELETE …/login, Ctrl-C in `authagent login`) ends at once; either way the port closes,
// the profile says what happened, and a later login works.
func TestBrowserLoginTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	// login_timeout 6 s: the first login waits it out; the two after it must be cancelled
	// before it runs out: over the socket, after a wrong redirect, and with Ctrl-C after
	// the CLI started (two processes: the front and the full binary) and the browser was
	// launched (the race-built test binary). With 3 s, a loaded machine could spend that.
	s := newBrowserSetup(t, idp.Options{AccessTokenLifetime: time.Hour}, `login_timeout = "6s"
redirect_path = "/callback"`)
	idle := s.env.with(browserModeEnv, modeIdle)

	r := run(t, idle, "", "login", "work")
	if r.code == 0 || !strings.Contains(r.stderr, "no redirect came back from the browser within 6s") || !strings.Contains(r.stderr, "--device") {
		t.Errorf("a login nobody completes: %s", r)
	}
	opened := s.steps(t, 1)[0] // the start page, on the login's port
	wantPortClosed(t, opened.URL)
	if p, err := s.api.Profile(t.Context(), "work"); err != nil || p.State != ipc.StateNeedsLogin || !strings.Contains(p.LastError, "no redirect came back") {
		t.Errorf("after the timeout: %+v, %v", p, err)
	}

	// Cancelled over the socket API: the CLI is the client here, as `authagent login` is.
	ch, err := s.api.Login(t.Context(), "work", ipc.Flow(ipc.FlowBrowser))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Flow != ipc.FlowBrowser || ch.AuthURL == "" || ch.UserCode != "" || ch.VerificationURI != ch.AuthURL {
		t.Errorf("browser challenge %+v", ch)
	}
	redirect := redirectOf(t, ch.AuthURL)
	if !strings.HasSuffix(redirect, "/callback") {
		t.Errorf("redirect_uri %q, want the path /callback", redirect)
	}
	resp, err := http.Get(redirect + "?state=wrong&code=c")
	if err != nil {
		t.Fatalf("the login's port does not answer while it waits: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a wrong redirect while the login waits: %s, want 400", resp.Status)
	}
	if err := s.api.CancelLogin(t.Context(), "work"); err != nil {
		t.Fatal(err)
	}
	wantPortClosed(t, redirect)
	waitFor(t, "the cancelled login in last_error", func() bool {
		p, err := s.api.Profile(t.Context(), "work")
		return err == nil && p.Login == nil && strings.Contains(p.LastError, "login cancelled")
	})

	// Ctrl-C in `authagent login` cancels the login in the agent.
	cmd := exec.Command(authagentBin, "login", "work")
	cmd.Env, cmd.Dir = idle.environ(), s.env.dir
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a browser login pending", func() bool {
		p, err := s.api.Profile(t.Context(), "work")
		return err == nil && p.Login != nil && p.Login.Flow == ipc.FlowBrowser
	})
	p, _ := s.api.Profile(t.Context(), "work")
	redirect = redirectOf(t, p.Login.AuthURL)
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err == nil || !strings.Contains(out.String(), "login cancelled") {
		t.Errorf("authagent login after Ctrl-C: %v\n%s", err, out)
	}
	wantPortClosed(t, redirect)

	if r := run(t, s.env, "", "login", "work", "--browser", "--device"); r.code != 2 || !strings.Contains(r.stderr, "exclude each other") {
		t.Errorf("--browser --device: %s", r)
	}

	// A login after all that works.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if r := run(t, s.env.with(browserModeEnv, modeSignIn), "", "login", "work"); r.code != 0 {
		t.Errorf("a login after a timeout and cancels: %s", r)
	}
	if _, err := s.api.Credential(ctx, "work", ipc.IDToken()); err != nil {
		t.Errorf("ID token after the login: %v", err)
	}
}

// Without a browser (no $BROWSER, no display: over SSH) an oidc profile's "auto" takes the
// device flow; `--browser` there prints the URL to open by hand and says how to use the
// device flow instead.
func TestBrowserLoginHeadless(t *testing.T) {
	t.Parallel()
	s := newBrowserSetup(t, idp.Options{AccessTokenLifetime: time.Hour}, "")
	headless := s.env.with("BROWSER", "")

	cmd := exec.Command(authagentBin, "login", "work")
	cmd.Env, cmd.Dir = headless.environ(), s.env.dir
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var code string
	waitFor(t, "a device login pending", func() bool {
		p, err := s.api.Profile(t.Context(), "work")
		if err == nil && p.Login != nil {
			code = p.Login.UserCode
		}
		return code != ""
	})
	if p, _ := s.api.Profile(t.Context(), "work"); p.Login.Flow != ipc.FlowDevice {
		t.Errorf("auto without a display: challenge %+v, want the device flow", p.Login)
	}
	waitOutput(t, out, code)
	if err := s.idp.Approve(code); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "logged in to work") {
		t.Fatalf("device login without a display: %v\n%s", err, out)
	}

	// --browser where none can be opened: the URL, to open by hand, and the way out.
	cmd = exec.Command(authagentBin, "login", "work", "--browser")
	cmd.Env, cmd.Dir = headless.environ(), s.env.dir
	out = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	said := waitOutput(t, out, "authagent login work --device")
	for _, want := range []string{"no browser can be opened", "authagent login work --device", "http://127.0.0.1:", "/start\n"} {
		if !strings.Contains(said, want) {
			t.Errorf("--browser without a browser does not say %q:\n%s", want, said)
		}
	}
	if _, err := os.Stat(s.log); err == nil {
		t.Errorf("a browser was started without one to start")
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
}
