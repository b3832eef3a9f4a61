package idp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authagent/authagent/tests/idp"
)

const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code"

func config(p *idp.IdP) *oauth2.Config {
	return &oauth2.Config{
		ClientID: p.ClientID(),
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: p.Issuer() + "/device_authorization",
			TokenURL:      p.Issuer() + "/oauth/token",
			// A public client sends client_id in the form. (With
			// AuthStyleAutoDetect every request whose style is not yet
			// cached is sent twice; see TestAuthStyleAutoDetect.)
			AuthStyle: oauth2.AuthStyleInParams,
		},
		Scopes: []string{"openid", "profile", "offline_access"},
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// login runs the device flow with x/oauth2, approving in the background.
func login(t *testing.T, p *idp.IdP) *oauth2.Token {
	t.Helper()
	return loginWith(t, p, config(p))
}

func loginWith(t *testing.T, p *idp.IdP, cfg *oauth2.Config) *oauth2.Token {
	t.Helper()
	da, err := cfg.DeviceAuth(ctx(t), oauth2.SetAuthURLParam("audience", "https://api.example.test"))
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if da.UserCode == "" || da.DeviceCode == "" {
		t.Fatalf("DeviceAuth: empty codes: %+v", da)
	}
	if want := p.Issuer() + "/device"; da.VerificationURI != want {
		t.Errorf("verification_uri = %q, want %q", da.VerificationURI, want)
	}
	if !strings.Contains(da.VerificationURIComplete, url.QueryEscape(da.UserCode)) {
		t.Errorf("verification_uri_complete = %q lacks the user code", da.VerificationURIComplete)
	}
	if da.Interval != 1 {
		t.Errorf("interval = %d, want 1", da.Interval)
	}
	approved := make(chan error, 1)
	go func() { approved <- p.Approve(da.UserCode) }()
	tok, err := cfg.DeviceAccessToken(ctx(t), da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	if err := <-approved; err != nil {
		t.Fatalf("Approve: %v", err)
	}
	return tok
}

// refresh performs exactly one refresh_token grant request.
func refresh(t *testing.T, p *idp.IdP, refreshToken string) (*oauth2.Token, error) {
	t.Helper()
	return config(p).TokenSource(ctx(t), &oauth2.Token{RefreshToken: refreshToken}).Token()
}

func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("got error %v, want OAuth error %s", err, code)
	}
	if re.ErrorCode != code {
		t.Fatalf("got OAuth error %q (%s), want %q", re.ErrorCode, re.ErrorDescription, code)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{})
	if !strings.HasPrefix(p.Issuer(), "http://127.0.0.1:") {
		t.Fatalf("issuer %q is not loopback http", p.Issuer())
	}
	resp, err := http.Get(p.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %s", resp.Status)
	}
	var doc struct {
		Issuer                      string   `json:"issuer"`
		DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
		TokenEndpoint               string   `json:"token_endpoint"`
		RevocationEndpoint          string   `json:"revocation_endpoint"`
		GrantTypes                  []string `json:"grant_types_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"issuer":                        {doc.Issuer, p.Issuer()},
		"device_authorization_endpoint": {doc.DeviceAuthorizationEndpoint, p.DeviceAuthorizationEndpoint()},
		"token_endpoint":                {doc.TokenEndpoint, p.TokenEndpoint()},
		"revocation_endpoint":           {doc.RevocationEndpoint, p.RevocationEndpoint()},
	}
	for name, c := range checks {
		if c[0] != c[1] || c[0] == "" {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	for _, g := range []string{deviceGrant, "refresh_token"} {
		if !slices.Contains(doc.GrantTypes, g) {
			t.Errorf("grant_types_supported %v lacks %s", doc.GrantTypes, g)
		}
	}
}

func TestDeviceLoginAndExpiry(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{AccessTokenLifetime: 2 * time.Second})
	start := time.Now()
	tok := login(t, p)
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token lacks access or refresh token: %+v", tok)
	}
	if tok.ExpiresIn != 2 {
		t.Errorf("expires_in = %d, want 2", tok.ExpiresIn)
	}
	if d := tok.Expiry.Sub(start); d < 2*time.Second || d > 5*time.Second {
		t.Errorf("expiry %v after start, want about 2s", d)
	}
	if id, _ := tok.Extra("id_token").(string); strings.Count(id, ".") != 2 {
		t.Errorf("id_token missing or not a JWT: %q", id)
	}
	if got := p.TokenRequests()[deviceGrant]; got < 1 {
		t.Errorf("TokenRequests()[device_code] = %d, want >= 1", got)
	}
	if err := p.CheckAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("fresh access token rejected: %v", err)
	}
	time.Sleep(time.Until(tok.Expiry) + time.Second)
	if err := p.CheckAccessToken(tok.AccessToken); err == nil {
		t.Fatal("expired access token accepted by userinfo")
	}
}

func TestRotationAndReuseDetection(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{AccessTokenLifetime: 10 * time.Second})
	tok := login(t, p)

	next, err := refresh(t, p, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh token not rotated: old %q new %q", tok.RefreshToken, next.RefreshToken)
	}
	if next.AccessToken == "" || next.AccessToken == tok.AccessToken {
		t.Fatalf("no new access token")
	}
	if next.ExpiresIn != 10 {
		t.Errorf("expires_in after refresh = %d, want 10", next.ExpiresIn)
	}
	if err := p.CheckAccessToken(next.AccessToken); err != nil {
		t.Fatalf("refreshed access token rejected: %v", err)
	}
	if got := p.TokenRequests()["refresh_token"]; got != 1 {
		t.Errorf("refresh_token requests = %d, want 1", got)
	}
	if p.ReuseDetected() != 0 {
		t.Fatalf("reuse detected on a normal refresh")
	}

	// A second rotation of the live token works too.
	third, err := refresh(t, p, next.RefreshToken)
	if err != nil {
		t.Fatalf("second refresh: %v", err)
	}

	// Present the very first, rotated refresh token: reuse.
	_, err = refresh(t, p, tok.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	if got := p.ReuseDetected(); got != 1 {
		t.Fatalf("ReuseDetected = %d, want 1", got)
	}
	// The whole grant is revoked: the newest refresh token fails as well...
	_, err = refresh(t, p, third.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	if got := p.ReuseDetected(); got != 1 {
		t.Fatalf("ReuseDetected after using the newest token = %d, want 1", got)
	}
	// ...and so do access tokens of the grant.
	if err := p.CheckAccessToken(third.AccessToken); err == nil {
		t.Error("access token of a revoked grant still accepted")
	}
	if got := p.ActiveGrants(); got != 0 {
		t.Errorf("ActiveGrants = %d, want 0", got)
	}
	if got := p.TokenRequests()["refresh_token"]; got != 4 {
		t.Errorf("refresh_token requests = %d, want 4", got)
	}
}

func TestConcurrentUseOfOneRefreshTokenIsReuse(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{})
	tok := login(t, p)

	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = refresh(t, p, tok.RefreshToken)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantOAuthError(t, err, "invalid_grant")
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent refreshes succeeded, want exactly 1", ok, n)
	}
	if got := p.ReuseDetected(); got != n-1 {
		t.Errorf("ReuseDetected = %d, want %d", got, n-1)
	}
}

func TestForgetGrants(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{})
	tok := login(t, p)
	p.ForgetGrants()
	_, err := refresh(t, p, tok.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	if p.ReuseDetected() != 0 {
		t.Errorf("forgotten grant counted as reuse")
	}
	if err := p.CheckAccessToken(tok.AccessToken); err != nil {
		t.Errorf("access token should stay valid until it expires: %v", err)
	}

	// A new login gives a working grant again.
	tok = login(t, p)
	if _, err := refresh(t, p, tok.RefreshToken); err != nil {
		t.Fatalf("refresh after new login: %v", err)
	}
}

func TestDeny(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{})
	cfg := config(p)
	da, err := cfg.DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	denied := make(chan error, 1)
	go func() { denied <- p.Deny(da.UserCode) }()
	_, err = cfg.DeviceAccessToken(ctx(t), da)
	wantOAuthError(t, err, "access_denied")
	if err := <-denied; err != nil {
		t.Fatalf("Deny: %v", err)
	}
	// The code is spent.
	if err := p.Approve(da.UserCode); err == nil {
		t.Error("Approve after Deny succeeded")
	}
}

func TestApproveUnknownCode(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{})
	if err := p.Approve("BCDF-GHJK"); err == nil {
		t.Fatal("Approve of an unknown user code succeeded")
	}
}

func TestDeviceCodeExpires(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{DeviceCodeLifetime: 2 * time.Second})
	cfg := config(p)
	da, err := cfg.DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if da.Expiry.IsZero() || time.Until(da.Expiry) > 3*time.Second {
		t.Errorf("device code expiry %v, want about 2s", da.Expiry)
	}
	// x/oauth2 stops at the code's expiry with a context error; poll by hand
	// past it to see the provider's answer.
	time.Sleep(2500 * time.Millisecond)
	_, err = cfg.Exchange(ctx(t), "", oauth2.SetAuthURLParam("grant_type", deviceGrant), oauth2.SetAuthURLParam("device_code", da.DeviceCode))
	wantOAuthError(t, err, "expired_token")
	if err := p.Approve(da.UserCode); err == nil {
		t.Error("Approve of an expired code succeeded")
	}
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{})
	tok := login(t, p)
	form := url.Values{
		"token":           {tok.RefreshToken},
		"token_type_hint": {"refresh_token"},
		"client_id":       {p.ClientID()},
	}
	resp, err := http.PostForm(p.RevocationEndpoint(), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %s", resp.Status)
	}
	if got := p.RevokedRefreshTokens(); got != 1 {
		t.Fatalf("RevokedRefreshTokens = %d, want 1", got)
	}
	_, err = refresh(t, p, tok.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	if p.ReuseDetected() != 0 {
		t.Error("revoked token counted as reuse")
	}
	// Revoking again is fine (RFC 7009 §2.2) and not counted.
	resp, err = http.PostForm(p.RevocationEndpoint(), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second revoke: %s", resp.Status)
	}
	if got := p.RevokedRefreshTokens(); got != 1 {
		t.Fatalf("RevokedRefreshTokens after second revoke = %d, want 1", got)
	}
}

func TestJWTAccessTokens(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{JWTAccessTokens: true, AccessTokenLifetime: 5 * time.Second})
	tok := login(t, p)
	if strings.Count(tok.AccessToken, ".") != 2 {
		t.Fatalf("access token is not a JWT: %q", tok.AccessToken)
	}
	if tok.ExpiresIn != 5 {
		t.Errorf("expires_in = %d, want 5", tok.ExpiresIn)
	}
	if err := p.CheckAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("JWT access token rejected: %v", err)
	}
}

// TestAuthStyleAutoDetect shows that x/oauth2's default client
// authentication probing works against the provider, and what it costs:
// the op package rejects HTTP Basic auth with an empty secret on the
// device_code grant (invalid_client), so each poll is sent twice until a
// request succeeds and the style is cached in the Config.
func TestAuthStyleAutoDetect(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{})
	cfg := config(p)
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleAutoDetect
	tok := loginWith(t, p, cfg)
	if got := p.TokenRequests()[deviceGrant]; got < 2 {
		t.Errorf("device_code requests = %d, want >= 2 (probe + retry)", got)
	}
	if _, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if got := p.TokenRequests()["refresh_token"]; got != 1 {
		t.Errorf("refresh_token requests = %d, want 1 (style cached)", got)
	}
}

func TestDeviceCodeIsSingleUse(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{})
	cfg := config(p)
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	da, err := cfg.DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Approve(da.UserCode); err != nil {
		t.Fatal(err)
	}
	if err := p.Approve(da.UserCode); err == nil {
		t.Error("second Approve of the same code succeeded")
	}
	if _, err := cfg.DeviceAccessToken(ctx(t), da); err != nil {
		t.Fatal(err)
	}
	_, err = cfg.DeviceAccessToken(ctx(t), da)
	wantOAuthError(t, err, "access_denied")
}
