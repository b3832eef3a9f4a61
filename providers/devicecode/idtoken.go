package devicecode

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authagent/authagent/providers"
)

// idToken is the ID token the provider serves until a newer one comes. loaded says that
// raw is what the store holds (or the store was read and held nothing usable). who is the
// user and client the grant's ID tokens name: a refreshed one must name the same.
type idToken struct {
	raw    string
	exp    time.Time
	who    idSubject
	loaded bool
}

// idSubject is what an ID token says about whom it is for: OpenID Connect Core §12.2 has a
// refreshed ID token keep the iss, sub and aud of the one the login brought.
type idSubject struct {
	iss, sub string
	aud      []string
}

func (a idSubject) known() bool { return a.sub != "" }

func (a idSubject) same(b idSubject) bool {
	return a.iss == b.iss && a.sub == b.sub && slices.Equal(slices.Sorted(slices.Values(a.aud)), slices.Sorted(slices.Values(b.aud)))
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
// issuer, audience and authorized party, at_hash, and nonce when the login sent one) and,
// on a refresh, once it names the same user and client as the grant's earlier ones. A
// token that fails is not served: c says why in IDTokenError, and a login with a nonce
// (the browser flow) fails when verification does. A token that verified but has expired
// by this machine's clock (a clock set wrong, say) is not served either, yet the login
// stands: the access token's lifetime does not depend on that clock. An answer to a
// refresh without a new ID token keeps the one served so far; an answer to a login starts
// afresh, so the ID token of an earlier login (perhaps another user's) is never served for
// this one.
func (p *Provider) attachIDToken(ctx context.Context, c *providers.Credential, tok *oauth2.Token, nonce string, refresh bool) error {
	if !p.openID() {
		return nil
	}
	var prev idToken
	if refresh {
		prev = p.previousIDToken(ctx)
	}
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		id, err := p.verifyIDToken(ctx, raw, nonce, tok.AccessToken)
		switch {
		case err != nil:
			c.IDTokenError = "the ID token from the identity provider failed verification, so it is not served: " + err.Error()
			if nonce != "" {
				return fmt.Errorf("the identity provider's ID token failed verification, so the login is refused: %w", err)
			}
		case refresh && prev.who.known() && !prev.who.same(id.who):
			c.IDTokenError = fmt.Sprintf("the refreshed ID token is for %s, not for %s as the login's was, so it is not served (OpenID Connect Core §12.2); log in again: `authagent login %s`",
				id.who, prev.who, p.name)
		default:
			if aerr := providers.CheckArrival(id.exp, p.now(), providers.ResponseMetaFrom(ctx)); aerr != nil {
				c.IDTokenError = "the ID token from the identity provider is not served: " + strings.Replace(aerr.Error(), "the token", "it", 1)
				break
			}
			c.IDToken, c.IDTokenExpiresAt = raw, id.exp
			id.loaded = true
			p.mu.Lock()
			p.id = id
			p.mu.Unlock()
			// Best effort: the ID token is served from memory; the store only brings it
			// back after a restart, when a refresh brings none.
			p.secrets.Set(ctx, providers.IDTokenKey, raw)
			return nil
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
	if prev.raw != "" {
		c.IDToken, c.IDTokenExpiresAt = prev.raw, prev.exp
	} else if c.IDTokenError == "" {
		c.IDTokenError = "the identity provider issued no ID token"
	}
	return nil
}

func (s idSubject) String() string {
	return fmt.Sprintf("subject %q of issuer %q and audience %q", clip(s.sub), clip(s.iss), s.aud)
}

// previousIDToken is the ID token served so far: from memory, or after a restart from the
// store, verified again (an older authagent stored it unverified). One that no longer
// verifies (the issuer's keys changed) is not served, but still says whom the grant's ID
// tokens are for.
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
		if v, verr := p.verifyIDToken(ctx, raw, "", ""); verr == nil {
			id = v
			id.loaded = true
		} else {
			id.who = unverifiedSubject(raw)
		}
	} else if err != nil && !errors.Is(err, providers.ErrSecretNotFound) {
		return idToken{} // try again next time
	}
	p.mu.Lock()
	p.id = id
	p.mu.Unlock()
	return id
}

// unverifiedSubject reads whom a JWT names without checking its signature: only to compare
// with, never to serve.
func unverifiedSubject(raw string) idSubject {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return idSubject{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return idSubject{}
	}
	var claims struct {
		Iss string   `json:"iss"`
		Sub string   `json:"sub"`
		Aud audience `json:"aud"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return idSubject{}
	}
	return idSubject{iss: claims.Iss, sub: claims.Sub, aud: claims.Aud}
}

// audience is the aud claim: one string or a list of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// verifyIDToken checks an ID token's signature with the issuer's keys, its issuer and
// audience, its authorized party (azp: this client, and present when there are several
// audiences, OpenID Connect Core §3.1.3.7), nonce (when not empty), and at_hash against
// accessToken (when the token has one), and returns it with its expiry and whom it names.
// Expiry itself is the caller's business. Only asymmetric signatures verify (RS*, ES*, PS*,
// as the issuer's keys publish them): an HS256 token, signed with the client secret, is
// refused.
func (p *Provider) verifyIDToken(ctx context.Context, raw, nonce, accessToken string) (idToken, error) {
	if providers.HasControl(raw) {
		return idToken{}, errors.New("it contains a control character")
	}
	ep, err := p.endpoints(ctx)
	if err != nil {
		return idToken{}, err
	}
	if ep.op == nil {
		return idToken{}, errors.New("the profile has no issuer to verify it with")
	}
	v := ep.op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, SkipExpiryCheck: true, Now: p.now})
	idt, err := v.Verify(oidc.ClientContext(ctx, p.hc), raw)
	if err != nil {
		return idToken{}, err
	}
	var extra struct {
		AZP string `json:"azp"`
	}
	if err := idt.Claims(&extra); err != nil {
		return idToken{}, err
	}
	switch {
	case extra.AZP != "" && extra.AZP != p.cfg.ClientID:
		return idToken{}, fmt.Errorf("its authorized party (azp) is %q, not client %q (OpenID Connect Core §3.1.3.7)", clip(extra.AZP), p.cfg.ClientID)
	case extra.AZP == "" && len(idt.Audience) > 1:
		return idToken{}, fmt.Errorf("it names several audiences %q but no authorized party (azp) to say that client %q is the one it was issued to (OpenID Connect Core §3.1.3.7)", idt.Audience, p.cfg.ClientID)
	}
	if nonce != "" && idt.Nonce != nonce {
		return idToken{}, errors.New("its nonce is not the login's (OpenID Connect Core §3.1.3.7)")
	}
	if idt.AccessTokenHash != "" && accessToken != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return idToken{}, err
		}
	}
	if idt.Expiry.IsZero() {
		return idToken{}, errors.New("it has no exp claim")
	}
	return idToken{raw: raw, exp: idt.Expiry, who: idSubject{iss: idt.Issuer, sub: idt.Subject, aud: idt.Audience}}, nil
}
