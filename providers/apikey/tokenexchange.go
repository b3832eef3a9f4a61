package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/tokencmd"
)

// grantTokenExchange is RFC 8693's grant type.
const grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// tokenTypes are the short names of the token type URIs of RFC 8693 §3, as subject_token_type
// and requested_token_type take them; the full URI (or any other absolute URI) works too.
var tokenTypes = map[string]string{
	"access_token":  "urn:ietf:params:oauth:token-type:access_token",
	"refresh_token": "urn:ietf:params:oauth:token-type:refresh_token",
	"id_token":      "urn:ietf:params:oauth:token-type:id_token",
	"jwt":           "urn:ietf:params:oauth:token-type:jwt",
	"saml1":         "urn:ietf:params:oauth:token-type:saml1",
	"saml2":         "urn:ietf:params:oauth:token-type:saml2",
}

// Where a token exchange's subject token comes from: subject_token's values, and
// subject_profile.
const (
	subjectSecret  = "secret"
	subjectPushed  = "pushed"
	subjectProfile = "profile"
)

// TokenExchange trades a subject token for an access token with OAuth 2.0 Token Exchange
// (RFC 8693) at token_url, for the audience, resource, scopes and token type the profile
// names. The subject token is the profile's stored secret (subject_token = "secret", the
// default), a token pushed into the profile (subject_token = "pushed"), or another profile's
// current token (subject_profile). The token that comes back is used no longer than the
// subject token it came from, when that one's expiry is known; a refresh trades the
// subject again (a refresh token in the answer is not kept).
//
// A subject token that has expired, one the server refuses (invalid_grant, or RFC 8693's
// invalid_request), and a request the server will never grant (invalid_client,
// invalid_target, invalid_scope …) need the user: the error wraps ErrNeedsLogin and says
// what to supply or fix. A subject profile that needs a login makes this one need it too;
// it trades again by itself once that profile has a new token (see Watch).
//
// Client authentication: with key_id and a stored secret (only when the subject is not the
// secret), HTTP Basic (RFC 6749 §2.3.1); with key_id alone, client_id in the form (a public
// client); without key_id, none (the subject token is the only credential).
type TokenExchange struct {
	profile        string
	clientID       string
	tokenURL       string
	target         *url.URL // tokenURL, parsed
	scopes         []string
	params         url.Values // audience, resource, requested_token_type, subject_token_type
	source         string     // subjectSecret, subjectPushed or subjectProfile
	subjectProfile string
	subjectIDToken bool // subject_profile's ID token rather than its access token
	secrets        providers.Secrets
	hc             *http.Client
	now            func() time.Time
	profileToken   func(context.Context, string, bool, *url.URL) (string, time.Time, error)
	profileChanged func(context.Context, string, func())

	// waiting is set when the last fetch failed for want of a usable subject profile token
	// (none to be had, or the token endpoint refused it), so that the next new token of
	// that profile makes this one try again at once.
	waiting atomic.Bool
}

// PushedExchange is a TokenExchange whose subject tokens are pushed (subject_token =
// "pushed"): it takes them through Push.
type PushedExchange struct{ *TokenExchange }

// ProfileExchange is a TokenExchange whose subject is another profile's token
// (subject_profile): it watches that profile through Watch.
type ProfileExchange struct{ *TokenExchange }

var (
	_ providers.Pusher  = PushedExchange{}
	_ providers.Watcher = ProfileExchange{}
)

func newTokenExchange(cfg *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
	if err := providers.CheckKeys(cfg, Name+" (mode "+modeTokenExchange+")",
		"mode", "key_id", "token_url", "scopes", "audience", "resource",
		"subject_token", "subject_profile", "subject_token_type", "requested_token_type"); err != nil {
		return nil, err
	}
	if cfg.TokenURL == "" {
		return nil, &providers.ConfigError{Key: "token_url", Message: "required: the token endpoint that does the token exchange, e.g. https://login.example.com/oauth/token"}
	}
	if err := providers.CheckEndpoint(cfg.TokenURL); err != nil {
		return nil, &providers.ConfigError{Key: "token_url", Message: err.Error()}
	}
	target, err := url.Parse(cfg.TokenURL)
	if err != nil { // CheckEndpoint parsed it
		return nil, &providers.ConfigError{Key: "token_url", Message: err.Error()}
	}
	for _, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return nil, &providers.ConfigError{Key: "scopes", Message: fmt.Sprintf("%q is not a scope: one scope per list entry, without spaces", s)}
		}
	}
	p := &TokenExchange{
		profile:        env.Name,
		clientID:       cfg.KeyID,
		tokenURL:       cfg.TokenURL,
		target:         target,
		scopes:         cfg.Scopes,
		params:         url.Values{"grant_type": {grantTokenExchange}},
		secrets:        env.Secrets,
		hc:             env.HTTPClient,
		now:            env.Now,
		profileToken:   env.ProfileToken,
		profileChanged: env.ProfileChanged,
	}
	if p.hc == nil {
		p.hc = http.DefaultClient
	}
	if p.now == nil {
		p.now = time.Now
	}
	subjectType, err := tokenType("subject_token_type", cfg.SubjectTokenType)
	if err != nil {
		return nil, err
	}
	requested, err := tokenType("requested_token_type", cfg.RequestedTokenType)
	if err != nil {
		return nil, err
	}
	p.params.Set("subject_token_type", subjectType)
	p.params.Set("requested_token_type", requested)
	for key, v := range map[string]string{"audience": cfg.Audience, "resource": cfg.Resource} {
		if err := providers.CheckSendable(key, v); err != nil {
			return nil, err
		}
		if v != "" {
			p.params.Set(key, v)
		}
	}
	// The value is checked before the two keys are weighed against each other: a wrong
	// value is the first thing to fix.
	switch cfg.SubjectToken {
	case "", subjectSecret, subjectPushed:
	default:
		return nil, &providers.ConfigError{Key: "subject_token", Message: fmt.Sprintf(`%q is not a subject token source: use "secret" (the profile's stored secret, the default) or "pushed" (tokens pushed with `+"`authagent set-token %s`"+`), or set subject_profile instead`, cfg.SubjectToken, env.Name)}
	}
	if cfg.SubjectProfile != "" {
		switch {
		case !validName(cfg.SubjectProfile):
			return nil, &providers.ConfigError{Key: "subject_profile", Message: fmt.Sprintf("%q is not a profile name (letters, digits, '.', '_' and '-')", cfg.SubjectProfile)}
		case cfg.SubjectProfile == env.Name:
			return nil, &providers.ConfigError{Key: "subject_profile", Message: "names this profile itself; name the profile whose token this one trades"}
		case cfg.SubjectToken != "":
			return nil, &providers.ConfigError{Key: "subject_token", Message: "not together with subject_profile: the subject token is that profile's; remove one of them"}
		}
		p.source, p.subjectProfile = subjectProfile, cfg.SubjectProfile
		p.subjectIDToken = subjectType == tokenTypes["id_token"]
		return ProfileExchange{p}, nil
	}
	if cfg.SubjectToken == subjectPushed {
		p.source = subjectPushed
		return PushedExchange{p}, nil
	}
	p.source = subjectSecret
	return p, nil
}

// tokenType reads a token type key: a short name of tokenTypes, or an absolute URI. Unset
// is "access_token".
func tokenType(key, v string) (string, error) {
	if v == "" {
		return tokenTypes["access_token"], nil
	}
	if urn, ok := tokenTypes[v]; ok {
		return urn, nil
	}
	if u, err := url.Parse(v); err == nil && u.Scheme != "" && !strings.ContainsAny(v, " \t") && !providers.HasControl(v) {
		return v, nil
	}
	return "", &providers.ConfigError{Key: key, Message: fmt.Sprintf(`%q is not a token type: use "access_token", "id_token", "jwt", "refresh_token", "saml1", "saml2" or a URI such as urn:ietf:params:oauth:token-type:access_token`, v)}
}

// validName reports whether name can be a profile's name (the agent's rule, repeated for a
// clear message here): a letter or digit, then up to 63 letters, digits, '.', '_' or '-'.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

// Fetch gets the subject token and trades it.
func (p *TokenExchange) Fetch(ctx context.Context) (*providers.Credential, error) {
	subject, subjectExp, err := p.subject(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := p.exchange(ctx, subject, subjectExp)
	if err == nil {
		p.waiting.Store(false)
	}
	return cred, err
}

// supply says how the user supplies a new subject token.
func (p *TokenExchange) supply() string {
	switch p.source {
	case subjectPushed:
		return fmt.Sprintf("push a new one with `authagent set-token %s`", p.profile)
	case subjectProfile:
		return fmt.Sprintf("log in to profile %s again (`authagent login %s`); this profile then trades its new token by itself", p.subjectProfile, p.subjectProfile)
	}
	return fmt.Sprintf("store a new one with `authagent set-secret %s` (reads it from stdin)", p.profile)
}

// subject returns the subject token and its expiry (zero: unknown). A subject that is
// missing or expired needs the user.
func (p *TokenExchange) subject(ctx context.Context) (string, time.Time, error) {
	var tok string
	var exp time.Time
	switch p.source {
	case subjectProfile:
		if p.profileToken == nil {
			return "", time.Time{}, fmt.Errorf("subject_profile %s: no agent to ask for its token", p.subjectProfile)
		}
		var err error
		tok, exp, err = p.profileToken(ctx, p.subjectProfile, p.subjectIDToken, p.target)
		if err != nil {
			p.waiting.Store(true) // that profile's next token ends the wait, or the backoff
		}
		if errors.Is(err, providers.ErrNeedsLogin) {
			return "", time.Time{}, providers.Mark(providers.ErrNeedsLogin,
				fmt.Errorf("no subject token to trade from profile %s: %w; this profile trades it by itself once %s has one", p.subjectProfile, err, p.subjectProfile))
		}
		if err != nil {
			return "", time.Time{}, fmt.Errorf("get the subject token from profile %s: %w", p.subjectProfile, err)
		}
		return tok, exp, nil
	case subjectPushed:
		raw, err := p.secrets.Get(ctx, providers.PushedTokenKey)
		if errors.Is(err, providers.ErrSecretNotFound) {
			return "", time.Time{}, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("no subject token pushed yet; push one with `authagent set-token %s`", p.profile))
		}
		if err != nil {
			return "", time.Time{}, fmt.Errorf("read the pushed subject token: %w", err)
		}
		var st providers.PushedToken
		if err := json.Unmarshal([]byte(raw), &st); err != nil || st.Token == "" {
			return "", time.Time{}, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("the stored pushed subject token is unreadable; %s", p.supply()))
		}
		tok = st.Token
		if st.ExpiresAt != nil {
			exp = st.ExpiresAt.UTC()
		}
	default:
		secret, err := p.secrets.Get(ctx, providers.SecretKey)
		if errors.Is(err, providers.ErrSecretNotFound) {
			return "", time.Time{}, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("no subject token stored; store it with `authagent set-secret %s` (reads it from stdin)", p.profile))
		}
		if err != nil {
			return "", time.Time{}, fmt.Errorf("read the subject token: %w", err)
		}
		tok = secret
		exp, _ = providers.JWTExpiry(secret)
	}
	// A long-lived subject token (a day's ID token) ends some day: then only the user can
	// bring a new one, and asking the server again would only be refused.
	if !exp.IsZero() && exp.Sub(p.now()) < providers.MinLife {
		return "", time.Time{}, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("the subject token expired at %s; %s", exp.UTC().Format(time.RFC3339), p.supply()))
	}
	return tok, exp, nil
}

// clientSecret is the client secret for client authentication: the stored secret, when
// there is a client (key_id) and the secret is not the subject token. "" means none.
func (p *TokenExchange) clientSecret(ctx context.Context) (string, error) {
	if p.clientID == "" || p.source == subjectSecret {
		return "", nil
	}
	secret, err := p.secrets.Get(ctx, providers.SecretKey)
	if errors.Is(err, providers.ErrSecretNotFound) {
		return "", nil // a public client
	}
	if err != nil {
		return "", fmt.Errorf("read client secret: %w", err)
	}
	return secret, nil
}

// exchange trades subject (which expires at subjectExp, zero: unknown) at the token
// endpoint. The protocol is x/oauth2's: RFC 8693 §2.1's request is a client credentials
// request with its own grant_type (clientcredentials lets grant_type be replaced for this)
// and parameters, and §2.2's answer is an RFC 6749 token response.
func (p *TokenExchange) exchange(ctx context.Context, subject string, subjectExp time.Time) (*providers.Credential, error) {
	clientSecret, err := p.clientSecret(ctx)
	if err != nil {
		return nil, err
	}
	params := url.Values{}
	for k, v := range p.params {
		params[k] = v
	}
	params.Set("subject_token", subject)
	c := &clientcredentials.Config{
		ClientID:       p.clientID,
		ClientSecret:   clientSecret,
		TokenURL:       p.tokenURL,
		Scopes:         p.scopes,
		EndpointParams: params,
		AuthStyle:      oauth2.AuthStyleInParams, // client_id only, or nothing
	}
	if clientSecret != "" {
		c.AuthStyle = oauth2.AuthStyleInHeader // RFC 6749 §2.3.1: every server must accept Basic
	}
	sent := p.now()
	tok, err := c.Token(context.WithValue(ctx, oauth2.HTTPClient, p.hc))
	if err != nil {
		return nil, p.explain(err, subject, clientSecret)
	}
	exp := providers.ExpiryFrom(sent, tok.Extra("expires_in"), tok.AccessToken)
	if !subjectExp.IsZero() && (exp.IsZero() || subjectExp.Before(exp)) {
		exp = subjectExp // what was traded for a token ends with it
	}
	typ := tok.Type()
	if strings.EqualFold(typ, "N_A") {
		typ = "Bearer" // RFC 8693 §2.2.1: not an access token; it is still sent as one
	}
	return providers.TokenCredential(typ, tok.AccessToken, exp), nil
}

// explain turns an OAuth or network failure into a message that says what happened and
// what to do next. An answer no retry can change needs the user (ErrNeedsLogin): a refused
// subject token, a client or request the server will not take. Anything else may pass, so
// the agent retries it with backoff. No message holds the subject token, the client secret
// or a response body.
func (p *TokenExchange) explain(err error, subject, clientSecret string) error {
	const doing = "exchange the subject token"
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		if terr, ok := providers.ExplainTransport(doing, "the token endpoint", err); ok {
			return terr
		}
		return fmt.Errorf("%s: the token endpoint at %s sent an answer that is not a token response: %w", doing, providers.HostOf(p.tokenURL), err)
	}
	desc := providers.Scrub(re.ErrorDescription, subject, clientSecret)
	if desc != "" {
		desc = ": " + desc
	}
	code := re.ErrorCode
	var msg string
	switch {
	case providers.DeadGrant(code):
		msg = fmt.Sprintf("the token endpoint refused the subject token (%s%s); %s", code, desc, p.supply())
	case code == "invalid_request":
		// RFC 8693 §2.2.2: the answer to a subject token that is invalid for any reason.
		msg = fmt.Sprintf("the token endpoint refused the token exchange (invalid_request%s): the subject token is invalid, expired or revoked, or the server does not take this request; %s, or check subject_token_type and requested_token_type", desc, p.supply())
	case code == "invalid_target":
		msg = fmt.Sprintf("the token endpoint will not issue a token for audience %q, resource %q (invalid_target%s); fix audience or resource in the profile", p.params.Get("audience"), p.params.Get("resource"), desc)
	case code == "invalid_client" && p.source == subjectSecret:
		msg = fmt.Sprintf("the token endpoint refused client %q (invalid_client%s): key_id is wrong, or the client must authenticate with a secret, which it cannot while the stored secret is the subject token; use subject_token = \"pushed\" and store the client secret with `authagent set-secret %s`", p.clientID, desc, p.profile)
	case code == "invalid_client":
		msg = fmt.Sprintf("the token endpoint refused client %q (invalid_client%s): key_id or the stored client secret is wrong; store the right secret with `authagent set-secret %s`", p.clientID, desc, p.profile)
	case code == "unauthorized_client":
		msg = fmt.Sprintf("client %q may not use token exchange (unauthorized_client%s); allow the grant %s for it at the OAuth server", p.clientID, desc, grantTokenExchange)
	case code == "unsupported_grant_type":
		msg = fmt.Sprintf("the token endpoint does not offer token exchange (unsupported_grant_type%s); check token_url", desc)
	case code == "invalid_scope":
		msg = fmt.Sprintf("the token endpoint refused the scopes %q (invalid_scope%s); fix scopes in the profile", p.scopes, desc)
	case providers.ClientConfigError(code):
		msg = fmt.Sprintf("the token endpoint refused the client's configuration (%s%s); check key_id, token_url and the client's registration at the OAuth server", code, desc)
	case code == "":
		status := "no answer"
		if re.Response != nil {
			status = providers.Scrub(re.Response.Status, subject, clientSecret)
		}
		return fmt.Errorf("%s: the token endpoint at %s answered %s without an OAuth error", doing, providers.HostOf(p.tokenURL), status)
	default:
		return fmt.Errorf("%s: the token endpoint answered %s%s", doing, code, desc)
	}
	if p.source == subjectProfile && (providers.DeadGrant(code) || code == "invalid_request") {
		p.waiting.Store(true) // that profile's next token may be taken
	}
	return providers.Mark(providers.ErrNeedsLogin, errors.New(msg))
}

// Push checks a subject token handed to the agent, trades it, and keeps it in the secret
// store (it survives a restart) once the token endpoint took it. expiresAt may be zero;
// the token's JWT exp claim is then used, if any. A token the endpoint does not take, for
// whatever reason, is not kept: the one pushed before stays.
func (p PushedExchange) Push(ctx context.Context, token string, expiresAt time.Time) (*providers.Credential, error) {
	token = strings.TrimSpace(token)
	if err := tokencmd.CheckToken(token); err != nil {
		return nil, fmt.Errorf("the pushed token %w", err)
	}
	exp := expiresAt
	if exp.IsZero() {
		exp, _ = providers.JWTExpiry(token)
	}
	exp = exp.UTC()
	if err := providers.CheckArrival(exp, p.now(), nil); err != nil {
		return nil, fmt.Errorf("the pushed token: %w", err)
	}
	cred, err := p.exchange(ctx, token, exp)
	if err != nil {
		return nil, fmt.Errorf("the pushed token is not kept (a token pushed before stays): %w", err)
	}
	st := providers.PushedToken{Token: token}
	if !exp.IsZero() {
		st.ExpiresAt = &exp
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode pushed token: %w", err)
	}
	if err := p.secrets.Set(ctx, providers.PushedTokenKey, string(b)); err != nil {
		return nil, providers.Mark(providers.ErrSecretStore, fmt.Errorf("store pushed token: %w", err))
	}
	return cred, nil
}

// Watch calls changed when the subject profile has a new usable credential while this
// profile waits for one (its last fetch found none, or the token endpoint refused it), so
// that it trades again at once rather than staying in needs_login. It returns when ctx ends.
func (p ProfileExchange) Watch(ctx context.Context, changed func()) error {
	if p.profileChanged == nil {
		return nil
	}
	p.profileChanged(ctx, p.subjectProfile, func() {
		if p.waiting.CompareAndSwap(true, false) {
			changed()
		}
	})
	return nil
}
