package idp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The public client logs in with the authorization code flow and PKCE through a loopback
// redirect on any port, as a native app does (RFC 8252 §7.3); its ID token carries the
// nonce and lives IDTokenLifetime; a refresh brings a new one.
func TestAuthorizationCodeWithPKCE(t *testing.T) {
	p := Start(t, Options{IDTokenLifetime: 90 * time.Second})
	ctx := context.Background()
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: p.ClientID(), Endpoint: op.Endpoint(),
		Scopes: []string{"openid", "profile", "offline_access"}, RedirectURL: "http://127.0.0.1:54321/callback"}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("the-state", oauth2.S256ChallengeOption(verifier), oidc.Nonce("the-nonce"))

	back, err := p.SignIn(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Scheme + "://" + back.Host + back.Path; got != conf.RedirectURL {
		t.Fatalf("redirected to %s, want %s", back, conf.RedirectURL)
	}
	if back.Query().Get("state") != "the-state" || back.Query().Get("code") == "" {
		t.Fatalf("redirect %s lacks the state or a code", back)
	}
	if _, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption("wrong-verifier-wrong-verifier-wrong-verifier")); err == nil {
		t.Error("the code was exchanged with the wrong PKCE verifier")
	}

	// A new login: the code of the failed exchange may be spent.
	back, err = p.SignIn(authURL)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token")
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := op.Verifier(&oidc.Config{ClientID: p.ClientID()}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idt.Nonce != "the-nonce" || idt.Subject != Username {
		t.Errorf("ID token nonce %q subject %q", idt.Nonce, idt.Subject)
	}
	if life := idt.Expiry.Sub(idt.IssuedAt); life < 80*time.Second || life > 100*time.Second {
		t.Errorf("ID token lives %s, want IDTokenLifetime", life)
	}

	fresh, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := fresh.Extra("id_token").(string); again == "" || again == raw {
		t.Errorf("a refresh brought no new ID token")
	}

	// A redirect URI that is not registered gets no redirect back to it.
	conf.RedirectURL = "http://127.0.0.1:54321/elsewhere"
	back, err = p.SignIn(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	if err == nil {
		t.Errorf("a login with an unregistered redirect URI went back to %s", back)
	} else if back != nil && strings.HasPrefix(back.String(), conf.RedirectURL) {
		t.Errorf("an unregistered redirect URI got a redirect: %s", back)
	}
}
