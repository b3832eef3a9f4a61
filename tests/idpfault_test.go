package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/tests/idp"
)

// Issue 9, "Refresh never storms": one test per input that used to make the agent hammer
// its identity provider, each driving the real binary against a server that sends that
// input. The per-profile bucket is burst 5, one call back every 5 s.
const (
	faultBurst = 5
	faultEvery = 5 * time.Second
)

// faultSetup is an agent on a real keyring, and a client of its socket.
func faultSetup(t *testing.T) (*env, *agentProcess, *ipc.Client) {
	t.Helper()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	api := &ipc.Client{Socket: e.sock()}
	t.Cleanup(api.CloseIdleConnections)
	return e, a, api
}

// addFaultDevice defines the devicecode profile "work" against f's endpoints.
func addFaultDevice(t *testing.T, e *env, f *faultIdP) {
	t.Helper()
	runOK(t, e, "", "add", "work", "--provider", "devicecode", "--device-auth-url", f.DeviceAuthURL(),
		"--token-url", f.TokenURL(), "--client-id", "fault-cli", "--host", "api.example.com")
}

// listedProfile is the profile name as `authagent list --json` shows it.
func listedProfile(t *testing.T, e *env, name string) ipc.Profile {
	t.Helper()
	r := runOK(t, e, "", "list", "--json")
	var l struct {
		Profiles []ipc.Profile `json:"profiles"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatalf("list --json: %v\n%s", err, r)
	}
	for _, p := range l.Profiles {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("list --json has no profile %s:\n%s", name, r.stdout)
	return ipc.Profile{}
}

// waitProfile waits until the API shows profile name in state want and returns it.
func waitProfile(t *testing.T, api *ipc.Client, name, want string) *ipc.Profile {
	t.Helper()
	var p *ipc.Profile
	var err error
	deadline := time.Now().Add(15 * time.Second)
	for {
		p, err = api.Profile(context.Background(), name)
		if err == nil && p.State == want {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile %s: %+v, %v; want state %s within 15s", name, p, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recordEvents collects every event of profile name from now on.
func recordEvents(t *testing.T, api *ipc.Client, name string) func() []ipc.Profile {
	t.Helper()
	w, err := api.Watch(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	var mu sync.Mutex
	var seen []ipc.Profile
	go func() {
		for {
			ev, err := w.Next()
			if err != nil {
				return
			}
			if ev.Profile.Name == name {
				mu.Lock()
				seen = append(seen, ev.Profile)
				mu.Unlock()
			}
		}
	}()
	return func() []ipc.Profile {
		mu.Lock()
		defer mu.Unlock()
		return append([]ipc.Profile(nil), seen...)
	}
}

func timesOf(reqs []faultTokenRequest) []time.Time {
	var ts []time.Time
	for _, r := range reqs {
		ts = append(ts, r.At)
	}
	return ts
}

// requestsBetween counts the requests that came in [from, to].
func requestsBetween(reqs []faultTokenRequest, from, to time.Time) int {
	n := 0
	for _, r := range reqs {
		if !r.At.Before(from) && !r.At.After(to) {
			n++
		}
	}
	return n
}

// checkBackoffGaps checks that no request followed the previous one (or start) sooner
// than the backoff's 1 s minimum allows (with some slack for the clocks of two processes).
func checkBackoffGaps(t *testing.T, what string, start time.Time, reqs []faultTokenRequest) {
	t.Helper()
	prev := start
	first, short := 0, 0
	var gap time.Duration
	for i, r := range reqs {
		if g := r.At.Sub(prev); g < 800*time.Millisecond {
			if short == 0 {
				first, gap = i+1, g
			}
			short++
		}
		prev = r.At
	}
	if short > 0 {
		t.Errorf("%s: %d of %d requests came sooner than the 1s backoff allows after the one before (the first: request %d, %s after)",
			what, short, len(reqs), first, gap.Round(time.Millisecond))
	}
}

// TestIdPFaultExpiredOnArrivalDeviceLogin: an OAuth server that issues access tokens
// already expired (a JWT whose exp is two minutes past, no expires_in) on the device login
// and on every refresh. The login stores the grant but says it failed, and the agent
// retries the refresh with backoff instead of storming the token endpoint.
func TestIdPFaultExpiredOnArrivalDeviceLogin(t *testing.T) {
	t.Parallel()
	f := startFaultIdP(t, nil, func(req faultTokenRequest) faultAnswer {
		switch req.GrantType {
		case deviceCodeGrant:
			if req.Poll == 1 {
				return oauthError(http.StatusBadRequest, "authorization_pending", "")
			}
			return faultAnswer{http.StatusOK, map[string]any{
				"access_token": expiredJWT("alice", 2*time.Minute), "token_type": "Bearer", "refresh_token": "rt-1"}}
		case "refresh_token":
			if req.Form.Get("refresh_token") != "rt-1" {
				return oauthError(http.StatusBadRequest, "invalid_grant", "unknown refresh token")
			}
			body := map[string]any{"access_token": expiredJWT("alice", 2*time.Minute), "token_type": "Bearer"}
			if req.N%2 == 0 {
				body["refresh_token"] = "rt-1" // "rotated" to itself, as some servers do
			}
			return faultAnswer{http.StatusOK, body}
		}
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "")
	})
	e, _, api := faultSetup(t)
	addFaultDevice(t, e, f)
	waitProfile(t, api, "work", ipc.StateNeedsLogin)
	events := recordEvents(t, api, "work")

	r := run(t, e, "", "login", "work", "--no-browser")
	polls := f.Requests(deviceCodeGrant)
	if len(polls) < 2 {
		t.Fatalf("the device code was polled %d times, want the pending answer and then the token; login: %s", len(polls), r)
	}
	loggedIn := polls[len(polls)-1].At // when the server sent the expired token
	t.Logf("login: %s", r)
	if r.code != 1 {
		t.Errorf("login with an expired access token: exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "already expired") || !strings.Contains(r.stderr, "logged in") {
		t.Errorf("login's stderr should say that the login worked but the token was already expired:\n%s", r.stderr)
	}
	if strings.HasSuffix(strings.TrimSpace(r.stderr), "work:") {
		t.Errorf("login's error has no reason:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "logged in to work") {
		t.Errorf("login reports success:\n%s", r.stderr)
	}

	// The grant is stored: the refresh token is in the keyring.
	if got := e.sess.keyringLookup(t, "service", "authagent", "username", "work/refresh_token"); got != "rt-1" {
		t.Errorf("keyring work/refresh_token = %q, want the refresh token of the login", got)
	}

	// Over 8 s after the login, the agent retries with backoff: 1 s, then up to 2 s, 4 s …
	window := loggedIn.Add(8 * time.Second)
	time.Sleep(time.Until(window) + 100*time.Millisecond)
	refreshes := f.Requests("refresh_token")
	n := requestsBetween(refreshes, loggedIn, window)
	t.Logf("refresh requests in the 8s after the login: %d", n)
	if n > 6 {
		t.Errorf("%d refresh requests in the 8s after the login, want at most 6 (backoff)", n)
	}
	if n < 2 {
		t.Errorf("%d refresh requests in the 8s after the login; the agent should retry the stored grant with backoff (about 4)", n)
	}
	for i, rq := range refreshes {
		if rq.Form.Get("refresh_token") != "rt-1" || rq.ClientID != "fault-cli" {
			t.Errorf("refresh %d: refresh_token %q, client_id %q; want the stored grant rt-1 of client fault-cli", i+1, rq.Form.Get("refresh_token"), rq.ClientID)
		}
	}
	checkBackoffGaps(t, "refresh after an expired token", loggedIn, refreshes)

	// The profile says why, and is not valid.
	p := listedProfile(t, e, "work")
	t.Logf("list: state %s, last_error %q", p.State, p.LastError)
	if p.State == ipc.StateValid {
		t.Errorf("state %s with nothing but expired tokens", p.State)
	}
	if !strings.Contains(p.LastError, "already expired") {
		t.Errorf("last_error %q should say the token was already expired when it arrived", p.LastError)
	}
	if !strings.Contains(p.LastError, "clock agrees") {
		t.Errorf("last_error %q should say this machine's clock agrees with the server's (its Date header)", p.LastError)
	}
	var afterLogin *ipc.Profile
	for _, ev := range events() {
		if strings.HasPrefix(ev.LastError, "logged in (the new grant is stored), but the token was already expired") {
			afterLogin = &ev
			break
		}
	}
	if afterLogin == nil {
		t.Errorf("no event had last_error \"logged in (the new grant is stored), but the token was already expired…\"; events: %+v", events())
	} else if afterLogin.State == ipc.StateValid {
		t.Errorf("after the login: state %s, last_error %q", afterLogin.State, afterLogin.LastError)
	}

	// An expired token is never served.
	tok := run(t, e, "", "token", "work")
	if tok.code == 0 || tok.stdout != "" {
		t.Errorf("token with only expired tokens in hand: %s", tok)
	}
	if !strings.Contains(tok.stderr, "already expired") {
		t.Errorf("token's error should give the reason:\n%s", tok.stderr)
	}

	calls := append([]time.Time{f.Requests(deviceCodeGrant)[0].At}, timesOf(f.Requests("refresh_token"))...)
	checkCallBudget(t, "login and refreshes", calls, faultBurst, faultEvery)
}

// TestIdPFaultExpiredOnArrivalClientCredentials: an OAuth server whose client credentials
// grant issues tokens already expired. The agent backs off; the profile says why.
func TestIdPFaultExpiredOnArrivalClientCredentials(t *testing.T) {
	t.Parallel()
	secret := canary(t)
	f := startFaultIdP(t, nil, func(req faultTokenRequest) faultAnswer {
		if req.GrantType != "client_credentials" {
			return oauthError(http.StatusBadRequest, "unsupported_grant_type", "")
		}
		if req.ClientID != "svc-client" || req.ClientSecret != secret {
			return oauthError(http.StatusUnauthorized, "invalid_client", "wrong client or secret")
		}
		return faultAnswer{http.StatusOK, map[string]any{"access_token": expiredJWT("svc-client", 2*time.Minute), "token_type": "Bearer"}}
	})
	e, a, api := faultSetup(t)
	added := time.Now()
	addAPIKey(t, e, "svc", secret, "--mode", "client_credentials", "--key-id", "svc-client",
		"--token-url", f.TokenURL(), "--host", "api.example.com")

	window := added.Add(8 * time.Second)
	time.Sleep(time.Until(window) + 100*time.Millisecond)
	reqs := f.Requests("client_credentials")
	n := requestsBetween(reqs, added, window)
	t.Logf("client_credentials requests in the 8s after add: %d", n)
	if n > 6 {
		t.Errorf("%d token requests in 8s, want at most 6 (backoff)", n)
	}
	if n < 2 {
		t.Errorf("%d token requests in 8s; the agent should retry with backoff (about 4)", n)
	}
	if len(reqs) > 0 {
		checkBackoffGaps(t, "client credentials after an expired token", reqs[0].At.Add(-time.Second), reqs)
	}

	p, err := api.Profile(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("state %s, last_error %q", p.State, p.LastError)
	if p.State == ipc.StateValid || p.State == ipc.StateNeedsLogin {
		t.Errorf("state %s; want a failed fetch being retried (error or refreshing)", p.State)
	}
	if !strings.Contains(p.LastError, "already expired") {
		t.Errorf("last_error %q should say the token was already expired when it arrived", p.LastError)
	}
	tok := run(t, e, "", "token", "svc")
	if tok.code == 0 || tok.stdout != "" {
		t.Errorf("token with only expired tokens in hand: %s", tok)
	}
	for where, text := range map[string]string{"last_error": p.LastError, "token's stderr": tok.stderr, "agent log": a.Log()} {
		if strings.Contains(text, secret) {
			t.Errorf("%s contains the client secret", where)
		}
	}
	checkCallBudget(t, "client credentials", timesOf(f.Requests("client_credentials")), faultBurst, faultEvery)
}

// proxiedRefresh is one refresh_token grant that passed the slowing proxy.
type proxiedRefresh struct {
	received, answered time.Time
}

// TestIdPFaultMinValidLongerThanAnyToken: 300 clients at once ask for a token valid an hour
// longer, from a real IdP whose tokens live 8 s (behind a proxy that slows the first
// refresh, as in the issue); 300 more ask right after. No refresh can meet that, so none is
// started: they all get the token in hand with its real expiry. (The old agent sent 18–30
// refreshes for one such burst.)
func TestIdPFaultMinValidLongerThanAnyToken(t *testing.T) {
	t.Parallel()
	const life = 8 * time.Second
	p := idp.Start(t, idp.Options{AccessTokenLifetime: life})
	target, err := url.Parse(p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = target.Host
	}}
	var mu sync.Mutex
	var refreshes []proxiedRefresh
	var lastDeviceAnswer time.Time // when the last device code poll was answered
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != idp.PathToken {
			proxy.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if form.Get("grant_type") != "refresh_token" {
			proxy.ServeHTTP(w, r)
			if form.Get("grant_type") == deviceCodeGrant {
				mu.Lock()
				lastDeviceAnswer = time.Now()
				mu.Unlock()
			}
			return
		}
		mu.Lock()
		i := len(refreshes)
		refreshes = append(refreshes, proxiedRefresh{received: time.Now()})
		mu.Unlock()
		if i == 0 {
			time.Sleep(1500 * time.Millisecond) // the first refresh is slow: clients pile up
		}
		proxy.ServeHTTP(w, r)
		mu.Lock()
		refreshes[i].answered = time.Now()
		mu.Unlock()
	}))
	t.Cleanup(slow.Close)

	e, _, api := faultSetup(t)
	runOK(t, e, "", "add", "work", "--provider", "devicecode", "--device-auth-url", slow.URL+idp.PathDeviceAuthorization,
		"--token-url", slow.URL+idp.PathToken, "--client-id", p.ClientID(), "--host", "api.example.com")

	// Log in as a user would, through the proxy.
	cmd := exec.Command(authagentBin, "login", "work", "--no-browser")
	cmd.Env, cmd.Dir = e.environ(), e.dir
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := waitProfile(t, api, "work", ipc.StateLoginPending).Login
	if err := p.Approve(ch.UserCode); err != nil {
		t.Fatalf("approve %s: %v", ch.UserCode, err)
	}
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "logged in to work") {
		t.Fatalf("login: %v\n%s", err, out.String())
	}
	// The login's token was fetched when its poll was answered (the last one: the login
	// ends there); the agent's refresh floor counts from a moment after that. The moment
	// the command ended is later still, by as much as a loaded machine takes to answer it
	// and end it: measured from there, a proactive refresh due 5–5.2 s after the fetch (the
	// floor, or 65 % of 8 s) could count as "before the floor".
	mu.Lock()
	loggedIn := lastDeviceAnswer
	mu.Unlock()
	if loggedIn.IsZero() {
		t.Fatal("the login's device code polls did not pass the proxy")
	}
	first, err := api.Credential(context.Background(), "work")
	if err != nil {
		t.Fatal(err)
	}

	loginExpiry := first.ExpiresAt
	if loginExpiry == nil {
		t.Fatal("the login's token has no expires_at")
	}
	const n = 300
	type served struct {
		token     string
		expiresAt *time.Time
	}
	// wave sends n requests for a token valid an hour longer, all at once.
	wave := func() []served {
		results := make(chan served, n)
		errs := make(chan error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &ipc.Client{Socket: e.sock()}
				defer c.CloseIdleConnections()
				<-start
				cred, err := c.Credential(context.Background(), "work", ipc.MinValid(time.Hour))
				if err != nil {
					errs <- err
					return
				}
				results <- served{cred.Token, cred.ExpiresAt}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		close(results)
		failed := 0
		for err := range errs {
			if failed++; failed == 1 {
				t.Errorf("a client got an error: %v", err)
			}
		}
		if failed > 0 {
			t.Errorf("%d of %d clients got an error", failed, n)
		}
		var out []served
		for s := range results {
			out = append(out, s)
		}
		return out
	}
	// No refresh can give a token that lives an hour: the token in hand is the freshest
	// the IdP gives, so both waves get it, with its real expiry, and the IdP sees no
	// refresh before the agent's own proactive one (at 75 % ± 10 % of 8 s, and never
	// before the 5 s floor).
	waveStart := time.Now()
	all := append(wave(), wave()...)
	mu.Lock()
	proxied := append([]proxiedRefresh(nil), refreshes...)
	mu.Unlock()
	early := 0
	for _, r := range proxied {
		if r.received.Before(loggedIn.Add(5 * time.Second)) {
			early++
		}
	}
	t.Logf("two waves of %d took %s; refresh requests through the proxy: %d (%d before the 5 s floor)",
		n, time.Since(waveStart).Round(time.Millisecond), len(proxied), early)
	if early != 0 {
		t.Errorf("%d refresh requests for 2×%d clients asking for min_valid=1h on 8 s tokens; want none (no refresh can meet it)", early, n)
	}
	if len(all) != 2*n {
		t.Errorf("%d clients got a credential, want %d", len(all), 2*n)
	}
	for _, s := range all {
		if s.token != first.Token && !time.Now().After(loggedIn.Add(5*time.Second)) {
			t.Fatalf("a client got a token other than the login's before any refresh was due")
		}
		if s.token == first.Token && (s.expiresAt == nil || !s.expiresAt.Equal(*loginExpiry)) {
			t.Fatalf("served expires_at %v, want the token's real expiry %v (not the hour asked for)", s.expiresAt, loginExpiry)
		}
	}
	if r := p.ReuseDetected(); r != 0 {
		t.Errorf("the IdP detected %d reused refresh tokens", r)
	}
	if err := p.CheckAccessToken(first.Token); err != nil {
		t.Errorf("the served token is refused by the IdP: %v", err)
	}
}

// TestIdPFaultDeadRefreshTokenIn200: GitHub answers a dead refresh token with HTTP 200 and
// {"error":"bad_refresh_token"}. One refresh finds out, the profile needs a login, nobody
// retries, and kube-credential offers the login when kubectl says it may.
func TestIdPFaultDeadRefreshTokenIn200(t *testing.T) {
	t.Parallel()
	salt := canary(t)
	f := startFaultIdP(t, nil, func(req faultTokenRequest) faultAnswer {
		switch req.GrantType {
		case deviceCodeGrant:
			if req.Poll == 1 {
				return oauthError(http.StatusBadRequest, "authorization_pending", "")
			}
			var login int
			fmt.Sscanf(req.Form.Get("device_code"), "dc-%d", &login)
			life := 3600
			if login == 1 {
				life = 6 // the first login's token is refreshed soon
			}
			return faultAnswer{http.StatusOK, map[string]any{
				"access_token": fmt.Sprintf("at-%d-%s", login, salt), "token_type": "bearer",
				"expires_in": life, "refresh_token": fmt.Sprintf("rt-%d", login), "scope": ""}}
		case "refresh_token":
			return faultAnswer{http.StatusOK, map[string]any{
				"error": "bad_refresh_token", "error_description": "The refresh token passed is incorrect or expired.",
				"error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"}}
		}
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "")
	})
	e, _, api := faultSetup(t)
	addFaultDevice(t, e, f)
	waitProfile(t, api, "work", ipc.StateNeedsLogin)
	r := runOK(t, e, "", "login", "work", "--no-browser")
	if !strings.Contains(r.stderr, "logged in to work") {
		t.Fatalf("login: %s", r)
	}

	// The proactive refresh (about 5 s after the login) meets bad_refresh_token.
	p := waitProfile(t, api, "work", ipc.StateNeedsLogin)
	refreshes := f.Requests("refresh_token")
	if len(refreshes) != 1 {
		t.Errorf("needs_login after %d refresh requests, want exactly 1", len(refreshes))
	}
	if len(refreshes) == 0 {
		t.Fatal("no refresh request")
	}
	t.Logf("last_error: %s", p.LastError)
	if !strings.Contains(p.LastError, "bad_refresh_token") || !strings.Contains(p.LastError, "authagent login work") {
		t.Errorf("last_error %q should name bad_refresh_token and say to run `authagent login work`", p.LastError)
	}
	// Nobody retries: wait several seconds, and until the access token in hand expired.
	until := refreshes[0].At.Add(4 * time.Second)
	if p.ExpiresAt != nil && p.ExpiresAt.Add(1500*time.Millisecond).After(until) {
		until = p.ExpiresAt.Add(1500 * time.Millisecond) // expires_at is in whole seconds
	}
	for time.Now().Before(until) {
		asked := time.Now()
		if r := run(t, e, "", "token", "work"); r.code == 0 && (p.ExpiresAt == nil || asked.After(p.ExpiresAt.Add(time.Second))) {
			// (+1 s: the API shows expires_at in whole seconds)
			t.Errorf("token served at %s, after its grant died and its token expired (at %v): %s", asked.UTC().Format(time.RFC3339Nano), p.ExpiresAt, r)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got := f.Count("refresh_token"); got != 1 {
		t.Errorf("%d refresh requests after bad_refresh_token, want still 1", got)
	}
	if got := listedProfile(t, e, "work").State; got != ipc.StateNeedsLogin {
		t.Errorf("state %s, want %s", got, ipc.StateNeedsLogin)
	}

	// kubectl, not interactive: a message that says to log in, and no login started.
	execInfo := func(interactive bool) *env {
		return e.with("KUBERNETES_EXEC_INFO", fmt.Sprintf(`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":%t}}`, interactive))
	}
	devices := f.DeviceRequests()
	r = run(t, execInfo(false), "", "kube-credential", "work")
	t.Logf("kube-credential, not interactive: %s", r)
	if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, "authagent login work") {
		t.Errorf("kube-credential (not interactive) with a dead grant: want a failure that says to run `authagent login work`; %s", r)
	}
	if got := f.DeviceRequests(); got != devices {
		t.Errorf("kube-credential (not interactive) started a device login")
	}
	if p, _ := api.Profile(context.Background(), "work"); p == nil || p.Login != nil {
		t.Errorf("after kube-credential (not interactive): profile %+v; want no login pending", p)
	}

	// kubectl, interactive: the login is offered on stderr and, once done, the credential
	// is printed.
	r = run(t, execInfo(true), "", "kube-credential", "work")
	t.Logf("kube-credential, interactive: %s", r)
	if got := f.DeviceRequests(); got != devices+1 {
		t.Errorf("kube-credential (interactive) made %d device authorization requests, want 1", got-devices)
	}
	if !strings.Contains(r.stderr, f.VerificationURI()) || !strings.Contains(r.stderr, fmt.Sprintf("FAKE-%04d", devices+1)) {
		t.Errorf("kube-credential (interactive) did not offer the login (verification URI and user code) on stderr: %s", r)
	}
	if r.code != 0 {
		t.Fatalf("kube-credential (interactive) after the login: %s", r)
	}
	var ec struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Status     struct {
			Token string `json:"token"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ec); err != nil {
		t.Fatalf("kube-credential stdout is not an ExecCredential: %v\n%s", err, r.stdout)
	}
	if want := fmt.Sprintf("at-%d-%s", devices+1, salt); ec.Kind != "ExecCredential" || ec.APIVersion != "client.authentication.k8s.io/v1" || ec.Status.Token != want {
		t.Errorf("ExecCredential %s; want kind ExecCredential, apiVersion v1 and the new login's token", r.stdout)
	}
	if got := f.Count("refresh_token"); got != 1 {
		t.Errorf("%d refresh requests in all, want 1", got)
	}
	waitProfile(t, api, "work", ipc.StateValid)
}

// TestIdPFaultDeviceAnswerWithoutExpiresIn: a device authorization answer without
// expires_in (RFC 8628 requires it; some servers leave it out). The challenge the agent
// shows expires when the devicecode default says, about 15 minutes ahead, never in year 1.
func TestIdPFaultDeviceAnswerWithoutExpiresIn(t *testing.T) {
	t.Parallel()
	f := startFaultIdP(t, func(base string, n int) map[string]any {
		a := standardDeviceAnswer(base, n)
		delete(a, "expires_in")
		return a
	}, func(req faultTokenRequest) faultAnswer {
		return oauthError(http.StatusBadRequest, "authorization_pending", "")
	})
	e, _, api := faultSetup(t)
	addFaultDevice(t, e, f)
	waitProfile(t, api, "work", ipc.StateNeedsLogin)

	checkExpiry := func(what string, got time.Time, from, to time.Time) {
		t.Helper()
		lo, hi := from.Add(14*time.Minute), to.Add(15*time.Minute+2*time.Second)
		if got.Before(lo) || got.After(hi) {
			t.Errorf("%s: expires_at %s, want about 15 minutes ahead (between %s and %s)", what,
				got.UTC().Format(time.RFC3339), lo.UTC().Format(time.RFC3339), hi.UTC().Format(time.RFC3339))
		}
	}
	from := time.Now()
	status, body := apiDo(t, e, http.MethodPost, "/v1/profiles/work/login", nil)
	to := time.Now()
	if status != http.StatusAccepted {
		t.Fatalf("POST /v1/profiles/work/login: %d %s", status, body)
	}
	t.Logf("challenge: %s", body)
	var ch ipc.LoginChallenge
	if err := json.Unmarshal(body, &ch); err != nil {
		t.Fatalf("challenge: %v: %s", err, body)
	}
	if strings.Contains(string(body), "0001-01-01") {
		t.Errorf("the challenge has a year-1 time: %s", body)
	}
	checkExpiry("the 202 challenge", ch.ExpiresAt, from, to)
	if ch.UserCode != "FAKE-0001" || ch.Interval != 1 {
		t.Errorf("challenge %+v; want the server's user code FAKE-0001 and interval 1", ch)
	}

	status, body = apiDo(t, e, http.MethodGet, "/v1/profiles/work", nil)
	var p ipc.Profile
	if err := json.Unmarshal(body, &p); status != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/profiles/work: %d %v %s", status, err, body)
	}
	if p.Login == nil {
		t.Fatalf("GET /v1/profiles/work during the login has no login: %s", body)
	}
	if strings.Contains(string(body), "0001-01-01") {
		t.Errorf("the profile has a year-1 time: %s", body)
	}
	checkExpiry("GET /v1/profiles/work .login", p.Login.ExpiresAt, from, to)

	if err := api.CancelLogin(context.Background(), "work"); err != nil {
		t.Fatal(err)
	}
	if p := waitProfile(t, api, "work", ipc.StateNeedsLogin); p.Login != nil {
		t.Errorf("after cancel: %+v", p)
	}
}
