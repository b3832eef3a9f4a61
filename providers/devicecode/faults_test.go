package devicecode

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authagent/authagent/providers"
)

// loginWithClaims runs a browser login whose ID token has the login's nonce and claims.
func loginWithClaims(t *testing.T, f *oidcFake, p *Provider, ctx context.Context, claims map[string]any) (*providers.Credential, error) {
	t.Helper()
	f.mu.Lock()
	f.answer = func(f *oidcFake, form url.Values) map[string]any {
		f.mu.Lock()
		c := map[string]any{"nonce": f.nonce}
		f.mu.Unlock()
		for k, v := range claims {
			c[k] = v
		}
		return map[string]any{"access_token": "at1", "refresh_token": "rt1", "token_type": "Bearer", "expires_in": 3600,
			"id_token": f.idToken(t, f.key, time.Hour, c)}
	}
	f.mu.Unlock()
	show, pages, _ := browse(t, func(auth url.Values) url.Values {
		f.mu.Lock()
		f.nonce = auth.Get("nonce")
		f.mu.Unlock()
		return url.Values{"code": {"the-code"}, "state": {auth.Get("state")}}
	})
	c, err := p.LoginWith(ctx, providers.LoginOptions{Flow: providers.FlowBrowser}, show)
	<-pages
	return c, err
}

func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// A second browser at the login's start page (another program read its address) ends the
// login: no code is exchanged, nothing is stored, and the error says what happened and
// what to do.
func TestBrowserLoginStartReused(t *testing.T) {
	t.Parallel()
	f := newOIDCFake(t)
	f.answer = goodAnswer(t)
	p, s := newOIDCProvider(t, f, providers.ProfileConfig{}, nil)
	_, err := p.LoginWith(context.Background(), providers.LoginOptions{Flow: providers.FlowBrowser}, func(ch providers.Challenge) {
		if strings.Contains(ch.AuthURL, "state=") || strings.Contains(ch.AuthURL, "code_challenge") {
			t.Errorf("the address to open holds the authorization request: %s", ch.AuthURL)
		}
		if _, err := newBrowser().start(ch.AuthURL); err != nil { // the user's browser
			t.Error(err)
		}
		if pg := newBrowser().visit(ch.AuthURL); pg.status != http.StatusBadRequest { // the other program
			t.Errorf("second browser at the start page: %d %s", pg.status, pg.body)
		}
	})
	if err == nil || !strings.Contains(err.Error(), "opened a second time") || !strings.Contains(err.Error(), "authagent login work") {
		t.Errorf("login after a second browser opened its start page: %v", err)
	}
	if n := len(f.tokenForms()); n != 0 {
		t.Errorf("%d code exchanges", n)
	}
	if s.Len() != 0 {
		t.Errorf("stored %v", s.M)
	}

	// The same when the second browser comes while the first one's code is exchanged:
	// that grant is not taken.
	var startURL string
	f.mu.Lock()
	f.answer = func(f *oidcFake, form url.Values) map[string]any {
		newBrowser().visit(startURL) // the other program, just in time
		return map[string]any{"access_token": "at1", "refresh_token": "rt1", "token_type": "Bearer", "expires_in": 3600}
	}
	f.mu.Unlock()
	show, pages, _ := browse(t, func(auth url.Values) url.Values {
		return url.Values{"code": {"the-code"}, "state": {auth.Get("state")}}
	})
	_, err = p.LoginWith(context.Background(), providers.LoginOptions{Flow: providers.FlowBrowser}, func(ch providers.Challenge) {
		startURL = ch.AuthURL
		show(ch)
	})
	if err == nil || !strings.Contains(err.Error(), "opened a second time") {
		t.Errorf("login whose start page a second browser opened during the exchange: %v", err)
	}
	if pg := <-pages; pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "Login failed") {
		t.Errorf("the first browser's page: %d %s", pg.status, pg.body)
	}
	if s.Len() != 0 {
		t.Errorf("stored %v", s.M)
	}
}

// A refreshed ID token must name the user and client the login's did (OpenID Connect Core
// §12.2): one for another subject, issuer audience set is not served, the login's stays,
// and IDTokenError says why; one for the same subject replaces it. After a restart the
// stored ID token is the measure.
func TestRefreshedIDTokenSameSubject(t *testing.T) {
	t.Parallel()
	f := newOIDCFake(t)
	p, s := newOIDCProvider(t, f, providers.ProfileConfig{}, nil)
	c, err := loginWithClaims(t, f, p, context.Background(), nil)
	if err != nil || c.IDToken == "" {
		t.Fatalf("login: %+v, %v", c, err)
	}
	refreshWith := func(p *Provider, claims map[string]any) *providers.Credential {
		t.Helper()
		f.mu.Lock()
		f.answer = func(f *oidcFake, form url.Values) map[string]any {
			return map[string]any{"access_token": "at2", "refresh_token": "rt2", "token_type": "Bearer", "expires_in": 3600,
				"id_token": f.idToken(t, f.key, 2*time.Hour, claims)}
		}
		f.mu.Unlock()
		c, err := p.Fetch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		claims map[string]any
	}{
		{"another subject", map[string]any{"sub": "mallory"}},
		{"another audience set", map[string]any{"aud": []string{"cli", "other"}, "azp": "cli"}},
	} {
		got := refreshWith(p, tc.claims)
		if got.IDToken != c.IDToken || !strings.Contains(got.IDTokenError, "§12.2") || !strings.Contains(got.IDTokenError, "authagent login work") {
			t.Errorf("refresh with an ID token for %s: served %v (sub %v), error %q; want the login's kept and why", tc.name,
				got.IDToken != c.IDToken, claimsOf(t, got.IDToken)["sub"], got.IDTokenError)
		}
	}
	got := refreshWith(p, nil)
	if got.IDToken == c.IDToken || got.IDTokenError != "" {
		t.Errorf("refresh with an ID token for the same subject: new one served %v, error %q", got.IDToken != c.IDToken, got.IDTokenError)
	}
	restarted, _ := newOIDCProvider(t, f, providers.ProfileConfig{}, s.M)
	if got := refreshWith(restarted, map[string]any{"sub": "mallory"}); got.IDToken == "" || claimsOf(t, got.IDToken)["sub"] != "alice" {
		t.Errorf("after a restart, a refresh for another subject served %q, error %q", got.IDToken, got.IDTokenError)
	}
}

// A browser login whose ID token verifies but has expired by this machine's clock (2 hours
// fast) is not refused: the access token counts from the answer, the ID token is not
// served, and IDTokenError names the clock skew by the server's Date header.
func TestBrowserLoginClockSkew(t *testing.T) {
	t.Parallel()
	f := newOIDCFake(t)
	fast := func() time.Time { return time.Now().Add(2 * time.Hour) }
	cfg := providers.ProfileConfig{Provider: OIDCName, Issuer: f.URL, ClientID: "cli"}
	s := &memSecrets{M: map[string]string{}}
	pp, err := New(&cfg, providers.Env{Name: "work", Secrets: s, Now: fast,
		HTTPClient: &http.Client{Timeout: clientTimeout, Transport: &providers.Transport{Now: fast}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, _ := providers.WithResponseMeta(context.Background())
	c, err := loginWithClaims(t, f, pp.(*Provider), ctx, nil)
	if err != nil {
		t.Fatalf("browser login with the clock 2 h fast: %v", err)
	}
	if c.Token != "at1" || c.IDToken != "" || !strings.Contains(c.IDTokenError, "already expired") || !strings.Contains(c.IDTokenError, "clock is 2h0m") {
		t.Errorf("credential %+v; want the access token, no ID token, and the clock skew named", c)
	}
	if got, _ := s.Get(context.Background(), providers.RefreshTokenKey); got != "rt1" {
		t.Errorf("stored refresh token %q", got)
	}
	if _, err := s.Get(context.Background(), providers.IDTokenKey); !errors.Is(err, providers.ErrSecretNotFound) {
		t.Errorf("an ID token that is not served was stored: %v", err)
	}
}

// With several audiences the ID token must name this client as its authorized party.
func TestIDTokenAuthorizedParty(t *testing.T) {
	t.Parallel()
	f := newOIDCFake(t)
	p, _ := newOIDCProvider(t, f, providers.ProfileConfig{}, nil)
	c, err := loginWithClaims(t, f, p, context.Background(), map[string]any{"aud": []string{"other-client", "cli"}, "azp": "cli"})
	if err != nil || c.IDToken == "" {
		t.Errorf("two audiences, azp this client: %+v, %v", c, err)
	}
	if _, err := loginWithClaims(t, f, p, context.Background(), map[string]any{"azp": "other-client"}); err == nil || !strings.Contains(err.Error(), "azp") {
		t.Errorf("one audience, azp another client: %v", err)
	}
}

// discovery serves a discovery document with the fake's endpoints, changed by set.
func discovery(f *oidcFake, set map[string]any) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		doc := map[string]any{
			"issuer": f.URL, "authorization_endpoint": f.URL + "/authorize", "device_authorization_endpoint": f.URL + "/device",
			"token_endpoint": f.URL + "/token", "revocation_endpoint": f.URL + "/revoke", "jwks_uri": f.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		}
		for k, v := range set {
			doc[k] = v
		}
		json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"device_code":"dc","user_code":"ABCD","verification_uri":"https://idp.test/device","expires_in":600,"interval":1}`)
	})
	mux.Handle("/", f.Config.Handler)
	f.Config.Handler = mux
}

// A discovered endpoint is checked where it is used: a bad authorization endpoint breaks
// neither the refresh nor the device login of a profile, "auto" then takes the device
// flow, and only a browser login asked for says what is wrong with it. Likewise a bad
// device or revocation endpoint breaks only the device login or the revocation.
func TestDiscoveredEndpointsCheckedWhereUsed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key, value string
		kind             string
		flow             string // the flow that must fail: its error names the endpoint
		works            string // the flow that must still work
	}{
		{"http authorization endpoint", "authorization_endpoint", "http://idp.corp.example/authorize", Name, providers.FlowBrowser, providers.FlowDevice},
		{"authorization endpoint with a space", "authorization_endpoint", "https://idp.corp.example/auth --gpu-launcher=x", OIDCName, providers.FlowBrowser, providers.FlowDevice},
		{"device endpoint with a quote", "device_authorization_endpoint", `https://idp.corp.example/dev"ice`, OIDCName, providers.FlowDevice, providers.FlowBrowser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newOIDCFake(t)
			discovery(f, map[string]any{tc.key: tc.value})
			f.answer = func(f *oidcFake, form url.Values) map[string]any {
				f.mu.Lock()
				nonce := f.nonce
				f.mu.Unlock()
				return map[string]any{"access_token": "at", "refresh_token": "rt2", "token_type": "Bearer", "expires_in": 3600,
					"id_token": f.idToken(t, f.key, time.Hour, map[string]any{"nonce": nonce})}
			}
			cfg := providers.ProfileConfig{Provider: tc.kind, Issuer: f.URL, ClientID: "cli"}
			s := &memSecrets{M: map[string]string{providers.RefreshTokenKey: "rt1"}}
			pp, err := New(&cfg, providers.Env{Name: "work", Secrets: s})
			if err != nil {
				t.Fatal(err)
			}
			p := pp.(*Provider)
			if _, err := p.Fetch(context.Background()); err != nil {
				t.Errorf("refresh: %v", err)
			}
			_, err = p.LoginWith(context.Background(), providers.LoginOptions{Flow: tc.flow}, func(providers.Challenge) { t.Error("a challenge was shown") })
			if err == nil || !strings.Contains(err.Error(), tc.key) || !errors.Is(err, providers.ErrInvalidRequest) {
				t.Errorf("%s login: %v; want an error naming the %s", tc.flow, err, tc.key)
			}
			var shown providers.Challenge
			show := func(c providers.Challenge) { shown = c }
			if tc.works == providers.FlowBrowser {
				var pages <-chan page
				show, pages, _ = browse(t, func(auth url.Values) url.Values {
					f.mu.Lock()
					f.nonce = auth.Get("nonce")
					f.mu.Unlock()
					return url.Values{"code": {"c"}, "state": {auth.Get("state")}}
				})
				defer func() { <-pages }()
			}
			// "auto" with a display: the flow that can be used.
			if _, err := p.LoginWith(context.Background(), providers.LoginOptions{Display: true}, func(c providers.Challenge) { shown = c; show(c) }); err != nil || shown.Flow != tc.works {
				t.Errorf("auto login: %v, challenge %+v; want the %s flow", err, shown, tc.works)
			}
		})
	}
	// A bad revocation endpoint: logout says revocation failed, and forgets the grant.
	f := newOIDCFake(t)
	discovery(f, map[string]any{"revocation_endpoint": "http://idp.corp.example/revoke"})
	f.answer = goodAnswer(t)
	p, s := newOIDCProvider(t, f, providers.ProfileConfig{}, map[string]string{providers.RefreshTokenKey: "rt1"})
	if _, err := p.Fetch(context.Background()); err != nil {
		t.Errorf("refresh with a bad revocation endpoint: %v", err)
	}
	if err := p.Logout(context.Background()); err == nil || !strings.Contains(err.Error(), "revocation_endpoint") {
		t.Errorf("logout with a bad revocation endpoint: %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("after logout: %v", s.M)
	}
}

// Endpoint URLs (configured or discovered) and verification URIs go unchanged into
// requests, command lines and printed instructions: only well-formed ones are taken.
func TestURLsWellFormed(t *testing.T) {
	for _, raw := range []string{
		"https://idp.example/auth --gpu-launcher=x",
		"https://idp.example/a\"b",
		"https://idp.example/a`id`",
		"https://idp.example/auth?x=1 -new-tab",
		"https://idp.example/auth\tx",
		"https://idp.example/ä",
		"https://idp.example/auth#frag",
		"https://idp.example/a<b>",
	} {
		if err := checkURL(raw); err == nil {
			t.Errorf("checkURL(%q) = nil", raw)
		}
		cfg := providers.ProfileConfig{Provider: OIDCName, ClientID: "cli", AuthURL: raw, TokenURL: "https://idp.example/token"}
		var ce *providers.ConfigError
		if _, err := New(&cfg, providers.Env{Secrets: &memSecrets{}}); !errors.As(err, &ce) || ce.Key != "auth_url" {
			t.Errorf("auth_url = %q: %v, want a ConfigError", raw, err)
		}
		if strings.Contains(raw, "#") {
			continue // a page may have a fragment
		}
		for _, da := range []*oauth2.DeviceAuthResponse{
			{DeviceCode: "dc", UserCode: "ABCD", VerificationURI: raw},
			{DeviceCode: "dc", UserCode: "ABCD", VerificationURI: "https://idp.example/d", VerificationURIComplete: raw},
		} {
			if err := checkDeviceAuth(da, time.Now()); err == nil || !strings.Contains(err.Error(), "verification URI") {
				t.Errorf("verification URI %q: %v", raw, err)
			}
		}
	}
	for _, raw := range []string{"https://idp.example/oauth2/v2.0/authorize?p=B2C_1_signin&x=%20", "https://idp.example/t(1)/a;b=c", "http://127.0.0.1:8080/auth"} {
		if err := checkURL(raw); err != nil {
			t.Errorf("checkURL(%q): %v", raw, err)
		}
	}
}
