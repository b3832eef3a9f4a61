package idp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authagent/authagent/tests/idp"
)

func serviceConfig(p *idp.IdP, style oauth2.AuthStyle) *clientcredentials.Config {
	id, secret := p.ServiceClient()
	return &clientcredentials.Config{
		ClientID:     id,
		ClientSecret: secret,
		TokenURL:     p.TokenEndpoint(),
		Scopes:       []string{"api"},
		AuthStyle:    style,
	}
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{AccessTokenLifetime: 3 * time.Second})
	id, secret := p.ServiceClient()
	if id != idp.DefaultServiceClientID || secret == "" {
		t.Fatalf("ServiceClient() = %q, %q", id, secret)
	}
	seen := map[string]bool{}
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams, oauth2.AuthStyleAutoDetect} {
		tok, err := serviceConfig(p, style).Token(ctx(t))
		if err != nil {
			t.Fatalf("auth style %d: %v", style, err)
		}
		if tok.AccessToken == "" || tok.RefreshToken != "" || !strings.EqualFold(tok.TokenType, "bearer") {
			t.Errorf("auth style %d: token %+v: want a bearer access token and no refresh token", style, tok)
		}
		if got := tok.Extra("expires_in"); got != float64(3) {
			t.Errorf("auth style %d: expires_in = %v, want 3", style, got)
		}
		sub, err := p.AccessTokenSubject(tok.AccessToken)
		if err != nil {
			t.Fatalf("auth style %d: the IdP refuses its own token: %v", style, err)
		}
		if sub != id {
			t.Errorf("auth style %d: subject %q, want the service client %q", style, sub, id)
		}
		seen[tok.AccessToken] = true
	}
	if len(seen) != 3 {
		t.Errorf("%d distinct tokens for 3 requests", len(seen))
	}
	if got := p.TokenRequests()["client_credentials"]; got != 3 {
		t.Errorf("client_credentials requests = %d, want 3", got)
	}

	// Tokens expire after the lifetime.
	tok, err := serviceConfig(p, oauth2.AuthStyleInHeader).Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	issued := p.ServiceTokensIssued()
	if len(issued) != 4 {
		t.Fatalf("ServiceTokensIssued: %d tokens, want 4", len(issued))
	}
	for _, it := range issued {
		if life := it.Expires.Sub(it.Issued); life < 3*time.Second || life > 4*time.Second {
			t.Errorf("issued token lives %s, want about 3s", life)
		}
	}
	time.Sleep(3*time.Second + 700*time.Millisecond)
	if err := p.CheckAccessToken(tok.AccessToken); err == nil {
		t.Error("a client credentials token is still accepted after its lifetime")
	}
}

func TestClientCredentialsRefused(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{})
	id, secret := p.ServiceClient()
	for name, cfg := range map[string]*clientcredentials.Config{
		"wrong secret":   {ClientID: id, ClientSecret: secret + "x", TokenURL: p.TokenEndpoint(), AuthStyle: oauth2.AuthStyleInHeader},
		"unknown client": {ClientID: "nobody", ClientSecret: secret, TokenURL: p.TokenEndpoint(), AuthStyle: oauth2.AuthStyleInParams},
		"example's user": {ClientID: "sid1", ClientSecret: "verysecret", TokenURL: p.TokenEndpoint(), AuthStyle: oauth2.AuthStyleInParams},
		"public client":  {ClientID: p.ClientID(), TokenURL: p.TokenEndpoint(), AuthStyle: oauth2.AuthStyleInParams},
	} {
		_, err := cfg.Token(ctx(t))
		if err == nil {
			t.Errorf("%s: got a token", name)
			continue
		}
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %v, want 401 invalid_client", name, err)
		}
	}
}

func TestDiscoveryAdvertisesClientCredentials(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, p.Issuer()+idp.PathDiscovery, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(doc.GrantTypes, "client_credentials") {
		t.Errorf("grant_types_supported %v lacks client_credentials", doc.GrantTypes)
	}
}
