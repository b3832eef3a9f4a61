package devicecode

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authagent/authagent/providers"
)

// oidcFake is a hand-written OpenID provider for fault injection in the browser login and
// ID tokens: discovery, keys, and a token endpoint whose answers the test shapes. The
// test plays the browser: it reads the authorization URL from the challenge and lands on
// its redirect_uri itself.
type oidcFake struct {
	*httptest.Server
	key   *rsa.PrivateKey
	other *rsa.PrivateKey // signs ID tokens that must not verify

	mu        sync.Mutex
	forms     []url.Values // token requests
	challenge string       // the code_challenge of the login under way
	nonce     string       // the nonce of the login under way
	answer    func(f *oidcFake, form url.Values) map[string]any
}

func newOIDCFake(t *testing.T) *oidcFake {
	t.Helper()
	f := &oidcFake{}
	var err error
	if f.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                f.URL,
			"authorization_endpoint":                f.URL + "/authorize",
			"device_authorization_endpoint":         f.URL + "/device",
			"token_endpoint":                        f.URL + "/token",
			"revocation_endpoint":                   f.URL + "/revoke",
			"jwks_uri":                              f.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		f.forms = append(f.forms, r.PostForm)
		answer := f.answer
		f.mu.Unlock()
		body := answer(f, r.PostForm)
		w.Header().Set("Content-Type", "application/json")
		if _, bad := body["error"]; bad {
			w.WriteHeader(http.StatusBadRequest)
		}
		json.NewEncoder(w).Encode(body)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// idToken signs an ID token for client "cli" that expires after life; claims override.
func (f *oidcFake) idToken(t testing.TB, key *rsa.PrivateKey, life time.Duration, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := map[string]any{"iss": f.URL, "aud": "cli", "sub": "alice", "iat": now.Unix(), "exp": now.Add(life).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	raw, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (f *oidcFake) tokenForms() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.forms...)
}

func newOIDCProvider(t *testing.T, f *oidcFake, cfg providers.ProfileConfig, secrets map[string]string) (*Provider, *memSecrets) {
	t.Helper()
	cfg.Provider, cfg.Issuer, cfg.ClientID = OIDCName, f.URL, "cli"
	s := &memSecrets{M: secrets}
	if s.M == nil {
		s.M = map[string]string{}
	}
	p, err := New(&cfg, providers.Env{Name: "work", Secrets: s, HTTPClient: &http.Client{Timeout: clientTimeout}})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Provider), s
}

// browse plays the user at the browser: it opens the start page the login shows, which
// sends it on to the authorization request, and lands on its redirect URI with what land
// returns for the request's query (nil: no visit at all), with the start page's cookie as a
// browser would. The page's status and text come back on the channel.
type page struct {
	status int
	body   string
	err    error
}

func browse(t *testing.T, land func(auth url.Values) url.Values) (func(providers.Challenge), <-chan page, <-chan url.Values) {
	pages := make(chan page, 1)
	auths := make(chan url.Values, 1)
	return func(ch providers.Challenge) {
		if ch.Flow != providers.FlowBrowser || !strings.HasPrefix(ch.AuthURL, "http://127.0.0.1:") || !strings.HasSuffix(ch.AuthURL, "/start") ||
			ch.VerificationURI != ch.AuthURL || ch.UserCode != "" {
			t.Errorf("browser challenge %+v; want the loopback start page", ch)
		}
		b := newBrowser()
		u, err := b.start(ch.AuthURL)
		if err != nil {
			t.Error(err)
			return
		}
		auths <- u.Query()
		q := land(u.Query())
		if q == nil {
			return
		}
		go func() {
			pages <- b.visit(u.Query().Get("redirect_uri") + "?" + q.Encode())
		}()
	}, pages, auths
}

// browser is an HTTP client that keeps cookies and does not follow redirects.
type browser struct{ *http.Client }

func newBrowser() browser {
	jar, _ := cookiejar.New(nil)
	return browser{&http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// start opens a login's start page and returns the authorization request it sends the
// browser to.
func (b browser) start(startURL string) (*url.URL, error) {
	resp, err := b.Get(startURL)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("start page: %s, want 302", resp.Status)
	}
	return url.Parse(resp.Header.Get("Location"))
}

func (b browser) visit(u string) page {
	resp, err := b.Get(u)
	if err != nil {
		return page{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(body)}
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// goodAnswer is a token endpoint that checks the code and the PKCE verifier against the
// login's challenge and answers with tokens and an ID token carrying the login's nonce.
func goodAnswer(t *testing.T) func(f *oidcFake, form url.Values) map[string]any {
	return func(f *oidcFake, form url.Values) map[string]any {
		switch form.Get("grant_type") {
		case "authorization_code":
			f.mu.Lock()
			challenge, nonce := f.challenge, f.nonce
			f.mu.Unlock()
			if form.Get("code") != "the-code" || s256(form.Get("code_verifier")) != challenge {
				return map[string]any{"error": "invalid_grant", "error_description": "code or PKCE verifier wrong"}
			}
			return map[string]any{"access_token": "at1", "refresh_token": "rt1", "token_type": "Bearer", "expires_in": 3600,
				"id_token": f.idToken(t, f.key, time.Hour, map[string]any{"nonce": nonce})}
		case "refresh_token":
			return map[string]any{"access_token": "at2", "refresh_token": "rt2", "token_type": "Bearer", "expires_in": 3600}
		}
		return map[string]any{"error": "unsupported_grant_type"}
	}
}

func TestChooseFlow(t *testing.T) {
	bad := errors.New(`the discovered authorization_endpoint "http://idp.corp.example/authorize": use https`)
	badDevice := errors.New(`the discovered device_authorization_endpoint "https://idp/dev ice" is not a well-formed URL`)
	for _, tc := range []struct {
		requested, configured string
		display               bool
		auth, device          error // nil: usable; errNoEndpoint: none
		want, wantErr         string
	}{
		{"", "auto", true, nil, nil, "browser", ""},
		{"", "auto", false, nil, nil, "device", ""},                    // over SSH
		{"", "auto", false, nil, errNoEndpoint, "browser", ""},         // no device flow: the URL by hand
		{"", "auto", true, errNoEndpoint, nil, "device", ""},           // no authorization endpoint
		{"", "auto", true, bad, nil, "device", ""},                     // a bad one is as good as none
		{"", "auto", true, nil, badDevice, "browser", ""},              // likewise for the device flow
		{"", "auto", false, nil, badDevice, "browser", ""},             // …also without a display
		{"", "auto", true, bad, errNoEndpoint, "", "idp.corp.example"}, // says why there is no login
		{"", "auto", true, bad, badDevice, "", "dev ice"},              // both reasons
		{"", "auto", false, errNoEndpoint, errNoEndpoint, "", "neither"},
		{"", "device", true, bad, nil, "device", ""}, // the device flow never looks at the authorization endpoint
		{"", "device", true, nil, nil, "device", ""},
		{"", "browser", false, nil, nil, "browser", ""},
		{"", "browser", true, bad, nil, "", "idp.corp.example"},
		{"browser", "device", false, nil, nil, "browser", ""}, // --browser wins
		{"device", "browser", true, nil, nil, "device", ""},   // --device wins
		{"browser", "auto", true, errNoEndpoint, nil, "", "--device"},
		{"device", "auto", true, nil, errNoEndpoint, "", "--browser"},
		{"device", "auto", true, nil, badDevice, "", "dev ice"},
		{"", "device", true, nil, errNoEndpoint, "", "--browser"},
		{"keyboard", "auto", true, nil, nil, "", "unknown login flow"},
	} {
		name := fmt.Sprintf("%s/%s/display=%v/auth=%v/device=%v", tc.requested, tc.configured, tc.display, tc.auth, tc.device)
		t.Run(name, func(t *testing.T) {
			got, err := chooseFlow("work", tc.requested, tc.configured, tc.display, tc.auth, tc.device)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %q, %v; want an error saying %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// The default login key: "device" under the kind's first name (as before the browser
// login), "auto" under "oidc"; and the keys of the browser login are checked.
func TestLoginKeys(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       providers.ProfileConfig
		wantLogin string
		wantKey   string
	}{
		{"devicecode default", providers.ProfileConfig{Provider: Name, Issuer: "https://a"}, "device", ""},
		{"oidc default", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a"}, "auto", ""},
		{"explicit browser", providers.ProfileConfig{Provider: OIDCName, AuthURL: "https://a/auth", TokenURL: "https://a/t", Login: "browser"}, "browser", ""},
		{"explicit auto, auth only", providers.ProfileConfig{Provider: OIDCName, AuthURL: "https://a/auth", TokenURL: "https://a/t"}, "auto", ""},
		{"devicecode default without device endpoint", providers.ProfileConfig{Provider: Name, AuthURL: "https://a/auth", TokenURL: "https://a/t"}, "", "login"},
		{"browser without auth_url", providers.ProfileConfig{Provider: OIDCName, DeviceAuthURL: "https://a/d", TokenURL: "https://a/t", Login: "browser"}, "", "login"},
		{"auth_url with issuer", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", AuthURL: "https://a/auth"}, "", "issuer"},
		{"http auth_url", providers.ProfileConfig{Provider: OIDCName, AuthURL: "http://a.example/auth", TokenURL: "https://a/t"}, "", "auth_url"},
		{"unknown login", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", Login: "keyboard"}, "", "login"},
		{"ports", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", RedirectPort: providers.Ports{8000, 0, 18000}}, "auto", ""},
		{"port out of range", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", RedirectPort: providers.Ports{70000}}, "", "redirect_port"},
		{"path", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", RedirectPath: "/oauth2/callback"}, "auto", ""},
		{"relative path", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", RedirectPath: "callback"}, "", "redirect_path"},
		{"path with query", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", RedirectPath: "/cb?x=1"}, "", "redirect_path"},
		{"timeout", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", LoginTimeout: providers.Duration(time.Minute)}, "auto", ""},
		{"timeout too long", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", LoginTimeout: providers.Duration(time.Hour)}, "", "login_timeout"},
		{"kube id_token", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", KubeToken: "id_token"}, "auto", ""},
		{"kube id_token without issuer", providers.ProfileConfig{Provider: OIDCName, DeviceAuthURL: "https://a/d", TokenURL: "https://a/t", KubeToken: "id_token"}, "", "kube_token"},
		{"kube id_token without openid", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", Scopes: []string{"offline_access"}, KubeToken: "id_token"}, "", "kube_token"},
		{"kube other", providers.ProfileConfig{Provider: OIDCName, Issuer: "https://a", KubeToken: "refresh_token"}, "", "kube_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.ClientID = "c"
			p, err := New(&cfg, providers.Env{Secrets: &memSecrets{}})
			var ce *providers.ConfigError
			switch {
			case tc.wantKey != "":
				if !errors.As(err, &ce) || ce.Key != tc.wantKey {
					t.Errorf("got %v, want a ConfigError for %s", err, tc.wantKey)
				}
			case err != nil:
				t.Errorf("unexpected error %v", err)
			case p.(*Provider).login != tc.wantLogin:
				t.Errorf("login %q, want %q", p.(*Provider).login, tc.wantLogin)
			}
		})
	}
}

// A browser login: the authorization request carries PKCE S256, state and nonce (and the
// profile's audience); the redirect's code is exchanged with the verifier at the redirect
// URI the request named; the ID token is verified and served; the grant is stored; the
// tab says it worked.
func TestBrowserLogin(t *testing.T) {
	t.Parallel()
	f := newOIDCFake(t)
	f.answer = goodAnswer(t)
	p, s := newOIDCProvider(t, f, providers.ProfileConfig{Audience: "https://api.example.com", RedirectPath: "/cb"}, nil)
	show, pages, auths := browse(t, func(auth url.Values) url.Values {
		f.mu.Lock()
		f.challenge, f.nonce = auth.Get("code_challenge"), auth.Get("nonce")
		f.mu.Unlock()
		return url.Values{"code": {"the-code"}, "state": {auth.Get("state")}, "iss": {f.URL}}
	})
	cred, err := p.LoginWith(context.Background(), providers.LoginOptions{Display: true}, show)
	if err != nil {
		t.Fatal(err)
	}
	auth := <-auths
	for k, want := range map[string]string{"response_type": "code", "client_id": "cli", "code_challenge_method": "S256", "audience": "https://api.example.com"} {
		if auth.Get(k) != want {
			t.Errorf("authorization request %s = %q, want %q", k, auth.Get(k), want)
		}
	}
	if len(auth.Get("state")) < 20 || len(auth.Get("nonce")) < 20 || auth.Get("state") == auth.Get("nonce") {
		t.Errorf("state %q, nonce %q: want two random values", auth.Get("state"), auth.Get("nonce"))
	}
	if ru := auth.Get("redirect_uri"); !strings.HasPrefix(ru, "http://127.0.0.1:") || !strings.HasSuffix(ru, "/cb") {
		t.Errorf("redirect_uri %q", ru)
	}
	forms := f.tokenForms()
	if len(forms) != 1 || forms[0].Get("redirect_uri") != auth.Get("redirect_uri") || forms[0].Get("audience") != "https://api.example.com" {
		t.Errorf("token requests %v", forms)
	}
	if cred.Token != "at1" || cred.IDToken == "" || cred.IDTokenExpiresAt.Before(time.Now().Add(50*time.Minute)) || cred.IDTokenError != "" {
		t.Errorf("credential %+v", cred)
	}
	if got, _ := s.Get(context.Background(), providers.RefreshTokenKey); got != "rt1" {
		t.Errorf("stored refresh token %q", got)
	}
	if got, _ := s.Get(context.Background(), providers.IDTokenKey); got != cred.IDToken {
		t.Errorf("stored ID token is not the one served")
	}
	pg := <-pages
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "Logged in") {
		t.Errorf("page: %d %s", pg.status, pg.body)
	}
	// The port is closed once the login returned.
	if _, err := http.Get(auth.Get("redirect_uri")); err == nil {
		t.Error("the redirect port still answers after the login")
	}

	// A refresh without an ID token keeps the one served, also after a restart (a new
	// provider on the same store, which verifies the stored one again).
	c2, err := p.Fetch(context.Background())
	if err != nil || c2.Token != "at2" || c2.IDToken != cred.IDToken {
		t.Fatalf("refresh without an ID token: %+v, %v; want the old ID token kept", c2, err)
	}
	restarted, _ := newOIDCProvider(t, f, providers.ProfileConfig{}, s.M)
	c3, err := restarted.Fetch(context.Background())
	if err != nil || c3.IDToken != cred.IDToken {
		t.Fatalf("refresh after a restart: %+v, %v; want the stored ID token", c3, err)
	}
	// A refresh whose ID token does not verify keeps the old one and says why.
	f.mu.Lock()
	f.answer = func(f *oidcFake, form url.Values) map[string]any {
		return map[string]any{"access_token": "at3", "refresh_token": "rt3", "token_type": "Bearer", "expires_in": 3600,
			"id_token": f.idToken(t, f.other, time.Hour, nil)}
	}
	f.mu.Unlock()
	c4, err := restarted.Fetch(context.Background())
	if err != nil || c4.Token != "at3" || c4.IDToken != cred.IDToken || !strings.Contains(c4.IDTokenError, "failed verification") {
		t.Errorf("refresh with a forged ID token: %+v, %v", c4, err)
	}
	if restarted.IDTokens() != nil || !strings.Contains(fmt.Sprint((&Provider{name: "x", cfg: providers.ProfileConfig{}}).IDTokens()), "no issuer") {
		t.Errorf("IDTokens: %v", restarted.IDTokens())
	}

	// Logout forgets the ID token too: a refresh after a new login never serves it.
	if err := restarted.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), providers.IDTokenKey); !errors.Is(err, providers.ErrSecretNotFound) {
		t.Errorf("ID token still stored after logout: %v", err)
	}
}

// A browser login ends without storing anything when the redirect or the answer is
// wrong, and the tab says why.
func TestBrowserLoginRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		land     func(f *oidcFake, auth url.Values) url.Values
		claims   map[string]any // of the ID token; "nonce": "" for the login's
		wantErr  string
		exchange bool // a code exchange is expected
	}{
		{name: "denied", wantErr: "denied at the identity provider", land: func(f *oidcFake, a url.Values) url.Values {
			return url.Values{"error": {"access_denied"}, "error_description": {"the user said no\r\nX-Injected: 1"}, "state": {a.Get("state")}}
		}},
		{name: "client may not", wantErr: "allow the authorization code flow", land: func(f *oidcFake, a url.Values) url.Values {
			return url.Values{"error": {"unauthorized_client"}, "state": {a.Get("state")}}
		}},
		{name: "other issuer", wantErr: "RFC 9207", land: func(f *oidcFake, a url.Values) url.Values {
			return url.Values{"code": {"the-code"}, "state": {a.Get("state")}, "iss": {"https://evil.example"}}
		}},
		{name: "wrong nonce", wantErr: "nonce", exchange: true, claims: map[string]any{"nonce": "not-the-login's"}},
		{name: "other audience", wantErr: "audience", exchange: true, claims: map[string]any{"aud": "someone-else"}},
		{name: "other issuer in the ID token", wantErr: "different provider", exchange: true, claims: map[string]any{"iss": "https://evil.example"}},
		{name: "ID token for two audiences without azp", wantErr: "azp", exchange: true, claims: map[string]any{"aud": []string{"other-client", "cli"}}},
		{name: "ID token for another authorized party", wantErr: "azp", exchange: true, claims: map[string]any{"aud": []string{"other-client", "cli"}, "azp": "other-client"}},
		{name: "issuer with a slash more (RFC 9207: exact)", wantErr: "RFC 9207", land: func(f *oidcFake, a url.Values) url.Values {
			return url.Values{"code": {"the-code"}, "state": {a.Get("state")}, "iss": {f.URL + "/"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newOIDCFake(t)
			f.answer = func(f *oidcFake, form url.Values) map[string]any {
				f.mu.Lock()
				claims := map[string]any{"nonce": f.nonce}
				f.mu.Unlock()
				for k, v := range tc.claims {
					claims[k] = v
				}
				return map[string]any{"access_token": "at1", "refresh_token": "rt1", "token_type": "Bearer", "expires_in": 3600,
					"id_token": f.idToken(t, f.key, time.Hour, claims)}
			}
			p, s := newOIDCProvider(t, f, providers.ProfileConfig{}, nil)
			show, pages, _ := browse(t, func(auth url.Values) url.Values {
				f.mu.Lock()
				f.nonce = auth.Get("nonce")
				f.mu.Unlock()
				if tc.land != nil {
					return tc.land(f, auth)
				}
				return url.Values{"code": {"the-code"}, "state": {auth.Get("state")}}
			})
			_, err := p.LoginWith(context.Background(), providers.LoginOptions{Flow: providers.FlowBrowser}, show)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error saying %q", err, tc.wantErr)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("the error holds a line break from the redirect: %q", err)
			}
			if got := len(f.tokenForms()); got != map[bool]int{true: 1, false: 0}[tc.exchange] {
				t.Errorf("%d code exchanges", got)
			}
			if s.Len() != 0 {
				t.Errorf("a refused login stored %v", s.M)
			}
			pg := <-pages
			if pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "Login failed") {
				t.Errorf("page: %d %s", pg.status, pg.body)
			}
		})
	}
}

// A browser login nobody completes ends at login_timeout and closes its port; one that is
// cancelled ends at once; one whose fixed port is taken says so before anything else.
func TestBrowserLoginEnds(t *testing.T) {
	t.Parallel()
	f := newOIDCFake(t)
	f.answer = goodAnswer(t)
	p, _ := newOIDCProvider(t, f, providers.ProfileConfig{LoginTimeout: providers.Duration(time.Second)}, nil)
	show, _, auths := browse(t, func(url.Values) url.Values { return nil })
	_, err := p.LoginWith(context.Background(), providers.LoginOptions{Flow: providers.FlowBrowser}, show)
	if err == nil || !strings.Contains(err.Error(), "no redirect came back from the browser within 1s") || !strings.Contains(err.Error(), "authagent login work --device") {
		t.Errorf("timeout: %v", err)
	}
	if _, err := http.Get((<-auths).Get("redirect_uri")); err == nil {
		t.Error("the port still answers after the timeout")
	}

	ctx, cancel := context.WithCancel(context.Background())
	_, err = p.LoginWith(ctx, providers.LoginOptions{Flow: providers.FlowBrowser}, func(providers.Challenge) { cancel() })
	if err == nil || err.Error() != "login cancelled" {
		t.Errorf("cancelled: %v", err)
	}

	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	fixed, _ := newOIDCProvider(t, f, providers.ProfileConfig{RedirectPort: providers.Ports{port}}, nil)
	_, err = fixed.LoginWith(context.Background(), providers.LoginOptions{Flow: providers.FlowBrowser}, func(providers.Challenge) {
		t.Error("a challenge was shown for a login that cannot listen")
	})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(port)) || !strings.Contains(err.Error(), "redirect_port") {
		t.Errorf("port taken: %v", err)
	}
}

// A device login of an OpenID profile verifies its ID token too (without a nonce); one
// that does not verify is not served, and the login still works.
func TestDeviceLoginIDToken(t *testing.T) {
	t.Parallel()
	f := newOIDCFake(t)
	f.Config.Handler.(*http.ServeMux).HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"device_code":"dc","user_code":"ABCD","verification_uri":"https://idp.test/device","expires_in":600,"interval":1}`)
	})
	var forged atomic.Bool
	f.answer = func(f *oidcFake, form url.Values) map[string]any {
		key := f.key
		if forged.Load() {
			key = f.other
		}
		return map[string]any{"access_token": "at", "refresh_token": "rt", "token_type": "Bearer", "expires_in": 3600,
			"id_token": f.idToken(t, key, time.Hour, nil)}
	}
	p, s := newOIDCProvider(t, f, providers.ProfileConfig{}, nil)
	var shown providers.Challenge
	cred, err := p.LoginWith(context.Background(), providers.LoginOptions{}, func(c providers.Challenge) { shown = c })
	if err != nil || shown.Flow != providers.FlowDevice || cred.IDToken == "" {
		t.Fatalf("device login: %+v, %v (challenge %+v)", cred, err, shown)
	}
	forged.Store(true)
	cred, err = p.LoginWith(context.Background(), providers.LoginOptions{Flow: providers.FlowDevice}, func(providers.Challenge) {})
	if err != nil || cred.IDToken != "" || !strings.Contains(cred.IDTokenError, "failed verification") {
		t.Fatalf("device login with a forged ID token: %+v, %v", cred, err)
	}
	if _, err := s.Get(context.Background(), providers.IDTokenKey); err == nil {
		t.Error("the previous login's ID token is still stored after a login without a good one")
	}
}
