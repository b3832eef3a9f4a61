// Package providers is the contract between the agent and one kind of credential: the
// Provider interface, the optional capabilities a kind may add (login, logout, push, sign),
// the profile configuration shared by all kinds and the narrow view of the secret store each
// provider gets. It holds no protocol (that lives in the packages below it) and no policy
// such as caching, refresh timing or host checks (that is the agent's).
package providers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Credential is what a provider hands the agent: a token and the HTTP headers and gRPC
// metadata that carry it.
type Credential struct {
	TokenType string
	Token     string
	// ExpiresAt is zero when the credential has no known expiry (a static API key, or a
	// JWT without exp that is valid until a server rejects it).
	ExpiresAt time.Time
	Headers   map[string]string
	// Metadata is gRPC metadata; keys are lowercase.
	Metadata map[string]string
	// Warning, when set, says what needs the user's attention although the credential is
	// good, such as a rotated refresh token the secret store refused (kept in memory until
	// it can be saved). The agent shows it as last_error. It never holds a secret.
	Warning string

	// IDToken is the OpenID Connect ID token that came with the access token, verified
	// (signature, issuer, audience, and for a browser login the nonce) before it got here;
	// "" when there is none. A refresh that brings no new one carries the previous one
	// until it expires. IDTokenExpiresAt is its exp claim.
	IDToken          string
	IDTokenExpiresAt time.Time
	// IDTokenError says why there is no ID token when one could be expected (the issuer's
	// token failed verification, none was issued); "" otherwise. It never holds a secret.
	IDTokenError string
}

// Provider obtains credentials for one profile. Every kind implements it:
//
//   - refreshing kinds (devicecode, apikey client_credentials) trade a stored secret for a
//     new access token;
//   - command-driven kinds (externaljwt) run a command, read a file or return a pushed token;
//   - static kinds (apikey headers) build the same headers every time.
//
// The agent calls Fetch under single flight per profile, caches the result and decides when
// to call it again. Fetch returns an error wrapping ErrNeedsLogin when only the user can fix
// things (a dead refresh token, a missing secret); any other error is retried with backoff.
type Provider interface {
	Fetch(ctx context.Context) (*Credential, error)
}

// Loginer is a Provider that can run an interactive login (the device flow).
// Login starts the flow, reports the challenge through show as soon as the IdP issues it,
// and returns when the user completed it, the code expired or ctx was cancelled.
type Loginer interface {
	Login(ctx context.Context, show func(Challenge)) (*Credential, error)
}

// Login flows, as Challenge.Flow and LoginOptions.Flow name them.
const (
	FlowDevice  = "device"  // OAuth 2.0 Device Authorization Grant (RFC 8628)
	FlowBrowser = "browser" // authorization code with PKCE through a loopback redirect (RFC 8252)
)

// LoginOptions say how the caller wants a login to run.
type LoginOptions struct {
	// Flow is FlowDevice or FlowBrowser; "" follows the profile's login key.
	Flow string
	// Display says that the caller can open a browser on the agent's machine: the
	// profile's login = "auto" then takes the browser flow.
	Display bool
}

// FlowLoginer is a Loginer with more than one login flow. LoginWith is Login with the
// caller's choice; an error marked ErrInvalidRequest means that choice cannot be met (the
// identity provider offers no such flow).
type FlowLoginer interface {
	Loginer
	LoginWith(ctx context.Context, opts LoginOptions, show func(Challenge)) (*Credential, error)
}

// IDTokener is a Provider whose credentials may carry an OpenID Connect ID token.
// IDTokens returns nil when the profile can get verified ID tokens, and otherwise an error
// that says why not and what to change (no issuer to verify them against).
type IDTokener interface {
	IDTokens() error
}

// Logouter is a Provider that holds a grant it can revoke and forget.
type Logouter interface {
	Logout(ctx context.Context) error
}

// Pusher is a Provider that accepts tokens pushed by another program.
type Pusher interface {
	Push(ctx context.Context, token string, expiresAt time.Time) (*Credential, error)
}

// Watcher is a Provider whose source can change on its own, such as a token file that
// another program rotates. Watch calls changed whenever the source may have changed, until
// ctx ends; the agent then fetches again.
type Watcher interface {
	Watch(ctx context.Context, changed func()) error
}

// Local is a Provider that can say its Fetch calls no remote service and runs no command
// (a static API key, a token file, a pushed token without jwks_url). The agent does not
// take such fetches from the per-profile call budget that protects identity providers.
type Local interface {
	Local() bool
}

// Signer is a Provider that signs requests instead of handing out its secret.
type Signer interface {
	Sign(ctx context.Context, req SignRequest) (map[string]string, error)
}

// Challenge is what the user needs to complete a login: a device login's code and where
// to enter it, or the page a browser login opens.
type Challenge struct {
	Flow                    string // FlowDevice or FlowBrowser
	AuthURL                 string // browser: the authorization request to open
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string
	ExpiresAt               time.Time
	Interval                time.Duration
}

// SignRequest describes a request to be signed.
type SignRequest struct {
	Method     string
	URL        string
	Headers    map[string]string
	BodySHA256 string
}

// ErrNeedsLogin marks an error that no retry can fix: the user has to log in again or store
// a new secret.
var ErrNeedsLogin = errors.New("needs login")

// ErrInvalidRequest marks an error in what a caller asked for (a malformed request to
// sign, a bad pushed token), as opposed to a failure of the source.
var ErrInvalidRequest = errors.New("invalid request")

// ErrSecretStore marks a failure of the secret store (a locked or missing keyring), as
// opposed to one of what the caller gave.
var ErrSecretStore = errors.New("secret store")

// ErrSecretNotFound is returned by Secrets.Get when nothing is stored under the key.
var ErrSecretNotFound = errors.New("secret not found")

// Secret keys a provider stores under its profile. The agent deletes all of them when a
// profile is removed.
const (
	SecretKey       = "secret"        // API secret or OAuth client secret
	RefreshTokenKey = "refresh_token" // OAuth refresh token
	IDTokenKey      = "id_token"      // OIDC ID token
	PushedTokenKey  = "pushed_token"  // a token pushed into an externaljwt profile
)

// GrantKey is where a provider records which server and client a stored grant (refresh
// token, ID token) belongs to, so that a profile redefined for another server never sends
// it there. Not a secret, but kept beside the secrets it describes.
const GrantKey = "grant"

// AllSecretKeys lists every key a provider may store.
var AllSecretKeys = []string{SecretKey, RefreshTokenKey, IDTokenKey, PushedTokenKey, GrantKey}

// Secrets is the secret store as one profile sees it: keys are scoped to the profile.
type Secrets interface {
	Get(ctx context.Context, key string) (string, error)
	Set(ctx context.Context, key, value string) error
	Delete(ctx context.Context, key string) error
}

// Env is what the agent gives a provider when it builds one.
type Env struct {
	Name       string // profile name
	Secrets    Secrets
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time

	// ProfileToken returns another profile's current token and when it expires (zero:
	// no known expiry), as a request for it would get it: refreshed first when less than
	// that profile's min_valid is left. With idToken it is that profile's OpenID Connect
	// ID token instead of its access token. sendTo is where the caller will send it: that
	// profile must allow it there (its hosts, https), as for any request. It is how a token
	// exchange gets its subject_profile's token. Errors wrap ErrNeedsLogin when only the
	// user can help: that profile needs a login, is not defined, has no such token, may not
	// send it to sendTo, or asking it would close a cycle (a profile whose subject leads
	// back to this one). Nil outside an agent.
	ProfileToken func(ctx context.Context, profile string, idToken bool, sendTo *url.URL) (token string, expiresAt time.Time, err error)
	// ProfileChanged calls changed whenever another profile, after a change, has a usable
	// credential (a login, a refresh, a push; it may call for other changes too), until ctx
	// ends; it returns then. Nil outside an agent.
	ProfileChanged func(ctx context.Context, profile string, changed func())
}

// Factory builds the provider for one profile. It validates the profile's configuration and
// returns a *ConfigError for anything wrong in it.
type Factory func(cfg *ProfileConfig, env Env) (Provider, error)

// ConfigError names the configuration key that is wrong and says why. The agent adds the
// file and line.
type ConfigError struct {
	Key     string
	Message string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Message }

// Mark returns err marked as kind (errors.Is(Mark(kind, err), kind) holds) with err's
// message unchanged, so a sentinel's own words do not pile up at the end of what the
// user reads.
func Mark(kind, err error) error { return marked{err, kind} }

type marked struct {
	error
	kind error
}

func (m marked) Unwrap() []error { return []error{m.error, m.kind} }

// TokenCredential is the credential for an access token sent as "Authorization: TYPE
// TOKEN", in HTTP headers and gRPC metadata alike. An empty tokenType means Bearer.
func TokenCredential(tokenType, token string, expiresAt time.Time) *Credential {
	if tokenType == "" {
		tokenType = "Bearer"
	}
	value := tokenType + " " + token
	return &Credential{
		TokenType: tokenType,
		Token:     token,
		ExpiresAt: expiresAt,
		Headers:   map[string]string{"Authorization": value},
		Metadata:  map[string]string{"authorization": value},
	}
}
