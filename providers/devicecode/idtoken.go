package devicecode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authagent/authagent/providers"
)

// idToken is the ID token the provider serves until a newer one comes. loaded says that
// raw is what the store holds (or the store was read and held nothing usable).
type idToken struct {
	raw    string
	exp    time.Time
	loaded bool
}

// openID reports whether the profile's logins are OpenID Connect logins: discovery at an
// issuer, and the openid scope. Only those get ID tokens, and a nonce in a browser login.
func (p *Provider) openID() bool {
	return p.cfg.Issuer != "" && slices.Contains(p.cfg.Scopes, oidc.ScopeOpenID)
}

// IDTokens reports whether the profile can get ID tokens, and if not, why not.
func (p *Provider) IDTokens() error {
	switch {
	case p.cfg.Issuer == "":
		return fmt.Errorf("profile %s has no issuer, so it has no ID tokens: they are verified with the issuer's keys (set issuer instead of the explicit endpoints)", p.name)
	case !p.openID():
		return fmt.Errorf("profile %s does not ask for the \"openid\" scope, so the identity provider issues no ID token; add it to scopes and log in again", p.name)
	}
	return nil
}

// attachIDToken puts the ID token that came with tok on c, once it verified (signature,
// issuer, audience, at_hash, and nonce when the login sent one). A token that fails is
// not served: c says why in IDTokenError, and a login with a nonce (the browser flow)
// fails. An answer to a refresh without a new ID token keeps the one served so far; an
// answer to a login starts afresh, so the ID token of an earlier login (perhaps another
// user's) is never served for this one.
func (p *Provider) attachIDToken(ctx context.Context, c *providers.Credential, tok *oauth2.Token, nonce string, refresh bool) error {
	if !p.openID() {
		return nil
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw != "" {
		exp, err := p.verifyIDToken(ctx, raw, nonce, tok.AccessToken)
		if err == nil {
			err = providers.CheckArrival(exp, p.now(), nil)
		}
		if err == nil {
			c.IDToken, c.IDTokenExpiresAt = raw, exp
			p.mu.Lock()
			p.id = idToken{raw: raw, exp: exp, loaded: true}
			p.mu.Unlock()
			// Best effort: the ID token is served from memory; the store only brings it
			// back after a restart, when a refresh brings none.
			p.secrets.Set(ctx, providers.IDTokenKey, raw)
			return nil
		}
		c.IDTokenError = "the ID token from the identity provider failed verification, so it is not served: " + err.Error()
		if nonce != "" {
			return fmt.Errorf("the identity provider's ID token failed verification, so the login is refused: %w", err)
		}
	}
	if !refresh {
		p.mu.Lock()
		p.id = idToken{loaded: true}
		p.mu.Unlock()
		p.secrets.Delete(ctx, providers.IDTokenKey)
		if c.IDTokenError == "" {
			c.IDTokenError = "the identity provider issued no ID token with this login"
		}
		return nil
	}
	prev := p.previousIDToken(ctx)
	if prev.raw != "" {
		c.IDToken, c.IDTokenExpiresAt = prev.raw, prev.exp
	} else if c.IDTokenError == "" {
		c.IDTokenError = "the identity provider issued no ID token"
	}
	return nil
}

// previousIDToken is the ID token served so far: from memory, or after a restart from the
// store, verified again (an older authagent stored it unverified).
func (p *Provider) previousIDToken(ctx context.Context) idToken {
	p.mu.Lock()
	id := p.id
	p.mu.Unlock()
	if id.loaded {
		return id
	}
	id = idToken{loaded: true}
	raw, err := p.secrets.Get(ctx, providers.IDTokenKey)
	if err == nil && raw != "" {
		if exp, verr := p.verifyIDToken(ctx, raw, "", ""); verr == nil {
			id.raw, id.exp = raw, exp
		}
	} else if err != nil && !errors.Is(err, providers.ErrSecretNotFound) {
		return idToken{} // try again next time
	}
	p.mu.Lock()
	p.id = id
	p.mu.Unlock()
	return id
}

// verifyIDToken checks an ID token's signature with the issuer's keys, its issuer and
// audience, nonce (when not empty), and at_hash against accessToken (when the token has
// one), and returns its expiry. Expiry itself is the agent's business.
func (p *Provider) verifyIDToken(ctx context.Context, raw, nonce, accessToken string) (time.Time, error) {
	if providers.HasControl(raw) {
		return time.Time{}, errors.New("it contains a control character")
	}
	ep, err := p.endpoints(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if ep.op == nil {
		return time.Time{}, errors.New("the profile has no issuer to verify it with")
	}
	v := ep.op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, SkipExpiryCheck: true, Now: p.now})
	idt, err := v.Verify(oidc.ClientContext(ctx, p.hc), raw)
	if err != nil {
		return time.Time{}, err
	}
	if nonce != "" && idt.Nonce != nonce {
		return time.Time{}, errors.New("its nonce is not the login's (OpenID Connect Core §3.1.3.7)")
	}
	if idt.AccessTokenHash != "" && accessToken != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return time.Time{}, err
		}
	}
	if idt.Expiry.IsZero() {
		return time.Time{}, errors.New("it has no exp claim")
	}
	return idt.Expiry, nil
}
