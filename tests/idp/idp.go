// Package idp is a test-only OpenID provider built on zitadel/oidc's op package
// (github.com/zitadel/oidc/v3/pkg/op, OpenID certified) and its example storage
// and example device login UI.
//
// Start runs the provider in-process on loopback over plain http, so that
// authagent's end-to-end tests exercise a real, independently written
// implementation of the OAuth 2.0 Device Authorization Grant (RFC 8628),
// refresh tokens and token revocation (RFC 7009), instead of a fake written
// to match authagent's own assumptions.
//
// The example storage is wrapped (see storage.go) so that:
//
//   - a public device client (no secret) may use the device_code and
//     refresh_token grants;
//   - access tokens live Options.AccessTokenLifetime;
//   - refresh tokens are rotated on every use, and presenting a rotated
//     refresh token again revokes the whole grant (reuse detection);
//   - the test can make the provider forget every grant and can count token
//     requests, detected reuses and revocations;
//   - a confidential service client (ServiceClient) may use the OAuth 2.0
//     client credentials grant (RFC 6749 section 4.4), with a secret made
//     up at Start; its access tokens live Options.AccessTokenLifetime too
//     and are accepted by userinfo (CheckAccessToken, AccessTokenSubject);
//   - the same service client may trade any live token of the provider's
//     users for an access token (or an ID token) with OAuth 2.0 Token
//     Exchange (RFC 8693), for any audience, resource and scopes; the
//     exchanged access tokens live Options.ExchangedTokenLifetime and are
//     accepted by userinfo too. TokenExchanges lists what was granted.
//
// The user step of the device flow is completed by Approve and Deny over
// HTTP, the way a browser would: they fill in the device login form and the
// consent page that zitadel/oidc's example server serves under /device.
//
// The same public client may also log in with the authorization code flow
// and PKCE (RFC 7636) through a loopback redirect (RFC 8252): its registered
// redirect URIs are http://127.0.0.1/ and http://127.0.0.1/callback, and as a
// native client any port of them is allowed (RFC 8252 §7.3). SignIn plays
// the browser: it follows the authorization request, signs in on the example
// server's login form under /login and returns the redirect to the client.
package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// The one user of the provider. Approve logs in as this user.
const (
	Username = "alice"
	Password = "alice-password"
)

// Endpoint paths, relative to the issuer. They are also advertised by
// discovery at /.well-known/openid-configuration.
const (
	PathDiscovery           = "/.well-known/openid-configuration"
	PathDeviceAuthorization = "/device_authorization"
	PathToken               = "/oauth/token"
	PathRevocation          = "/revoke"
	PathUserinfo            = "/userinfo"
	PathDeviceUI            = "/device" // verification_uri
	PathAuthorization       = "/auth"
	PathLoginUI             = "/login" // the example's login form of the code flow
)

// RedirectURIs are the loopback redirect URIs registered for the public
// client; a redirect to any port of them is allowed.
var RedirectURIs = []string{"http://127.0.0.1/", "http://127.0.0.1/callback"}

// Options configures Start. Zero values take the defaults given per field.
type Options struct {
	// AccessTokenLifetime is the lifetime of every access token; expires_in in
	// token responses is this value in whole seconds. Default 10 s.
	AccessTokenLifetime time.Duration
	// DeviceCodeLifetime is how long a device code / user code pair can be
	// approved and polled. Default 5 min.
	DeviceCodeLifetime time.Duration
	// Interval is the device poll interval sent to the client. The wire format
	// has whole seconds, so it is rounded up to at least 1 s. Default 1 s.
	Interval time.Duration
	// ClientID of the public client (token endpoint auth method "none")
	// allowed to use the device_code and refresh_token grants.
	// Default "authagent-cli".
	ClientID string
	// JWTAccessTokens makes access tokens signed JWTs instead of opaque
	// (encrypted) bearer strings.
	JWTAccessTokens bool
	// ServiceClientID is the id of the confidential client allowed to use
	// the client_credentials grant. Its secret is random, made up by Start
	// (see ServiceClient). Default "authagent-svc".
	ServiceClientID string
	// IDTokenLifetime is the lifetime of the public client's ID tokens.
	// Default 1 h.
	IDTokenLifetime time.Duration
	// ExchangedTokenLifetime is the lifetime of the access tokens a token
	// exchange issues. Default AccessTokenLifetime.
	ExchangedTokenLifetime time.Duration
}

// DefaultClientID is the client id used when Options.ClientID is empty.
const DefaultClientID = "authagent-cli"

// DefaultServiceClientID is the service client id used when
// Options.ServiceClientID is empty.
const DefaultServiceClientID = "authagent-svc"

func (o *Options) defaults() {
	if o.AccessTokenLifetime <= 0 {
		o.AccessTokenLifetime = 10 * time.Second
	}
	if o.DeviceCodeLifetime <= 0 {
		o.DeviceCodeLifetime = 5 * time.Minute
	}
	if o.Interval < time.Second {
		o.Interval = time.Second
	}
	o.Interval = (o.Interval + time.Second - 1).Truncate(time.Second)
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ServiceClientID == "" {
		o.ServiceClientID = DefaultServiceClientID
	}
	if o.IDTokenLifetime <= 0 {
		o.IDTokenLifetime = time.Hour
	}
	if o.ExchangedTokenLifetime <= 0 {
		o.ExchangedTokenLifetime = o.AccessTokenLifetime
	}
}

// IdP is a running test OpenID provider.
type IdP struct {
	srv     *httptest.Server
	issuer  string
	opts    Options
	store   *wrappedStorage
	mu      sync.Mutex
	byGrant map[string]int
}

// Start starts an OpenID provider on 127.0.0.1 with a random port. Its
// issuer is "http://127.0.0.1:PORT". It is stopped by t.Cleanup.
func Start(t testing.TB, opts Options) *IdP {
	t.Helper()
	opts.defaults()

	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()

	users := userStore{users: map[string]*storage.User{
		Username: {
			ID:                Username, // the example device UI uses the user name as subject
			Username:          Username,
			Password:          Password,
			FirstName:         "Alice",
			LastName:          "Example",
			Email:             "alice@example.test",
			EmailVerified:     true,
			PreferredLanguage: language.English,
		},
	}}
	// The example's NativeClient is public (auth method none, type native);
	// the wrapper adds the device_code grant to it.
	inner := storage.NewStorageWithClients(users, map[string]*storage.Client{
		opts.ClientID: storage.NativeClient(opts.ClientID, RedirectURIs...),
	})
	ws := newWrappedStorage(inner, opts, randomSecret(t))

	config := &op.Config{
		CryptoKey:                randomKey(t),
		DefaultLogoutRedirectURI: "/",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     opts.DeviceCodeLifetime,
			PollInterval: opts.Interval,
			UserFormPath: PathDeviceUI,
			UserCode:     op.UserCodeBase20,
		},
	}
	// The authorization endpoint is where the example's login form sends the
	// browser back to (its op.AuthCallbackURL): /auth, as the example has it.
	provider, err := op.NewProvider(config, ws, op.StaticIssuer(issuer), op.WithAllowInsecure(),
		op.WithCustomAuthEndpoint(op.NewEndpoint(strings.TrimPrefix(PathAuthorization, "/"))))
	if err != nil {
		t.Fatalf("idp: create provider: %v", err)
	}

	// The example server's router carries the device login and consent
	// pages. Only its /device subtree is used; everything else (discovery,
	// device authorization, token, revocation, ...) is served by provider,
	// which has this package's configuration.
	example := exampleop.SetupServer(issuer, ws, nil, false)

	p := &IdP{
		srv:     srv,
		issuer:  issuer,
		opts:    opts,
		store:   ws,
		byGrant: make(map[string]int),
	}
	mux := http.NewServeMux()
	mux.Handle(PathDeviceUI, example)
	mux.Handle(PathDeviceUI+"/", example)
	mux.Handle(PathLoginUI+"/", example)
	mux.Handle(PathToken, p.countTokenRequests(provider))
	mux.Handle("/", provider)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// Issuer is the issuer URL, "http://127.0.0.1:PORT" without a trailing slash.
func (p *IdP) Issuer() string { return p.issuer }

// ClientID is the id of the public device client.
func (p *IdP) ClientID() string { return p.opts.ClientID }

// ServiceClient returns the id and secret of the confidential client that may
// use the client credentials grant at TokenEndpoint (client authentication by
// HTTP Basic or in the form body).
func (p *IdP) ServiceClient() (id, secret string) {
	return p.opts.ServiceClientID, p.store.serviceSecret
}

// Options returns the effective options, defaults filled in.
func (p *IdP) Options() Options { return p.opts }

// TokenEndpoint, DeviceAuthorizationEndpoint and RevocationEndpoint are the
// absolute endpoint URLs, the same as discovery advertises.
func (p *IdP) TokenEndpoint() string { return p.issuer + PathToken }

// DeviceAuthorizationEndpoint is the RFC 8628 device authorization endpoint.
func (p *IdP) DeviceAuthorizationEndpoint() string { return p.issuer + PathDeviceAuthorization }

// RevocationEndpoint is the RFC 7009 revocation endpoint.
func (p *IdP) RevocationEndpoint() string { return p.issuer + PathRevocation }

func (p *IdP) countTokenRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			// ParseForm is idempotent: the provider reads the parsed form.
			_ = r.ParseForm()
			gt := r.PostForm.Get("grant_type")
			p.mu.Lock()
			p.byGrant[gt]++
			p.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// TokenRequests returns the number of POST requests to the token endpoint so
// far, by grant_type ("urn:ietf:params:oauth:grant-type:device_code",
// "refresh_token", ...), whatever their outcome.
func (p *IdP) TokenRequests() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.byGrant))
	for k, v := range p.byGrant {
		m[k] = v
	}
	return m
}

// ReuseDetected returns how many times a refresh token that had already been
// rotated was presented to the token endpoint. The first such presentation
// revokes the whole grant (every refresh token and access token descended
// from the same device login); every presentation is counted.
func (p *IdP) ReuseDetected() int { return p.store.reuseDetected() }

// ForgetGrants makes the provider forget every grant: every refresh token
// issued so far becomes unknown, so refreshing answers invalid_grant (and a
// rotated token is no longer recognised as reuse). Access tokens already
// issued stay valid until they expire.
func (p *IdP) ForgetGrants() { p.store.forgetGrants() }

// TokenExchanges returns, in order, the token exchanges (RFC 8693) the
// provider granted.
func (p *IdP) TokenExchanges() []Exchange { return p.store.tokenExchanges() }

// ServiceTokensIssued returns, in order, when each access token of the
// client credentials grant was issued and when it expires.
func (p *IdP) ServiceTokensIssued() []IssuedToken { return p.store.serviceTokens() }

// RevokedRefreshTokens returns how many live refresh tokens were revoked
// through the RFC 7009 revocation endpoint.
func (p *IdP) RevokedRefreshTokens() int { return p.store.revokedRefreshTokens() }

// ActiveGrants returns how many grants currently hold a usable refresh token.
func (p *IdP) ActiveGrants() int { return p.store.activeGrants() }

// Approve completes the user step of the device flow for userCode as user
// "alice" and allows the request, over HTTP like a browser: it opens the
// verification page, submits the example server's device login form
// (POST /device/login) and presses "Allow" on the consent page
// (GET /device/confirm?action=allowed), with a fresh cookie jar.
func (p *IdP) Approve(userCode string) error { return p.userStep(userCode, "allowed") }

// Deny is Approve, pressing "Deny" on the consent page: the polling client
// then gets access_denied.
func (p *IdP) Deny(userCode string) error { return p.userStep(userCode, "denied") }

// SignIn completes the user step of a browser login (authorization code
// flow) as user "alice", over HTTP like a browser, with a fresh cookie jar:
// it opens authURL (the client's authorization request), which leads to
// the example server's login form, submits it, and follows the provider's
// redirects until one leaves the provider. That one, the redirect to the
// client's redirect_uri with code and state (or an error), is returned
// without being followed.
func (p *IdP) SignIn(authURL string) (*url.URL, error) { return SignIn(p.issuer, authURL) }

// SignIn is IdP.SignIn for the provider at issuer, for a program that has
// only its URL (a test's stand-in for the browser).
func SignIn(issuer, authURL string) (*url.URL, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// follow GETs redirects within the provider and returns the first page
	// (a 200), or the first redirect that leaves the provider.
	follow := func(resp *http.Response) (*url.URL, string, error) {
		for hops := 0; ; hops++ {
			b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if err != nil {
				return nil, "", err
			}
			if resp.StatusCode == http.StatusOK {
				return nil, string(b), nil
			}
			if resp.StatusCode < 300 || resp.StatusCode >= 400 {
				return nil, "", fmt.Errorf("%s %s: %s: %.300s", resp.Request.Method, resp.Request.URL.Path, resp.Status, b)
			}
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, "", err
			}
			if loc.Scheme+"://"+loc.Host != issuer {
				return loc, "", nil
			}
			if hops > 10 {
				return nil, "", errors.New("too many redirects within the provider")
			}
			if resp, err = client.Get(loc.String()); err != nil {
				return nil, "", err
			}
		}
	}
	resp, err := client.Get(authURL)
	if err != nil {
		return nil, fmt.Errorf("idp: open the authorization request: %w", err)
	}
	out, page, err := follow(resp)
	if err != nil || out != nil {
		return out, err // an error redirect back to the client, or a failure
	}
	m := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		return nil, fmt.Errorf("idp: no login form: %.300s", page)
	}
	form := url.Values{"id": {m[1]}, "username": {Username}, "password": {Password}}
	if resp, err = client.PostForm(issuer+PathLoginUI+"/username", form); err != nil {
		return nil, fmt.Errorf("idp: sign in: %w", err)
	}
	out, page, err = follow(resp)
	if err != nil {
		return nil, fmt.Errorf("idp: after signing in: %w", err)
	}
	if out == nil {
		return nil, fmt.Errorf("idp: signing in led to a page, not back to the client: %.300s", page)
	}
	return out, nil
}

// CheckAccessToken asks the provider's userinfo endpoint whether it accepts
// accessToken. It returns nil if the token is active.
func (p *IdP) CheckAccessToken(accessToken string) error {
	_, err := p.AccessTokenSubject(accessToken)
	return err
}

// AccessTokenSubject asks the provider's userinfo endpoint whether it accepts
// accessToken and returns the token's subject: the user ("alice") for tokens
// from a device login, the service client's id for client credentials tokens.
func (p *IdP) AccessTokenSubject(accessToken string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.issuer+PathUserinfo, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("userinfo: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var info struct {
		Subject string `json:"sub"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return "", fmt.Errorf("userinfo: %v: %s", err, body)
	}
	return info.Subject, nil
}

func (p *IdP) userStep(userCode, action string) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	client := &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		// The device UI answers errors with a redirect to /device?prompt=...;
		// stop there to report them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ui := p.issuer + PathDeviceUI

	// 1. The verification_uri_complete page: shows the login form.
	if _, err := fetch(client, http.MethodGet, ui+"?"+url.Values{"user_code": {userCode}}.Encode(), nil, `name="password"`); err != nil {
		return fmt.Errorf("idp: open device page: %w", err)
	}
	// 2. Log in; the answer is the consent page.
	form := url.Values{"user_code": {userCode}, "username": {Username}, "password": {Password}}
	if _, err := fetch(client, http.MethodPost, ui+"/login", form, "Welcome back "+Username); err != nil {
		return fmt.Errorf("idp: device login: %w", err)
	}
	// 3. Press the button.
	if _, err := fetch(client, http.MethodGet, ui+"/confirm?action="+action, nil, "Device authorization "+action); err != nil {
		return fmt.Errorf("idp: device consent: %w", err)
	}
	return nil
}

// fetch performs one browser step and checks the page contains want.
func fetch(client *http.Client, method, u string, form url.Values, want string) (string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	page := string(b)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg := resp.Header.Get("Location")
		if loc, err := url.Parse(msg); err == nil {
			if prompt := loc.Query().Get("prompt"); prompt != "" {
				if un, err := url.QueryUnescape(prompt); err == nil {
					prompt = un
				}
				msg = prompt
			}
		}
		return page, errors.New(msg)
	}
	if resp.StatusCode != http.StatusOK {
		return page, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(page))
	}
	if !strings.Contains(page, want) {
		return page, fmt.Errorf("unexpected page (want %q): %.300s", want, page)
	}
	return page, nil
}
