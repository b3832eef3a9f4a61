package agent

// The identity-provider fault suite: every provider kind that talks to a token endpoint,
// driven through the agent on the fake clock against a token endpoint that answers one
// fault after the first good token, for a simulated day. Each case states the request
// budget it must stay in. To cover a new flow, add it to faultFlows.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
	"github.com/authagent/authagent/providers/devicecode"
)

// faultServer is a token endpoint for fault injection. Its clock is the agent's fake clock
// plus skew; it stamps that time in the Date header and the JWTs it issues.
type faultServer struct {
	*httptest.Server
	clock *fakeClock
	skew  time.Duration // the provider's clock minus the agent's

	// slow, when set, bounds on real time each token request the agent sends after its
	// first, as a client timeout would: the fault's (see faultCase.clientTimeout).
	slow time.Duration

	mu       sync.Mutex
	answer   func(w http.ResponseWriter, r *http.Request, now time.Time, n int) // the n-th request, from 1
	times    []time.Time                                                        // each token request it saw, on the agent's clock
	attempts []time.Time                                                        // each token request the agent sent (see RoundTrip)
	grants   map[string]int                                                     // requests per grant_type
	stale    []string                                                           // refresh tokens presented that were not the last one issued
}

// RoundTrip records the agent's token requests as they leave: a request that times out
// before the server sees it still counts against the budget.
func (f *faultServer) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/token") {
		return http.DefaultTransport.RoundTrip(r)
	}
	f.mu.Lock()
	f.attempts = append(f.attempts, f.clock.Now())
	first := len(f.attempts) == 1
	f.mu.Unlock()
	if f.slow <= 0 || first {
		return http.DefaultTransport.RoundTrip(r)
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.slow)
	resp, err := http.DefaultTransport.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		if ctx.Err() == context.DeadlineExceeded {
			return nil, context.DeadlineExceeded // what the client's own timeout would say
		}
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

// cancelOnClose is a response body that ends its request's context once closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	defer b.cancel()
	return b.ReadCloser.Close()
}

func newFaultServer(t *testing.T, clock *fakeClock) *faultServer {
	f := &faultServer{clock: clock, grants: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		local := f.clock.Now()
		f.mu.Lock()
		f.times = append(f.times, local)
		f.grants[r.Form.Get("grant_type")]++
		n, answer, now := len(f.times), f.answer, local.Add(f.skew)
		// Answers that rotate issue rt-N for the N-th request: a refresh must present the
		// newest one (rt-0 is the one stored before the agent starts).
		if rt := r.Form.Get("refresh_token"); r.Form.Get("grant_type") == "refresh_token" && rt != fmt.Sprintf("rt-%d", n-1) {
			f.stale = append(f.stale, fmt.Sprintf("request %d presented %s", n, rt))
		}
		f.mu.Unlock()
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		answer(w, r, now, n)
	})
	mux.HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"https://idp.test/device","expires_in":4,"interval":1}`)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// requests are the token requests the agent sent, on its clock.
func (f *faultServer) requests() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.attempts...)
}

// fakeJWT is an unsigned JWT with the exp claim; the agent reads exp without verifying.
func fakeJWT(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"sub": "alice", "exp": exp.Unix()})
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(claims) + ".sig"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// goodToken answers a token that lives an hour, with a rotated refresh token.
func goodToken(w http.ResponseWriter, _ *http.Request, now time.Time, n int) {
	writeJSON(w, 200, map[string]any{"access_token": fakeJWT(now.Add(time.Hour)), "token_type": "Bearer",
		"expires_in": 3600, "refresh_token": fmt.Sprintf("rt-%d", n)})
}

// An answer's budget: what a day of it may cost the provider.
type budget int

const (
	// transient: retried with backoff. At the cap the wait is uniform in [1 s, 5 min], so
	// about one request per 150 s; never more than 10 in any minute, never a pause in
	// trying for longer than the cap.
	transient budget = iota
	// dead: the grant is dead; after the first failed request, none.
	dead
	// healthy: tokens that work; refreshed once per lifetime (at 65–85 % of it).
	healthy
	// retryAfter: transient, but the provider asked for 10 minutes between tries.
	retryAfter
)

type faultCase struct {
	name   string
	answer func(w http.ResponseWriter, r *http.Request, now time.Time, n int)
	skew   time.Duration
	budget budget
	// lifetime is the served tokens' lifetime on the agent's clock (healthy answers).
	lifetime time.Duration
	// lastError is what last_error must say once the fault was met.
	lastError []string
	// clientTimeout, when set, is how long the agent's HTTP client waits for each token
	// request after its first (for the timeout case). The first (the good token, or the
	// login's authorization_pending) and the device request wait as long as any other
	// case's: a timeout this short would lose them too on a loaded machine.
	clientTimeout time.Duration
	// loginGrant: a device login answered this way stores a grant (the answer carries a
	// refresh token and is a token response); otherwise the login fails and nothing more
	// is asked of the provider. loginError, when set, replaces lastError for the login.
	loginGrant bool
	loginError []string
}

var faultCases = []faultCase{
	{name: "5xx", budget: transient, lastError: []string{"503"},
		answer: func(w http.ResponseWriter, _ *http.Request, _ time.Time, _ int) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(503)
			io.WriteString(w, "<html><body>Service Unavailable</body></html>")
		}},
	{name: "5xx with Retry-After", budget: retryAfter, lastError: []string{"503"},
		answer: func(w http.ResponseWriter, _ *http.Request, _ time.Time, _ int) {
			w.Header().Set("Retry-After", "600")
			w.WriteHeader(503)
		}},
	{name: "timeout", budget: transient, clientTimeout: 5 * time.Millisecond, lastError: []string{"did not answer in time"},
		answer: func(w http.ResponseWriter, r *http.Request, _ time.Time, _ int) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}},
	{name: "garbage 200 HTML page", budget: transient, lastError: []string{"not a token response"},
		answer: func(w http.ResponseWriter, _ *http.Request, _ time.Time, _ int) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<!doctype html><title>Sign in</title><p>Please enable JavaScript")
		}},
	{name: "slow_down", budget: transient, lastError: []string{"slow_down"}, loginError: []string{"expired before the login was completed"},
		answer: func(w http.ResponseWriter, _ *http.Request, _ time.Time, _ int) {
			writeJSON(w, 400, map[string]string{"error": "slow_down"})
		}},
	{name: "invalid_grant", budget: dead, lastError: []string{"invalid_grant"},
		answer: func(w http.ResponseWriter, _ *http.Request, _ time.Time, _ int) {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "grant revoked"})
		}},
	{name: "GitHub error sent with 200", budget: dead, lastError: []string{"bad_refresh_token"},
		answer: func(w http.ResponseWriter, _ *http.Request, _ time.Time, _ int) {
			writeJSON(w, 200, map[string]string{"error": "bad_refresh_token", "error_description": "The refresh token passed is incorrect or expired."})
		}},
	{name: "expired on arrival", budget: transient, loginGrant: true, lastError: []string{"already expired when it arrived", "before it was received", "agrees with the server's"},
		answer: func(w http.ResponseWriter, _ *http.Request, now time.Time, _ int) {
			writeJSON(w, 200, map[string]string{"access_token": fakeJWT(now.Add(-2 * time.Minute)), "token_type": "Bearer", "refresh_token": "rt-1"})
		}},
	{name: "tokens that live 1 s", budget: transient, loginGrant: true, lastError: []string{"too soon to be used"},
		answer: func(w http.ResponseWriter, _ *http.Request, now time.Time, _ int) {
			writeJSON(w, 200, map[string]any{"access_token": "short", "token_type": "Bearer", "expires_in": 1, "refresh_token": "rt-1"})
		}},
	{name: "empty access_token", budget: transient, lastError: []string{"access_token"},
		answer: func(w http.ResponseWriter, _ *http.Request, _ time.Time, _ int) {
			writeJSON(w, 200, map[string]any{"access_token": "", "token_type": "Bearer", "expires_in": 3600})
		}},
	{name: "Retry-After that overflows", budget: retryAfter, lastError: []string{"429"},
		answer: func(w http.ResponseWriter, _ *http.Request, _ time.Time, _ int) {
			w.Header().Set("Retry-After", "9223372037")
			w.WriteHeader(429)
		}},
	{name: "redirect loop", budget: transient, lastError: []string{"redirects to", "configure"},
		answer: func(w http.ResponseWriter, r *http.Request, _ time.Time, _ int) {
			http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
		}},
	{name: "invalid_client", budget: dead, lastError: []string{"invalid_client"},
		answer: func(w http.ResponseWriter, _ *http.Request, _ time.Time, _ int) {
			writeJSON(w, 401, map[string]string{"error": "invalid_client"})
		}},
	{name: "expires_in as a fraction", budget: healthy, lifetime: time.Hour, loginGrant: true,
		answer: func(w http.ResponseWriter, _ *http.Request, now time.Time, n int) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":3600.0,"refresh_token":"rt-%d"}`, n, n)
		}},
	{name: "local clock 10 min ahead", budget: healthy, loginGrant: true, skew: -10 * time.Minute, lifetime: 50 * time.Minute,
		answer: jwtOnly(time.Hour)},
	{name: "local clock 10 min behind", budget: healthy, loginGrant: true, skew: 10 * time.Minute, lifetime: 70 * time.Minute,
		answer: jwtOnly(time.Hour)},
	{name: "local clock 10 min ahead, 5-minute tokens", budget: transient, skew: -10 * time.Minute, loginGrant: true,
		lastError: []string{"already expired when it arrived", "10m0s ahead of the server's"},
		answer:    jwtOnly(5 * time.Minute)},
}

// jwtOnly answers JWTs that live life on the provider's clock, without expires_in: the
// agent learns the expiry from the exp claim, so the clocks' difference matters.
func jwtOnly(life time.Duration) func(w http.ResponseWriter, _ *http.Request, now time.Time, n int) {
	return func(w http.ResponseWriter, _ *http.Request, now time.Time, n int) {
		writeJSON(w, 200, map[string]any{"access_token": fakeJWT(now.Add(life)), "token_type": "Bearer", "refresh_token": fmt.Sprintf("rt-%d", n)})
	}
}

// A faultFlow is one way a profile gets tokens from a token endpoint.
type faultFlow struct {
	name    string
	profile func(tokenURL string) *providers.ProfileConfig
	secrets map[string]string // stored before the agent starts
	// login: the profile starts logged out and logs in; the fault answers the login's
	// token request (after one authorization_pending) and every refresh after it.
	login bool
}

var faultFlows = []faultFlow{
	{name: "devicecode refresh",
		profile: func(u string) *providers.ProfileConfig {
			return &providers.ProfileConfig{Provider: devicecode.Name, ClientID: "cli", DeviceAuthURL: strings.TrimSuffix(u, "/token") + "/device", TokenURL: u}
		},
		secrets: map[string]string{"p/" + providers.RefreshTokenKey: "rt-0"}},
	{name: "apikey client_credentials",
		profile: func(u string) *providers.ProfileConfig {
			return &providers.ProfileConfig{Provider: apikey.Name, Mode: "client_credentials", KeyID: "svc", TokenURL: u}
		},
		secrets: map[string]string{"p/" + providers.SecretKey: "svc-secret"}},
	{name: "devicecode login", login: true,
		profile: func(u string) *providers.ProfileConfig {
			return &providers.ProfileConfig{Provider: devicecode.Name, ClientID: "cli", DeviceAuthURL: strings.TrimSuffix(u, "/token") + "/device", TokenURL: u}
		}},
}

func TestIdPFaultSuite(t *testing.T) {
	for _, flow := range faultFlows {
		for _, fc := range faultCases {
			t.Run(flow.name+"/"+fc.name, func(t *testing.T) {
				t.Parallel()
				runFaultCase(t, flow, fc)
			})
		}
	}
}

func runFaultCase(t *testing.T, flow faultFlow, fc faultCase) {
	clock := newFakeClock()
	start := clock.Now()
	srv := newFaultServer(t, clock)
	srv.skew = fc.skew
	srv.slow = fc.clientTimeout
	srv.answer = func(w http.ResponseWriter, r *http.Request, now time.Time, n int) {
		switch {
		case flow.login && n == 1:
			writeJSON(w, 400, map[string]string{"error": "authorization_pending"})
		case !flow.login && n == 1 && fc.budget != healthy:
			goodToken(w, r, now, n)
		default:
			fc.answer(w, r, now, n)
		}
	}
	store := NewMemoryStore()
	for k, v := range flow.secrets {
		store.Set(context.Background(), k, v)
	}
	var jmu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	a, err := New(Options{
		Config:     &Config{Path: filepath.Join(t.TempDir(), "config.toml"), Profiles: map[string]*providers.ProfileConfig{"p": flow.profile(srv.URL + "/token")}},
		Store:      store,
		Providers:  map[string]providers.Factory{devicecode.Name: devicecode.New, apikey.Name: apikey.New},
		Clock:      clock,
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: srv}, // answers are at once, but for the fault's
		Jitter:     func() float64 { jmu.Lock(); defer jmu.Unlock(); return rng.Float64() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	if flow.login {
		runFaultLogin(t, a, clock, srv, fc)
		return
	}

	// The first fetch brings a good token (or, for healthy answers, the first of many).
	quiesce(t, a, clock)
	first, err := a.Credential(context.Background(), "p", 0, nil)
	if err != nil {
		if fc.budget == healthy {
			t.Fatalf("first credential: %v", err)
		}
		// The fault is in the first answer too for some kinds; nothing to serve then.
		first = nil
	}

	// Past the good token's refresh point the fault begins; the good token is still
	// valid and must be served while last_error says what happened.
	simulate(t, a, clock, 50*time.Minute)
	info, _ := a.Profile("p")
	if fc.budget != healthy {
		for _, want := range fc.lastError {
			if !strings.Contains(info.LastError, want) {
				t.Errorf("last_error %q does not say %q", info.LastError, want)
			}
		}
		if first != nil {
			c, err := a.Credential(context.Background(), "p", -1, nil)
			if err != nil || c.Token != first.Token {
				t.Errorf("at 50 min: got %v, %v; want the still-valid first token served", c, err)
			}
		}
	} else if info.LastError != "" || info.State != StateValid {
		t.Errorf("healthy answers: state %q, last_error %q", info.State, info.LastError)
	}

	checkFaultDay(t, a, clock, start, srv.requests, fc.budget, fc.lifetime, 0)
	if fc.budget == healthy && flow.secrets["p/"+providers.RefreshTokenKey] != "" {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.stale) > 0 {
			t.Errorf("a rotated refresh token was lost: %v", srv.stale)
		}
	}
}

// runFaultLogin logs the profile in against the fault (on real time: the device flow polls
// with a ticker), then runs the rest of the day.
func runFaultLogin(t *testing.T, a *Agent, clock *fakeClock, srv *faultServer, fc faultCase) {
	start := clock.Now()
	quiesce(t, a, clock)
	if _, err := a.Login(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, _ := a.Profile("p")
		if info.State != StateLoginPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the login did not end within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	quiesce(t, a, clock)
	info, _ := a.Profile("p")
	wantErr := fc.lastError
	if fc.loginError != nil {
		wantErr = fc.loginError
	}
	for _, want := range wantErr {
		if !strings.Contains(info.LastError, want) {
			t.Errorf("after the login: last_error %q does not say %q", info.LastError, want)
		}
	}
	if !fc.loginGrant {
		// The login failed: nothing stored, nobody retries a login on their own.
		if n := len(srv.requests()); n != 2 {
			t.Errorf("%d token requests for the login, want 2 (authorization_pending and the fault)", n)
		}
		checkFaultDay(t, a, clock, start, srv.requests, dead, 0, 2)
		return
	}
	if fc.budget != healthy && !strings.Contains(info.LastError, "logged in (the new grant is stored)") {
		t.Errorf("last_error %q does not say the login itself worked", info.LastError)
	}
	checkFaultDay(t, a, clock, start, srv.requests, fc.budget, fc.lifetime, 1)
}

// checkFaultDay runs the agent to a day after start, with a client asking every few
// minutes as tools do, and checks the provider's requests against the budget. extra
// requests (a login's) do not count against it.
func checkFaultDay(t *testing.T, a *Agent, clock *fakeClock, start time.Time, requests func() []time.Time, b budget, lifetime time.Duration, extra int) {
	t.Helper()
	info, _ := a.Profile("p")
	for clock.Now().Sub(start) < 24*time.Hour {
		simulate(t, a, clock, 7*time.Minute)
		c, err := a.Credential(context.Background(), "p", -1, nil)
		if b == healthy && (err != nil || !clock.Now().Before(c.ExpiresAt)) {
			t.Fatalf("healthy answers at %s: got %v, %v; want a valid token", clock.Now(), c, err)
		}
	}
	reqs := requests()[extra:]
	day := 24 * time.Hour

	perMinute := map[int64]int{}
	worst := 0
	for _, r := range reqs {
		m := r.Unix() / 60
		perMinute[m]++
		worst = max(worst, perMinute[m])
	}
	// Pauses between tries, once the fault is established (the good token came at the
	// start, or a second later when the first try was lost to the client's timeout).
	longestGap := time.Duration(0)
	for i := 1; i < len(reqs); i++ {
		if reqs[i-1].Sub(start) >= 50*time.Minute {
			longestGap = max(longestGap, reqs[i].Sub(reqs[i-1]))
		}
	}
	t.Logf("%d token requests in a simulated day (worst minute %d, longest gap %s); last_error %q", len(reqs), worst, longestGap, info.LastError)

	switch b {
	case transient:
		// A ramp of ~9 steps, then a mean of 150.5 s per try.
		if hi, lo := 20+int(day/(120*time.Second)), int(day/(200*time.Second)); len(reqs) > hi || len(reqs) < lo {
			t.Errorf("%d requests in a day, want between %d and %d (one per backoff step)", len(reqs), lo, hi)
		}
		if worst > 10 {
			t.Errorf("%d requests in one minute, want at most 10", worst)
		}
		if longestGap > backoffMax {
			t.Errorf("a %s pause between tries: backoff exceeded its %s cap", longestGap, backoffMax)
		}
	case retryAfter:
		if hi := 10 + int(day/(10*time.Minute)); len(reqs) > hi {
			t.Errorf("%d requests in a day with Retry-After: 600, want at most %d", len(reqs), hi)
		}
	case dead:
		if len(reqs) > 2 {
			t.Errorf("%d requests in a day, want at most 2: the good token and the one refresh that met the dead grant", len(reqs))
		}
		if info, _ := a.Profile("p"); info.State != StateNeedsLogin {
			t.Errorf("state %q, want needs_login", info.State)
		}
	case healthy:
		min := lifetime * 65 / 100
		if hi := 2 + int(day/min); len(reqs) > hi {
			t.Errorf("%d requests in a day for tokens living %s, want at most %d (one per 65 %% of a lifetime)", len(reqs), lifetime, hi)
		}
		if lo := int(day / lifetime); len(reqs) < lo {
			t.Errorf("%d requests in a day for tokens living %s: not refreshed ahead of expiry", len(reqs), lifetime)
		}
	}
}
