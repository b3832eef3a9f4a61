package apikey

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authagent/authagent/providers"
)

// ClientCredentials trades the key id (OAuth client_id) and the stored secret (client_secret)
// for a short-lived access token with the OAuth 2.0 client credentials grant (RFC 6749 §4.4).
type ClientCredentials struct {
	profile  string
	clientID string
	tokenURL string
	scopes   []string
	params   url.Values // audience, resource
	secrets  providers.Secrets
	hc       *http.Client
	now      func() time.Time
}

func newClientCredentials(cfg *providers.ProfileConfig, env providers.Env) (*ClientCredentials, error) {
	if err := providers.CheckKeys(cfg, Name+" (mode "+modeClientCredentials+")",
		"mode", "key_id", "token_url", "scopes", "audience", "resource"); err != nil {
		return nil, err
	}
	if cfg.KeyID == "" {
		return nil, &providers.ConfigError{Key: "key_id", Message: "required: the OAuth client id; the profile's secret is its client secret"}
	}
	if cfg.TokenURL == "" {
		return nil, &providers.ConfigError{Key: "token_url", Message: "required: the token endpoint of the OAuth server, e.g. https://login.example.com/oauth/token"}
	}
	if err := providers.CheckEndpoint(cfg.TokenURL); err != nil {
		return nil, &providers.ConfigError{Key: "token_url", Message: err.Error()}
	}
	for _, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return nil, &providers.ConfigError{Key: "scopes", Message: fmt.Sprintf("%q is not a scope: one scope per list entry, without spaces", s)}
		}
	}
	p := &ClientCredentials{
		profile:  env.Name,
		clientID: cfg.KeyID,
		tokenURL: cfg.TokenURL,
		scopes:   cfg.Scopes,
		params:   url.Values{},
		secrets:  env.Secrets,
		hc:       env.HTTPClient,
		now:      env.Now,
	}
	if cfg.Audience != "" {
		p.params.Set("audience", cfg.Audience)
	}
	if cfg.Resource != "" {
		p.params.Set("resource", cfg.Resource)
	}
	if p.hc == nil {
		p.hc = http.DefaultClient
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Fetch reads the client secret and asks the token endpoint for a new access token. The
// secret is read on every fetch, so a secret replaced with `authagent set-secret` is used at once.
func (p *ClientCredentials) Fetch(ctx context.Context) (*providers.Credential, error) {
	secret, err := p.secrets.Get(ctx, providers.SecretKey)
	if errors.Is(err, providers.ErrSecretNotFound) {
		return nil, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("no client secret stored; store it with `authagent set-secret %s` (reads it from stdin)", p.profile))
	}
	if err != nil {
		return nil, fmt.Errorf("read client secret: %w", err)
	}
	c := &clientcredentials.Config{
		ClientID:       p.clientID,
		ClientSecret:   secret,
		TokenURL:       p.tokenURL,
		Scopes:         p.scopes,
		EndpointParams: p.params,
		AuthStyle:      oauth2.AuthStyleInHeader, // RFC 6749 §2.3.1: every server must accept Basic
	}
	now := p.now()
	tok, err := c.Token(context.WithValue(ctx, oauth2.HTTPClient, p.hc))
	if err != nil {
		return nil, p.explain(err, secret)
	}
	return p.credential(tok, now), nil
}

// credential builds the credential. The expiry comes from expires_in counted from when the
// request was sent (on the agent's clock), else from the JWT exp claim; without either the
// token is used until a server rejects it.
func (p *ClientCredentials) credential(tok *oauth2.Token, sent time.Time) *providers.Credential {
	exp := providers.ExpiryFrom(sent, tok.Extra("expires_in"), tok.AccessToken)
	return providers.TokenCredential(tok.Type(), tok.AccessToken, exp)
}

// explain turns an OAuth or network failure into a message that says what happened and what
// to do next. A refused client secret needs the user (ErrNeedsLogin); anything else may pass,
// so the agent retries it with backoff. It never includes the secret or a response body:
// only error codes, descriptions (with the secret cut out, should a server echo it),
// statuses and the endpoint's host.
func (p *ClientCredentials) explain(err error, secret string) error {
	const doing = "get an access token"
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := p.explainCode(doing, re, secret)
		if providers.DeadGrant(re.ErrorCode) || providers.ClientConfigError(re.ErrorCode) {
			return providers.Mark(providers.ErrNeedsLogin, msg) // no retry helps
		}
		return msg
	}
	if terr, ok := providers.ExplainTransport(doing, "the token endpoint", err); ok {
		return terr
	}
	// What is left are answers that are not a token response (HTML from a proxy, broken
	// JSON); oauth2 describes them without the body.
	return fmt.Errorf("%s: the token endpoint at %s sent an answer that is not a token response: %w", doing, providers.HostOf(p.tokenURL), err)
}

// explainCode words an OAuth error answer, with the secret cut out of the description
// should a server echo it.
func (p *ClientCredentials) explainCode(doing string, re *oauth2.RetrieveError, secret string) error {
	desc := providers.Scrub(re.ErrorDescription, secret)
	if desc != "" {
		desc = ": " + desc
	}
	store := fmt.Sprintf("store the right secret with `authagent set-secret %s`", p.profile)
	switch code := re.ErrorCode; {
	case providers.DeadGrant(code):
		return fmt.Errorf("the token endpoint refused the grant of client %q (%s%s); %s", p.clientID, code, desc, store)
	case code == "invalid_client":
		return fmt.Errorf("the token endpoint refused client %q (invalid_client%s): key_id or the stored secret is wrong; %s", p.clientID, desc, store)
	case code == "unauthorized_client":
		return fmt.Errorf("client %q may not use the client credentials grant (unauthorized_client%s); allow the grant for this client at the OAuth server, then %s", p.clientID, desc, store)
	case code == "invalid_scope":
		return fmt.Errorf("the token endpoint refused the scopes %q (invalid_scope%s); fix scopes in the profile", p.scopes, desc)
	case code == "unsupported_grant_type":
		return fmt.Errorf("the token endpoint does not offer the client credentials grant (unsupported_grant_type%s); check token_url", desc)
	case code == "":
		status := "no answer"
		if re.Response != nil {
			status = providers.Scrub(re.Response.Status, secret)
		}
		return fmt.Errorf("%s: the token endpoint at %s answered %s without an OAuth error", doing, providers.HostOf(p.tokenURL), status)
	default:
		return fmt.Errorf("%s: the token endpoint answered %s%s", doing, re.ErrorCode, desc)
	}
}
