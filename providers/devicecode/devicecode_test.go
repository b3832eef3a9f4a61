package devicecode

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/providertest"
)

type memSecrets = providertest.Secrets

// fakeIdP is a hand-written OAuth server for fault injection. token answers each token
// request; polls counts them.
type fakeIdP struct {
	*httptest.Server
	mu      sync.Mutex
	token   func(w http.ResponseWriter, r *http.Request, n int)
	polls   []time.Time
	revoked []string
	device  string // JSON of the device authorization answer
}

func newFakeIdP(t *testing.T) *fakeIdP {
	f := &fakeIdP{device: `{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"https://idp.test/device","verification_uri_complete":"https://idp.test/device?code=ABCD-EFGH","expires_in":600,"interval":1}`}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, f.device)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		f.polls = append(f.polls, time.Now())
		n, h := len(f.polls), f.token
		f.mu.Unlock()
		h(w, r, n)
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		f.revoked = append(f.revoked, r.Form.Get("token"))
		f.mu.Unlock()
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{
			"issuer":                        f.URL,
			"authorization_endpoint":        f.URL + "/authorize",
			"device_authorization_endpoint": f.URL + "/device",
			"token_endpoint":                f.URL + "/token",
			"revocation_endpoint":           f.URL + "/revoke",
			"jwks_uri":                      f.URL + "/jwks",
		})
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"error_description":"said the fake"}`, code)
}

func tokens(access, refresh string, expiresIn int) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		body := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": expiresIn}
		if refresh != "" {
			body["refresh_token"] = refresh
		}
		json.NewEncoder(w).Encode(body)
	}
}

// clientTimeout bounds the provider's HTTP requests in tests. It only catches a hang: an
// answer from a fake on this machine may take seconds under load with the race detector.
// The test of a server that does not answer sets its own, short one.
const clientTimeout = 30 * time.Second

func newProvider(t *testing.T, f *fakeIdP, discovery bool, secrets map[string]string) (*Provider, *memSecrets) {
	t.Helper()
	return newProviderTimeout(t, f, discovery, secrets, clientTimeout)
}

// newProviderTimeout is newProvider whose HTTP requests time out after timeout.
func newProviderTimeout(t *testing.T, f *fakeIdP, discovery bool, secrets map[string]string, timeout time.Duration) (*Provider, *memSecrets) {
	t.Helper()
	cfg := &providers.ProfileConfig{Provider: Name, ClientID: "cli"}
	if discovery {
		cfg.Issuer = f.URL
	} else {
		cfg.DeviceAuthURL, cfg.TokenURL, cfg.RevocationURL = f.URL+"/device", f.URL+"/token", f.URL+"/revoke"
	}
	s := &memSecrets{M: secrets}
	if s.M == nil {
		s.M = map[string]string{}
	}
	p, err := New(cfg, providers.Env{Name: "work", Secrets: s, HTTPClient: &http.Client{Timeout: timeout}})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Provider), s
}

func TestFetchPersistsRotation(t *testing.T) {
	for _, discovery := range []bool{false, true} {
		t.Run(fmt.Sprintf("discovery=%v", discovery), func(t *testing.T) {
			f := newFakeIdP(t)
			var gotRT string
			f.token = func(w http.ResponseWriter, r *http.Request, n int) {
				gotRT = r.Form.Get("refresh_token")
				tokens("at2", "rt2", 60)(w, r, n)
			}
			p, s := newProvider(t, f, discovery, map[string]string{providers.RefreshTokenKey: "rt1"})
			before := time.Now()
			c, err := p.Fetch(context.Background())
			after := time.Now()
			if err != nil {
				t.Fatal(err)
			}
			if gotRT != "rt1" {
				t.Errorf("IdP got refresh token %q, want rt1", gotRT)
			}
			if c.Token != "at2" || c.Headers["Authorization"] != "Bearer at2" || c.Metadata["authorization"] != "Bearer at2" {
				t.Errorf("credential %+v", c)
			}
			// 60 s from the answer, which came between before and after (whole seconds).
			if c.ExpiresAt.Before(before.Add(59*time.Second)) || c.ExpiresAt.After(after.Add(61*time.Second)) {
				t.Errorf("expires at %s, want 60s after the answer, which came between %s and %s", c.ExpiresAt, before, after)
			}
			if got, _ := s.Get(context.Background(), providers.RefreshTokenKey); got != "rt2" {
				t.Errorf("stored refresh token %q, want the rotated rt2", got)
			}
		})
	}
}

func TestFetchKeepsRefreshTokenWhenNotRotated(t *testing.T) {
	f := newFakeIdP(t)
	f.token = tokens("at2", "", 60)
	p, s := newProvider(t, f, false, map[string]string{providers.RefreshTokenKey: "rt1"})
	if _, err := p.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(context.Background(), providers.RefreshTokenKey); got != "rt1" {
		t.Errorf("stored refresh token %q, want rt1 kept", got)
	}
}

func TestExpiryFromExpiresInDespiteClockSkew(t *testing.T) {
	// The IdP's clock is an hour behind: its JWT says exp one hour ago, but expires_in is
	// relative and is what counts.
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	jwt := seg(`{"alg":"none"}`) + "." + seg(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(-time.Hour).Unix())) + ".x"
	f := newFakeIdP(t)
	f.token = tokens(jwt, "rt2", 300)
	p, _ := newProvider(t, f, false, map[string]string{providers.RefreshTokenKey: "rt1"})
	c, err := p.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(c.ExpiresAt); d < 290*time.Second {
		t.Errorf("expires in %s, want about 300s from expires_in", d)
	}
}

func TestFetchFaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		token      func(http.ResponseWriter, *http.Request, int)
		needsLogin bool
		wantMsg    string
	}{
		{"invalid_grant", func(w http.ResponseWriter, _ *http.Request, _ int) { oauthError(w, 400, "invalid_grant") }, true, "authagent login work"},
		{"5xx html", func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(503)
			fmt.Fprint(w, "<html><body>down for maintenance</body></html>")
		}, false, "503"},
		{"html instead of json", func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html>login page</html>")
		}, false, "refresh the access token"},
		{"garbage json", func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":`)
		}, false, "refresh the access token"},
		{"timeout", func(w http.ResponseWriter, r *http.Request, _ int) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, false, "did not answer in time"},
		// A wrong client configuration: no retry helps until the user fixes it.
		{"invalid_client", func(w http.ResponseWriter, _ *http.Request, _ int) { oauthError(w, 401, "invalid_client") }, true, "check client_id"},
		{"invalid_scope", func(w http.ResponseWriter, _ *http.Request, _ int) { oauthError(w, 400, "invalid_scope") }, true, "fix scopes"},
		{"unsupported_grant_type", func(w http.ResponseWriter, _ *http.Request, _ int) { oauthError(w, 400, "unsupported_grant_type") }, true, "allow refresh tokens"},
		{"GitHub's dead refresh token", func(w http.ResponseWriter, _ *http.Request, _ int) { oauthError(w, 400, "bad_refresh_token") }, true, "authagent login work"},
		{"slow_down is transient", func(w http.ResponseWriter, _ *http.Request, _ int) { oauthError(w, 400, "slow_down") }, false, "slow_down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIdP(t)
			f.token = tc.token
			timeout := clientTimeout
			if tc.name == "timeout" { // a server that does not answer: a short wait for it
				timeout = 500 * time.Millisecond
			}
			p, s := newProviderTimeout(t, f, false, map[string]string{providers.RefreshTokenKey: "rt1"}, timeout)
			_, err := p.Fetch(context.Background())
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			if got := errors.Is(err, providers.ErrNeedsLogin); got != tc.needsLogin {
				t.Errorf("needs login = %v, want %v (%v)", got, tc.needsLogin, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "rt1") {
				t.Errorf("error leaks the refresh token: %q", err)
			}
			if got, _ := s.Get(context.Background(), providers.RefreshTokenKey); got != "rt1" {
				t.Errorf("a failed refresh changed the stored refresh token to %q", got)
			}
		})
	}
}

func TestFetchWithoutLogin(t *testing.T) {
	f := newFakeIdP(t)
	p, _ := newProvider(t, f, false, nil)
	_, err := p.Fetch(context.Background())
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent login work") {
		t.Errorf("got %v, want ErrNeedsLogin that says to log in", err)
	}
}

// failingSet is a store whose writes fail.
type failingSet struct{ *memSecrets }

func (failingSet) Set(context.Context, string, string) error { return errors.New("keyring locked") }

func TestRotatedTokenKeptWhenStoreFails(t *testing.T) {
	f := newFakeIdP(t)
	var seen []string
	f.token = func(w http.ResponseWriter, r *http.Request, n int) {
		seen = append(seen, r.Form.Get("refresh_token"))
		tokens("at", fmt.Sprintf("rt%d", n+1), 60)(w, r, n)
	}
	p, s := newProvider(t, f, false, map[string]string{providers.RefreshTokenKey: "rt1"})
	p.secrets = failingSet{s}
	// The access token is good, so it is returned, with a warning about the refresh token.
	if c, err := p.Fetch(context.Background()); err != nil || c.Token != "at" || !strings.Contains(c.Warning, "kept in memory") {
		t.Fatalf("got %+v, %v; want the access token with a warning that the refresh token is kept in memory", c, err)
	}
	p.secrets = s
	if _, err := p.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"rt1", "rt2"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("refresh tokens presented %v, want %v (the rotated one, never rt1 twice)", seen, want)
	}
	if got, _ := s.Get(context.Background(), providers.RefreshTokenKey); got != "rt3" {
		t.Errorf("stored %q, want rt3", got)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		token   func(http.ResponseWriter, *http.Request, int)
		device  string
		wantErr string
		minGap  time.Duration // between the last two polls
	}{
		{name: "pending then approved", token: func(w http.ResponseWriter, r *http.Request, n int) {
			if n < 3 {
				oauthError(w, 400, "authorization_pending")
				return
			}
			tokens("at", "rt", 60)(w, r, n)
		}},
		{name: "slow_down adds 5s", minGap: 6 * time.Second, token: func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				oauthError(w, 400, "slow_down")
				return
			}
			tokens("at", "rt", 60)(w, r, n)
		}},
		{name: "access_denied", wantErr: "denied", token: func(w http.ResponseWriter, _ *http.Request, _ int) { oauthError(w, 400, "access_denied") }},
		{name: "expired_token", wantErr: "expired", token: func(w http.ResponseWriter, _ *http.Request, _ int) { oauthError(w, 400, "expired_token") }},
		{name: "code expires while pending", wantErr: "expired before the login was completed",
			device: `{"device_code":"dc","user_code":"X","verification_uri":"https://idp.test/d","expires_in":2,"interval":1}`,
			token:  func(w http.ResponseWriter, _ *http.Request, _ int) { oauthError(w, 400, "authorization_pending") }},
		{name: "no refresh token", wantErr: "offline_access", token: tokens("at", "", 60)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeIdP(t)
			f.token = tc.token
			if tc.device != "" {
				f.device = tc.device
			}
			p, s := newProvider(t, f, true, nil)
			var shown providers.Challenge
			c, err := p.Login(context.Background(), func(ch providers.Challenge) { shown = ch })
			if shown.UserCode == "" || shown.VerificationURI == "" {
				t.Errorf("challenge not shown: %+v", shown)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error mentioning %q", err, tc.wantErr)
				}
				if _, err := s.Get(context.Background(), providers.RefreshTokenKey); err == nil {
					t.Error("a failed login stored a refresh token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Token != "at" {
				t.Errorf("token %q", c.Token)
			}
			if got, _ := s.Get(context.Background(), providers.RefreshTokenKey); got != "rt" {
				t.Errorf("stored refresh token %q, want rt", got)
			}
			if tc.minGap > 0 {
				f.mu.Lock()
				gap := f.polls[len(f.polls)-1].Sub(f.polls[len(f.polls)-2])
				f.mu.Unlock()
				if gap < tc.minGap-200*time.Millisecond {
					t.Errorf("poll after slow_down came %s after the previous one, want at least %s", gap, tc.minGap)
				}
			}
		})
	}
}

func TestLoginCancelled(t *testing.T) {
	t.Parallel()
	f := newFakeIdP(t)
	f.token = func(w http.ResponseWriter, _ *http.Request, _ int) { oauthError(w, 400, "authorization_pending") }
	p, _ := newProvider(t, f, false, nil)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := p.Login(ctx, func(providers.Challenge) { cancel() })
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("got %v, want login cancelled", err)
	}
}

func TestLogoutRevokes(t *testing.T) {
	f := newFakeIdP(t)
	p, s := newProvider(t, f, true, map[string]string{providers.RefreshTokenKey: "rt1", providers.IDTokenKey: "id"})
	if err := p.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.revoked) != "[rt1]" {
		t.Errorf("revoked %v, want [rt1]", f.revoked)
	}
	if len(s.M) != 0 {
		t.Errorf("secrets left after logout: %v", s.M)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     providers.ProfileConfig
		wantKey string
	}{
		{"ok issuer", providers.ProfileConfig{Issuer: "https://login.example.com", ClientID: "c"}, ""},
		{"ok loopback http", providers.ProfileConfig{Issuer: "http://127.0.0.1:8080", ClientID: "c"}, ""},
		{"ok explicit", providers.ProfileConfig{DeviceAuthURL: "https://x/d", TokenURL: "https://x/t", ClientID: "c"}, ""},
		{"http remote", providers.ProfileConfig{Issuer: "http://login.example.com", ClientID: "c"}, "issuer"},
		{"no client", providers.ProfileConfig{Issuer: "https://login.example.com"}, "client_id"},
		{"nothing", providers.ProfileConfig{ClientID: "c"}, "issuer"},
		{"both", providers.ProfileConfig{Issuer: "https://a", TokenURL: "https://a/t", ClientID: "c"}, "issuer"},
		{"apikey key", providers.ProfileConfig{Issuer: "https://a", ClientID: "c", KeyID: "k"}, "key_id"},
		{"scope with a space", providers.ProfileConfig{Issuer: "https://a", ClientID: "c", Scopes: []string{"openid profile"}}, "scopes"},
		{"empty scope", providers.ProfileConfig{Issuer: "https://a", ClientID: "c", Scopes: []string{""}}, "scopes"},
		{"client id with a line break", providers.ProfileConfig{Issuer: "https://a", ClientID: "c\r\nX: y"}, "client_id"},
		{"audience with an escape", providers.ProfileConfig{Issuer: "https://a", ClientID: "c", Audience: "api\x1b[2J"}, "audience"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Provider = Name
			_, err := New(&cfg, providers.Env{Secrets: &memSecrets{M: map[string]string{}}})
			var ce *providers.ConfigError
			switch {
			case tc.wantKey == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.wantKey != "" && (!errors.As(err, &ce) || ce.Key != tc.wantKey):
				t.Errorf("got %v, want a ConfigError for %s", err, tc.wantKey)
			}
		})
	}
}

func TestCheckDeviceAuth(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ok := func() *oauth2.DeviceAuthResponse {
		return &oauth2.DeviceAuthResponse{DeviceCode: "dc", UserCode: "ABCD", VerificationURI: "https://idp.test/d",
			Expiry: now.Add(10 * time.Minute), Interval: 3}
	}
	for _, tc := range []struct {
		name         string
		edit         func(*oauth2.DeviceAuthResponse)
		wantErr      string
		wantExpiry   time.Time
		wantInterval int64
	}{
		{name: "complete", edit: func(*oauth2.DeviceAuthResponse) {}, wantExpiry: now.Add(10 * time.Minute), wantInterval: 3},
		{name: "no expires_in", edit: func(d *oauth2.DeviceAuthResponse) { d.Expiry = time.Time{} }, wantExpiry: now.Add(defaultCodeLife), wantInterval: 3},
		{name: "expires_in in the past", edit: func(d *oauth2.DeviceAuthResponse) { d.Expiry = now.Add(-time.Minute) }, wantExpiry: now.Add(defaultCodeLife), wantInterval: 3},
		{name: "no interval", edit: func(d *oauth2.DeviceAuthResponse) { d.Interval = 0 }, wantExpiry: now.Add(10 * time.Minute), wantInterval: 5},
		{name: "negative interval", edit: func(d *oauth2.DeviceAuthResponse) { d.Interval = -2 }, wantExpiry: now.Add(10 * time.Minute), wantInterval: 5},
		{name: "interval that overflows to a negative duration", edit: func(d *oauth2.DeviceAuthResponse) { d.Interval = 9223372037 }, wantExpiry: now.Add(10 * time.Minute), wantInterval: maxPollInterval},
		{name: "interval that wraps to 512ns", edit: func(d *oauth2.DeviceAuthResponse) { d.Interval = 20211507185753197 }, wantExpiry: now.Add(10 * time.Minute), wantInterval: maxPollInterval},
		{name: "empty answer", edit: func(d *oauth2.DeviceAuthResponse) { *d = oauth2.DeviceAuthResponse{} }, wantErr: "without device_code, user_code, verification_uri"},
		{name: "no user code", edit: func(d *oauth2.DeviceAuthResponse) { d.UserCode = "" }, wantErr: "without user_code"},
		{name: "user code with escapes", edit: func(d *oauth2.DeviceAuthResponse) { d.UserCode = "AB\x1b[2J" }, wantErr: "control characters"},
		{name: "javascript URI", edit: func(d *oauth2.DeviceAuthResponse) { d.VerificationURIComplete = "javascript:alert(1)" }, wantErr: "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			da := ok()
			tc.edit(da)
			err := checkDeviceAuth(da, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !da.Expiry.Equal(tc.wantExpiry) || da.Interval != tc.wantInterval {
				t.Errorf("expiry %s, interval %d; want %s, %d", da.Expiry, da.Interval, tc.wantExpiry, tc.wantInterval)
			}
		})
	}
}

// A device authorization answer without expires_in gives a challenge that expires in the
// default lifetime, never in year 1.
func TestLoginChallengeWithoutExpiresIn(t *testing.T) {
	t.Parallel()
	f := newFakeIdP(t)
	f.device = `{"device_code":"dc","user_code":"ABCD","verification_uri":"https://idp.test/d","interval":1}`
	f.token = tokens("at", "rt", 60)
	p, _ := newProvider(t, f, false, nil)
	var shown providers.Challenge
	if _, err := p.Login(context.Background(), func(c providers.Challenge) { shown = c }); err != nil {
		t.Fatal(err)
	}
	if left := time.Until(shown.ExpiresAt); left < defaultCodeLife-time.Minute || left > defaultCodeLife {
		t.Errorf("challenge expires_at %s (in %s), want about %s from now", shown.ExpiresAt, left, defaultCodeLife)
	}
}

// Errors sent with a 2xx status are errors, at every endpoint (through providers.Transport,
// which the agent puts under every provider).
func TestErrorObjectsWith200(t *testing.T) {
	t.Parallel()
	f := newFakeIdP(t)
	f.device = `{"error":"unauthorized_client","error_description":"device flow disabled"}`
	f.token = func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}`)
	}
	cfg := &providers.ProfileConfig{Provider: Name, ClientID: "cli", DeviceAuthURL: f.URL + "/device", TokenURL: f.URL + "/token", RevocationURL: f.URL + "/revoke-200-error"}
	s := &memSecrets{M: map[string]string{providers.RefreshTokenKey: "rt-1"}}
	hc := &http.Client{Transport: &providers.Transport{}, Timeout: clientTimeout}
	prov, err := New(cfg, providers.Env{Name: "work", Secrets: s, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	p := prov.(*Provider)

	_, err = p.Login(context.Background(), func(providers.Challenge) { t.Error("a challenge was shown for an error answer") })
	if err == nil || !strings.Contains(err.Error(), "unauthorized_client") {
		t.Errorf("device endpoint 200 + error: got %v, want the error code", err)
	}
	_, err = p.Fetch(context.Background())
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "bad_refresh_token") {
		t.Errorf("token endpoint 200 + bad_refresh_token: got %v, want ErrNeedsLogin naming the code", err)
	}
}

// An identity provider that echoes the refresh token or client secret in its
// error_description or status line does not get them into the error (and so last_error,
// the log, list and events).
func TestEchoedSecretsScrubbed(t *testing.T) {
	const rt, cs = "rt-canary-1234", "cs-canary-5678"
	for name, answer := range map[string]func(w http.ResponseWriter, r *http.Request, _ int){
		"error_description": func(w http.ResponseWriter, r *http.Request, _ int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":"invalid_grant","error_description":"refresh_token %s for client secret %s is revoked"}`, r.Form.Get("refresh_token"), cs)
		},
		"other code": func(w http.ResponseWriter, r *http.Request, _ int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":"server_error","error_description":"could not refresh %s"}`, r.Form.Get("refresh_token"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeIdP(t)
			f.token = answer
			p, _ := newProvider(t, f, false, map[string]string{providers.RefreshTokenKey: rt, providers.SecretKey: cs})
			_, err := p.Fetch(context.Background())
			if err == nil || strings.Contains(err.Error(), rt) || strings.Contains(err.Error(), cs) || !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("got %v; want an error with the secrets redacted", err)
			}
		})
	}
}

// A profile redefined for another server or client never sends the stored refresh token
// there: not to its token endpoint, not to its revocation endpoint.
func TestGrantOfAnotherServerNotSent(t *testing.T) {
	a, b := newFakeIdP(t), newFakeIdP(t)
	a.token = tokens("at-a", "rt-from-a", 3600)
	var toB []string
	b.token = func(w http.ResponseWriter, r *http.Request, n int) {
		toB = append(toB, r.Form.Get("refresh_token"))
		tokens("at-b", "rt-from-b", 3600)(w, r, n)
	}
	pa, s := newProvider(t, a, false, map[string]string{providers.RefreshTokenKey: "rt-0"})
	if _, err := pa.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The same name, now pointing at server b (as `authagent add` or a hand edit would).
	pb, err := New(&providers.ProfileConfig{Provider: Name, ClientID: "cli", DeviceAuthURL: b.URL + "/device", TokenURL: b.URL + "/token", RevocationURL: b.URL + "/revoke"},
		providers.Env{Name: "work", Secrets: s, HTTPClient: &http.Client{Timeout: clientTimeout}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pb.(*Provider).Fetch(context.Background())
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "another identity provider") {
		t.Fatalf("fetch after the redefinition: %v; want needs_login saying the login belongs to another server", err)
	}
	if err := pb.(*Provider).Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	revokedAtB := b.revoked
	b.mu.Unlock()
	if len(toB) != 0 || len(revokedAtB) != 0 {
		t.Errorf("server b received refresh tokens %q and revocations %q; want none", toB, revokedAtB)
	}
	if _, err := s.Get(context.Background(), providers.RefreshTokenKey); !errors.Is(err, providers.ErrSecretNotFound) {
		t.Errorf("a's refresh token is still stored: %v", err)
	}
	// The same server and client again: the grant is used as before.
	pa2, _ := newProvider(t, a, false, nil)
	pa2.secrets = s
	s.Set(context.Background(), providers.RefreshTokenKey, "rt-again")
	s.Set(context.Background(), providers.GrantKey, pa2.grantOwner())
	if _, err := pa2.Fetch(context.Background()); err != nil {
		t.Errorf("the grant of the same server: %v", err)
	}
}
