// Package devicecode is the provider for a user's login at an OpenID provider or a plain
// OAuth server, under the kind names "oidc" and "devicecode" (its first name): discovery,
// two ways to log in — the device flow (RFC 8628) and the browser flow (authorization
// code with PKCE through a loopback redirect, RFC 8252) — then, whichever started the
// grant, refresh with rotation persisted before use, verified ID tokens, and RFC 7009
// revocation at logout. The protocol is golang.org/x/oauth2's and go-oidc's; this package
// adds what the agent needs around them: which flow runs, where the refresh token lives
// and what each failure means for the user. When to refresh is the agent's business, not
// this package's; the loopback listener is package loopback's.
package devicecode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/loopback"
)

// Name and OIDCName are the kind's names in the config: one provider, two names.
// They differ only in the default of the login key: a "devicecode" profile logs in
// with the device flow unless it says otherwise, as it did before there was a browser
// login, and an "oidc" profile chooses by itself ("auto").
const (
	Name     = "devicecode"
	OIDCName = "oidc"
)

// loginAuto is the login key's value that picks a flow for each login (see chooseFlow).
const loginAuto = "auto"

// DefaultScopes ask for an ID token and a refresh token.
var defaultScopes = []string{"openid", "profile", "offline_access"}

// Provider logs in one profile, with the device flow or the browser, and refreshes its
// access token.
type Provider struct {
	name    string
	kind    string // Name or OIDCName, as the profile says
	login   string // the login key, its default filled in
	cfg     providers.ProfileConfig
	secrets providers.Secrets
	hc      *http.Client
	now     func() time.Time

	mu        sync.Mutex // guards ep, pendingRT, revoked and id
	ep        *endpoints
	pendingRT string   // a rotated refresh token the store refused; used until it is saved
	revoked   [32]byte // SHA-256 of the refresh token Logout last revoked
	id        idToken  // the ID token served until a newer one comes
}

type endpoints struct {
	oauth2.Endpoint
	Revocation string
	// op is the discovered OpenID provider, whose keys verify ID tokens; nil for a plain
	// OAuth server (explicit endpoints), which has no ID tokens.
	op *oidc.Provider
	// Why the endpoint of each login flow, and of revocation, cannot be used: nil when it
	// can, errNoEndpoint when there is none. Each is checked where it is used, so that a
	// bad one the profile never uses breaks nothing.
	authErr, deviceErr, revocationErr error
}

// New is the providers.Factory for devicecode and oidc profiles. It checks the
// configuration only; discovery happens on first use, so an IdP that is down does not stop
// the agent.
func New(cfg *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
	kind := Name
	if cfg.Provider == OIDCName {
		kind = OIDCName
	}
	if err := providers.CheckKeys(cfg, kind, "issuer", "device_auth_url", "auth_url", "token_url", "revocation_url",
		"client_id", "scopes", "audience", "resource", "login", "redirect_port", "redirect_path", "login_timeout", "kube_token"); err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		return nil, &providers.ConfigError{Key: "client_id", Message: "required: the OAuth client id registered at the identity provider"}
	}
	// These go into form bodies and URLs the identity provider reads.
	for key, v := range map[string]string{"client_id": cfg.ClientID, "audience": cfg.Audience, "resource": cfg.Resource} {
		if err := providers.CheckSendable(key, v); err != nil {
			return nil, err
		}
	}
	for _, sc := range cfg.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n") || providers.HasControl(sc) {
			return nil, &providers.ConfigError{Key: "scopes", Message: fmt.Sprintf("%q is not a scope: one scope per list entry, without spaces", sc)}
		}
	}
	switch {
	case cfg.Issuer != "" && (cfg.DeviceAuthURL != "" || cfg.TokenURL != "" || cfg.AuthURL != ""):
		return nil, &providers.ConfigError{Key: "issuer", Message: "set either issuer (discovery) or token_url with device_auth_url and auth_url, not both"}
	case cfg.Issuer == "" && (cfg.TokenURL == "" || cfg.DeviceAuthURL == "" && cfg.AuthURL == ""):
		return nil, &providers.ConfigError{Key: "issuer", Message: "required: the OpenID issuer URL, or for a plain OAuth server token_url with device_auth_url (device login) and/or auth_url (browser login)"}
	}
	for key, u := range map[string]string{"issuer": cfg.Issuer, "device_auth_url": cfg.DeviceAuthURL, "auth_url": cfg.AuthURL,
		"token_url": cfg.TokenURL, "revocation_url": cfg.RevocationURL} {
		if u == "" {
			continue
		}
		if err := checkURL(u); err != nil {
			return nil, &providers.ConfigError{Key: key, Message: err.Error()}
		}
	}
	login, err := checkLoginKeys(cfg, kind)
	if err != nil {
		return nil, err
	}
	p := &Provider{name: env.Name, kind: kind, login: login, cfg: *cfg, secrets: env.Secrets, hc: env.HTTPClient, now: env.Now}
	if len(p.cfg.Scopes) == 0 {
		p.cfg.Scopes = defaultScopes
	}
	if cfg.KubeToken == idTokenName && !p.openID() {
		return nil, &providers.ConfigError{Key: "kube_token", Message: `"id_token" needs "openid" in scopes: without it the identity provider issues no ID token`}
	}
	if p.hc == nil {
		p.hc = http.DefaultClient
	}
	if p.now == nil {
		p.now = time.Now
	}
	if cfg.Issuer == "" {
		p.ep = configured(cfg)
	}
	return p, nil
}

// idTokenName is the kube_token value (and the socket API's token= value) for the ID token.
const idTokenName = "id_token"

// maxLoginTimeout is the longest login_timeout: the agent ends every login then.
const maxLoginTimeout = 15 * time.Minute

// checkLoginKeys checks the keys of the browser login and kube_token, and returns the
// login key with its default filled in.
func checkLoginKeys(cfg *providers.ProfileConfig, kind string) (string, error) {
	login := cfg.Login
	switch login {
	case "":
		login = loginAuto
		if kind == Name {
			login = providers.FlowDevice
		}
	case loginAuto, providers.FlowBrowser, providers.FlowDevice:
	default:
		return "", &providers.ConfigError{Key: "login", Message: fmt.Sprintf(`want "auto", "browser" or "device", not %q`, cfg.Login)}
	}
	if cfg.Issuer == "" {
		switch {
		case login == providers.FlowDevice && cfg.DeviceAuthURL == "":
			return "", &providers.ConfigError{Key: "login", Message: fmt.Sprintf(`login is "device" (the default for provider %q), which needs device_auth_url; set device_auth_url, or login = "browser"`, kind)}
		case login == providers.FlowBrowser && cfg.AuthURL == "":
			return "", &providers.ConfigError{Key: "login", Message: `login is "browser", which needs auth_url (the authorization endpoint); set auth_url, or login = "device"`}
		}
	}
	for _, port := range cfg.RedirectPort {
		if port < 0 || port > 65535 {
			return "", &providers.ConfigError{Key: "redirect_port", Message: fmt.Sprintf("%d is not a TCP port: want 1 to 65535, or 0 for any free port", port)}
		}
	}
	if p := cfg.RedirectPath; p != "" {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# \t") || providers.HasControl(p) {
			return "", &providers.ConfigError{Key: "redirect_path", Message: fmt.Sprintf("%q is not a URL path: start it with / and leave out ?, # and spaces", p)}
		}
		if p == loopback.StartPath {
			return "", &providers.ConfigError{Key: "redirect_path", Message: fmt.Sprintf("%s is the path of the login's start page on 127.0.0.1; choose another redirect path", p)}
		}
	}
	if d := cfg.LoginTimeout.D(); d != 0 && (d < time.Second || d > maxLoginTimeout) {
		return "", &providers.ConfigError{Key: "login_timeout", Message: fmt.Sprintf("%s is out of range: want 1s to %s (the agent ends every login then)", d, maxLoginTimeout)}
	}
	switch cfg.KubeToken {
	case "", "access_token":
	case idTokenName:
		if cfg.Issuer == "" {
			return "", &providers.ConfigError{Key: "kube_token", Message: `"id_token" needs issuer: ID tokens are verified with the issuer's keys, and a plain OAuth server has none`}
		}
	default:
		return "", &providers.ConfigError{Key: "kube_token", Message: fmt.Sprintf(`want "access_token" or "id_token", not %q`, cfg.KubeToken)}
	}
	return login, nil
}

func (p *Provider) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.hc)
}

// endpoints discovers the IdP's endpoints once; a failure is not cached.
func (p *Provider) endpoints(ctx context.Context) (*endpoints, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ep != nil {
		return p.ep, nil
	}
	// The key set op keeps fetches with a context without the fetch's cancellation:
	// later verifications reuse it.
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.hc), p.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OpenID discovery at %s: %w", p.cfg.Issuer, err)
	}
	var extra struct {
		Revocation string `json:"revocation_endpoint"`
	}
	op.Claims(&extra)
	ep := &endpoints{Endpoint: op.Endpoint(), Revocation: extra.Revocation, op: op,
		authErr:       discovered("authorization_endpoint", op.Endpoint().AuthURL),
		deviceErr:     discovered("device_authorization_endpoint", op.Endpoint().DeviceAuthURL),
		revocationErr: discovered("revocation_endpoint", extra.Revocation),
	}
	// Every use needs the token endpoint; the others are checked where they are used.
	if err := discovered("token_endpoint", ep.TokenURL); err != nil {
		return nil, err
	}
	p.ep = ep
	return ep, nil
}

// configured is the endpoints a profile without an issuer names, checked in New.
func configured(cfg *providers.ProfileConfig) *endpoints {
	ep := &endpoints{Endpoint: oauth2.Endpoint{AuthURL: cfg.AuthURL, DeviceAuthURL: cfg.DeviceAuthURL, TokenURL: cfg.TokenURL}, Revocation: cfg.RevocationURL}
	for _, e := range []struct {
		url string
		err *error
	}{{cfg.AuthURL, &ep.authErr}, {cfg.DeviceAuthURL, &ep.deviceErr}, {cfg.RevocationURL, &ep.revocationErr}} {
		if e.url == "" {
			*e.err = errNoEndpoint
		}
	}
	return ep
}

func (p *Provider) config(ctx context.Context) (*oauth2.Config, *endpoints, error) {
	ep, err := p.endpoints(ctx)
	if err != nil {
		return nil, nil, err
	}
	c := &oauth2.Config{ClientID: p.cfg.ClientID, Scopes: p.cfg.Scopes, Endpoint: ep.Endpoint}
	secret, err := p.secrets.Get(ctx, providers.SecretKey)
	switch {
	case err == nil:
		c.ClientSecret = secret
		c.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	case errors.Is(err, providers.ErrSecretNotFound):
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	default:
		return nil, nil, fmt.Errorf("read client secret: %w", err)
	}
	return c, ep, nil
}

func (p *Provider) extraParams() []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	if p.cfg.Audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", p.cfg.Audience))
	}
	if p.cfg.Resource != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", p.cfg.Resource))
	}
	return opts
}

// Login runs the login the profile's login key names, as LoginWith does without a
// caller's choice and without a display (so "auto" takes the device flow when the
// identity provider offers it).
func (p *Provider) Login(ctx context.Context, show func(providers.Challenge)) (*providers.Credential, error) {
	return p.LoginWith(ctx, providers.LoginOptions{}, show)
}

// LoginWith runs one login, in the flow opts.Flow names, else the profile's login key
// ("auto": see chooseFlow). The refresh token is stored before it returns. An error marked
// providers.ErrInvalidRequest says that the flow asked for cannot run here.
func (p *Provider) LoginWith(ctx context.Context, opts providers.LoginOptions, show func(providers.Challenge)) (*providers.Credential, error) {
	c, ep, err := p.config(ctx)
	if err != nil {
		return nil, err
	}
	flow, err := chooseFlow(p.name, opts.Flow, p.login, opts.Display, ep.authErr, ep.deviceErr)
	if err != nil {
		return nil, providers.Mark(providers.ErrInvalidRequest, err)
	}
	if flow == providers.FlowBrowser {
		return p.loginBrowser(ctx, c, show)
	}
	return p.loginDevice(ctx, c, show)
}

// loginDevice runs the device flow: it asks for a user code, shows it, and polls until
// the user approved, denied, or the code expired (or login_timeout passed).
func (p *Provider) loginDevice(ctx context.Context, c *oauth2.Config, show func(providers.Challenge)) (*providers.Credential, error) {
	outer := ctx
	if d := p.cfg.LoginTimeout.D(); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	authOpts := p.extraParams()
	if c.ClientSecret != "" {
		// x/oauth2 sends only client_id to the device endpoint; a confidential client
		// must authenticate there too (RFC 8628 §3.1).
		authOpts = append(authOpts, oauth2.SetAuthURLParam("client_secret", c.ClientSecret))
	}
	da, err := c.DeviceAuth(p.ctx(ctx), authOpts...)
	if err != nil {
		return nil, p.explain("start the device login", err, c.ClientSecret)
	}
	if err := checkDeviceAuth(da, time.Now()); err != nil {
		return nil, err
	}
	interval := time.Duration(da.Interval) * time.Second
	left := time.Until(da.Expiry)
	if d, ok := ctx.Deadline(); ok && time.Until(d) < left {
		left = time.Until(d)
	}
	show(providers.Challenge{
		Flow:                    providers.FlowDevice,
		UserCode:                da.UserCode,
		VerificationURI:         da.VerificationURI,
		VerificationURIComplete: da.VerificationURIComplete,
		ExpiresAt:               p.now().Add(left).UTC(),
		Interval:                interval,
	})
	tok, err := c.DeviceAccessToken(p.ctx(ctx), da, p.extraParams()...)
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && !time.Now().Before(da.Expiry):
			return nil, fmt.Errorf("the code %s expired before the login was completed; run `authagent login %s` again", da.UserCode, p.name)
		case errors.Is(err, context.DeadlineExceeded) && outer.Err() == nil && ctx.Err() != nil:
			return nil, fmt.Errorf("the login was not completed within login_timeout (%s); run `authagent login %s` again", p.cfg.LoginTimeout.D(), p.name)
		case errors.Is(err, context.Canceled):
			return nil, errors.New("login cancelled")
		}
		return nil, p.explain("complete the device login", err, c.ClientSecret, da.DeviceCode)
	}
	received := p.now()
	return p.loggedIn(outer, tok, received, "")
}

// loggedIn finishes a login with the token answer that started the grant: it refuses an
// answer without a refresh token, checks the ID token (with the login's nonce when it
// sent one: a browser login then fails on an ID token that does not verify), and stores
// the grant.
func (p *Provider) loggedIn(ctx context.Context, tok *oauth2.Token, sent time.Time, nonce string) (*providers.Credential, error) {
	if tok.AccessToken == "" {
		return nil, errors.New("the token endpoint answered without an access token")
	}
	if tok.RefreshToken == "" {
		return nil, fmt.Errorf("the identity provider issued no refresh token, so the login would end when the access token expires; add \"offline_access\" to scopes (or allow refresh tokens for client %s)", p.cfg.ClientID)
	}
	c := p.credential(tok, sent)
	if err := p.attachIDToken(ctx, c, tok, nonce, false); err != nil {
		return nil, err
	}
	if err := p.save(ctx, tok); err != nil {
		c.Warning = err.Error()
	}
	return c, nil
}

// Fetch trades the stored refresh token for a new access token. A rotated refresh token
// is saved before the new access token is returned.
func (p *Provider) Fetch(ctx context.Context) (*providers.Credential, error) {
	p.mu.Lock()
	rt := p.pendingRT
	p.mu.Unlock()
	if rt == "" {
		if err := p.checkGrantOwner(ctx); err != nil {
			return nil, err
		}
		stored, err := p.secrets.Get(ctx, providers.RefreshTokenKey)
		if errors.Is(err, providers.ErrSecretNotFound) {
			return nil, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("not logged in; run `authagent login %s`", p.name))
		}
		if err != nil {
			return nil, fmt.Errorf("read refresh token: %w", err)
		}
		rt = stored
	}
	c, _, err := p.config(ctx)
	if err != nil {
		return nil, err
	}
	sent := p.now()
	tok, err := c.TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return nil, p.explain("refresh the access token", err, rt, c.ClientSecret)
	}
	if tok.AccessToken == "" {
		return nil, errors.New("the token endpoint answered without an access token")
	}
	// When the store refuses the refresh token, it is kept in memory (see save) and the
	// access token is still good: the credential carries the failure as a warning instead
	// of being thrown away, which would only make the agent ask the identity provider again.
	cred := p.credential(tok, sent)
	p.attachIDToken(ctx, cred, tok, "", true)
	if err := p.save(ctx, tok); err != nil {
		cred.Warning = err.Error()
	}
	return cred, nil
}

// save writes a new refresh token to the store. When the store fails, the new refresh
// token is kept in memory for the next refresh: the old one may already be void, and a
// crash now must not be the only copy's end if it can be helped.
func (p *Provider) save(ctx context.Context, tok *oauth2.Token) error {
	// Which server and client the grant belongs to goes first: a refresh token never
	// stands in the store without it (a failed write is kept and retried by the agent).
	p.secrets.Set(ctx, providers.GrantKey, p.grantOwner())
	if err := p.secrets.Set(ctx, providers.RefreshTokenKey, tok.RefreshToken); err != nil {
		p.mu.Lock()
		p.pendingRT = tok.RefreshToken
		p.mu.Unlock()
		return fmt.Errorf("save the new refresh token to the secret store (kept in memory until it can be saved): %w", err)
	}
	p.mu.Lock()
	p.pendingRT = ""
	p.mu.Unlock()
	return nil
}

// grantOwner names the server and client this profile's grants are issued by and to: the
// issuer (or token endpoint) and the client id, hashed.
func (p *Provider) grantOwner() string {
	sum := sha256.Sum256([]byte(p.cfg.Issuer + "\n" + p.cfg.TokenURL + "\n" + p.cfg.ClientID))
	return hex.EncodeToString(sum[:])
}

// checkGrantOwner refuses a stored grant that another server or client issued: the profile
// was redefined (add, PUT, a hand edit) since the login, and its refresh token must go
// neither to the new token endpoint nor to its revocation endpoint. The stale grant is
// deleted. A grant stored before grants were recorded (no GrantKey) is taken as this one's.
func (p *Provider) checkGrantOwner(ctx context.Context) error {
	owner, err := p.secrets.Get(ctx, providers.GrantKey)
	if errors.Is(err, providers.ErrSecretNotFound) || (err == nil && owner == p.grantOwner()) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the stored grant's owner: %w", err)
	}
	for _, k := range []string{providers.RefreshTokenKey, providers.IDTokenKey, providers.GrantKey} {
		if err := p.secrets.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete the login of the profile's earlier server: %w", err)
		}
	}
	return providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("the stored login was made with another identity provider or client (the profile changed since), so it is not used and was deleted; run `authagent login %s`", p.name))
}

// credential builds the credential; expires_in counts from sent on the agent's clock
// (x/oauth2 counts it on the wall clock).
func (p *Provider) credential(tok *oauth2.Token, sent time.Time) *providers.Credential {
	exp := providers.ExpiryFrom(sent, tok.Extra("expires_in"), tok.AccessToken)
	return providers.TokenCredential(tok.Type(), tok.AccessToken, exp)
}

// Device codes whose answer has no usable expires_in (RFC 8628 §3.2 requires one) are
// taken to live defaultCodeLife, the most common lifetime in the field.
const defaultCodeLife = 15 * time.Minute

// maxPollInterval caps the polling interval a device answer asks for, in seconds.
const maxPollInterval = 300

// checkDeviceAuth refuses a device authorization answer without the fields RFC 8628 §3.2
// requires, and fills in what a sloppy one leaves out or gets wrong: a missing or
// non-positive expires_in, and an interval below one second or above maxPollInterval
// (x/oauth2 polls with a ticker, which must be given a positive duration that fits). now is the wall clock x/oauth2 counted the
// expiry on.
func checkDeviceAuth(da *oauth2.DeviceAuthResponse, now time.Time) error {
	var missing []string
	if da.DeviceCode == "" {
		missing = append(missing, "device_code")
	}
	if da.UserCode == "" {
		missing = append(missing, "user_code")
	}
	if da.VerificationURI == "" {
		missing = append(missing, "verification_uri")
	}
	if da.UserCode != "" && providers.HasControl(da.UserCode) {
		return errors.New("start the device login: the identity provider sent a user code with control characters")
	}
	if len(missing) > 0 {
		return fmt.Errorf("start the device login: the device authorization endpoint answered without %s (RFC 8628 §3.2); is device_auth_url the right endpoint?", strings.Join(missing, ", "))
	}
	for _, u := range []string{da.VerificationURI, da.VerificationURIComplete} {
		if u == "" {
			continue
		}
		// It is shown to the user, printed, and opened in the browser: only a well-formed
		// http(s) URL, as it arrived.
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return errors.New("start the device login: the identity provider sent a verification URI that is not an http(s) URL")
		}
		if err := checkURIChars(u); err != nil {
			return fmt.Errorf("start the device login: the identity provider's verification URI %w", err)
		}
	}
	if !da.Expiry.After(now) {
		da.Expiry = now.Add(defaultCodeLife)
	}
	switch {
	case da.Interval < 1:
		da.Interval = 5 // RFC 8628 §3.2: "If no value is provided, clients MUST use 5"
	case da.Interval > maxPollInterval:
		// x/oauth2 multiplies by time.Second: a huge interval would overflow into a
		// negative (a panic in time.NewTicker) or a tiny duration (a polling storm).
		da.Interval = maxPollInterval
	}
	return nil
}

// Logout revokes the refresh token where the IdP offers RFC 7009 revocation, then deletes
// it. A failed revocation is reported, but the token is deleted here anyway: the user
// asked to be logged out.
func (p *Provider) Logout(ctx context.Context) error {
	if err := p.checkGrantOwner(ctx); errors.Is(err, providers.ErrNeedsLogin) {
		return nil // another server's grant: deleted, and not sent to this one's revocation
	} else if err != nil {
		return err
	}
	rt, err := p.secrets.Get(ctx, providers.RefreshTokenKey)
	if err != nil && !errors.Is(err, providers.ErrSecretNotFound) {
		return fmt.Errorf("read refresh token: %w", err)
	}
	var revokeErr error
	if rt != "" {
		sum := sha256.Sum256([]byte(rt))
		p.mu.Lock()
		done := p.revoked == sum
		p.mu.Unlock()
		// A refresh token revoked once is not sent again: a store that fails to delete it
		// must not turn repeated logouts into repeated revocations.
		if !done {
			if revokeErr = p.revoke(ctx, rt); revokeErr == nil {
				p.mu.Lock()
				p.revoked = sum
				p.mu.Unlock()
			}
		}
	}
	p.mu.Lock()
	p.pendingRT = ""
	p.id = idToken{loaded: true}
	p.mu.Unlock()
	var errs []error
	for _, k := range []string{providers.RefreshTokenKey, providers.IDTokenKey, providers.GrantKey} {
		if err := p.secrets.Delete(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("delete %s from the secret store: %w", k, err))
		}
	}
	if revokeErr != nil {
		errs = append(errs, fmt.Errorf("revoking the refresh token at the identity provider failed (it stays valid there until it expires): %w", revokeErr))
	}
	if len(errs) > 0 {
		return fmt.Errorf("logged out here, but: %w", errors.Join(errs...))
	}
	return nil
}

func (p *Provider) revoke(ctx context.Context, rt string) error {
	c, ep, err := p.config(ctx)
	if err != nil {
		return err
	}
	switch {
	case errors.Is(ep.revocationErr, errNoEndpoint):
		return nil // the IdP offers no revocation; forgetting the token is all we can do
	case ep.revocationErr != nil:
		return ep.revocationErr
	}
	form := url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}
	if c.ClientSecret == "" {
		form.Set("client_id", c.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.Revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("revocation endpoint: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation endpoint answered %s", providers.Scrub(resp.Status, rt, c.ClientSecret))
	}
	return nil
}

// explain turns an OAuth or network failure into a message that says what happened and
// what to do next. It never includes a token: only error codes, and descriptions and
// statuses scrubbed of the known secrets of the call (refresh token, client secret, code,
// verifier) and of anything shaped like a token, should a server echo one.
func (p *Provider) explain(doing string, err error, known ...string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := p.explainCode(doing, re, known)
		if providers.DeadGrant(re.ErrorCode) || providers.ClientConfigError(re.ErrorCode) {
			return providers.Mark(providers.ErrNeedsLogin, msg) // no retry helps
		}
		return msg
	}
	if terr, ok := providers.ExplainTransport(doing, "the identity provider", err); ok {
		return terr
	}
	// What is left are answers that are not a token response (HTML from a proxy, broken
	// JSON, no access_token); oauth2 describes them without the body.
	return fmt.Errorf("%s: the identity provider sent an answer that is not a token response: %w", doing, err)
}

// explainCode words an OAuth error answer.
func (p *Provider) explainCode(doing string, re *oauth2.RetrieveError, known []string) error {
	desc := ""
	if re.ErrorDescription != "" {
		desc = ": " + providers.Scrub(re.ErrorDescription, known...)
	}
	switch code := re.ErrorCode; {
	case providers.DeadGrant(code):
		return fmt.Errorf("the identity provider ended this login (%s%s); run `authagent login %s`", code, desc, p.name)
	case code == "access_denied":
		return fmt.Errorf("the login was denied at the identity provider%s; run `authagent login %s` to try again", desc, p.name)
	case code == "expired_token":
		return fmt.Errorf("the code expired before the login was completed; run `authagent login %s` again", p.name)
	case code == "invalid_client", code == "unauthorized_client":
		return fmt.Errorf("the identity provider refused client %q (%s%s); check client_id, and the client secret (store it with `authagent set-secret %s`)", p.cfg.ClientID, code, desc, p.name)
	case code == "invalid_scope":
		return fmt.Errorf("the identity provider refused the scopes %q (invalid_scope%s); fix scopes in the profile", p.cfg.Scopes, desc)
	case code == "unsupported_grant_type":
		return fmt.Errorf("the identity provider does not allow this grant for client %q (unsupported_grant_type%s); allow refresh tokens and the login's flow (device code, or authorization code) for the client at the identity provider", p.cfg.ClientID, desc)
	case code == "":
		status := "no answer"
		if re.Response != nil {
			status = providers.Scrub(re.Response.Status, known...)
		}
		return fmt.Errorf("%s: the identity provider answered %s without an OAuth error", doing, status)
	default:
		return fmt.Errorf("%s: the identity provider answered %s%s", doing, code, desc)
	}
}
