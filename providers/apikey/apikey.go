// Package apikey is the provider for API keys: a key id and a secret that live in the
// agent's secret store, used in one of five modes.
//
//   - "headers": the key id and secret are sent as HTTP headers and gRPC metadata built from
//     templates.
//   - "client_credentials": the key id (client_id) and secret (client_secret) are traded for a
//     short-lived access token with the OAuth 2.0 client credentials grant.
//   - "sigv4": the secret never leaves the agent; requests are signed with the AWS Signature
//     Version 4 algorithm (which DCI-style APIs accept as well).
//   - "command": an exchange command trades the key id and secret for a token by whatever
//     protocol the server speaks (a challenge-response over a broker's own RPC): it reads
//     them as JSON on stdin, for that run only, and prints the token (package tokencmd runs
//     it). The token goes out in headers and gRPC metadata built from templates.
//   - "token_exchange": a subject token (the stored secret, a pushed token, or another
//     profile's token) is traded for an access token with OAuth 2.0 Token Exchange (RFC 8693).
//
// It also makes new key pairs (GenerateKey) for people who run the server side. The OAuth
// protocol is golang.org/x/oauth2's and the signature is aws-sdk-go-v2's v4 signer; this
// package adds the configuration checks and what each failure means for the user. When to
// fetch again is the agent's business.
package apikey

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/authagent/authagent/providers"
)

// Name is the provider name used in the config.
const Name = "apikey"

// defaultHeaders is used when a profile sets no headers: the secret as a bearer token, the
// form most HTTP APIs take keys in.
var defaultHeaders = map[string]string{"Authorization": "Bearer {secret}"}

var (
	placeholderRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{[^{}]*\}`) })
	// RFC 9110 token characters.
	headerNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$") })
	// gRPC metadata keys: lowercase letters, digits, '-', '_', '.'.
	metadataKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-z_.-]+$`) })
)

// Provider serves a static API key (mode "headers").
type Provider struct {
	keyID    string
	headers  map[string]string
	metadata map[string]string
	secrets  providers.Secrets
	profile  string
}

// Modes, as written in the config.
const (
	modeHeaders           = "headers"
	modeClientCredentials = "client_credentials"
	modeSigV4             = "sigv4"
	modeCommand           = "command"
	modeTokenExchange     = "token_exchange"
)

// New is the providers.Factory for apikey profiles. An empty mode is "headers". Every value
// that goes into a header or gRPC metadata must be sendable there (providers.CheckSendable):
// it is refused here rather than found out at the first request. An exchange command
// (mode "command") runs until its fetch's context ends or its timeout passes; an agent
// uses NewFactory instead.
func New(cfg *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
	return build(context.Background(), cfg, env)
}

// NewFactory is New for an agent that stops when stop ends: from then on an exchange
// command in flight is killed at once and none is started, as externaljwt.NewFactory does.
func NewFactory(stop context.Context) providers.Factory {
	return func(cfg *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
		return build(stop, cfg, env)
	}
}

func build(stop context.Context, cfg *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
	// key_id goes into headers and metadata, the SigV4 Authorization header or the OAuth
	// client's credentials, whatever the mode.
	if err := providers.CheckSendable("key_id", cfg.KeyID); err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case "", modeHeaders:
		return newHeaders(cfg, env)
	case modeClientCredentials:
		return newClientCredentials(cfg, env)
	case modeSigV4:
		return newSigV4(cfg, env)
	case modeCommand:
		return newCommand(stop, cfg, env)
	case modeTokenExchange:
		return newTokenExchange(cfg, env)
	}
	return nil, &providers.ConfigError{Key: "mode", Message: fmt.Sprintf("%q is not a mode of provider %s; use %q, %q, %q, %q or %q",
		cfg.Mode, Name, modeHeaders, modeClientCredentials, modeSigV4, modeCommand, modeTokenExchange)}
}

func newHeaders(cfg *providers.ProfileConfig, env providers.Env) (*Provider, error) {
	if err := providers.CheckKeys(cfg, Name+" (mode "+modeHeaders+")", "mode", "key_id", "headers", "metadata"); err != nil {
		return nil, err
	}
	headers, md, err := templates(cfg, defaultHeaders, "{key_id}", "{secret}")
	if err != nil {
		return nil, err
	}
	return &Provider{keyID: cfg.KeyID, headers: headers, metadata: md, secrets: env.Secrets, profile: env.Name}, nil
}

// templates checks a profile's headers and metadata templates, whose placeholders may be
// those in vars (such as "{key_id}"), and returns them: the headers, defaultHeaders when
// it sets none; the metadata by lowercased key, the headers with lowercased names when it
// sets none. key_id must not hold '{', which would make a placeholder of its own.
func templates(cfg *providers.ProfileConfig, defaultHeaders map[string]string, vars ...string) (headers, md map[string]string, err error) {
	headers = cfg.Headers
	if len(headers) == 0 {
		headers = defaultHeaders
	}
	// In name order, so the same config always gets the same error.
	seen := make(map[string]string, len(headers)) // lowercased name → name
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		key := providers.SubKey("headers", name)
		// HTTP header names are case-insensitive: two that differ in case only are one
		// header, with two values, and the metadata built from them would pick one at random.
		if other, ok := seen[strings.ToLower(name)]; ok {
			return nil, nil, &providers.ConfigError{Key: key, Message: fmt.Sprintf("is the same header as %q (names do not differ by case); keep one", other)}
		}
		seen[strings.ToLower(name)] = name
		if !headerNameRE().MatchString(name) {
			return nil, nil, &providers.ConfigError{Key: key, Message: "is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"}
		}
		if err := providers.CheckSendable(key, headers[name]); err != nil {
			return nil, nil, err
		}
		if err := checkTemplate(headers[name], vars); err != nil {
			return nil, nil, &providers.ConfigError{Key: key, Message: err.Error()}
		}
	}
	metadata := cfg.Metadata
	if len(metadata) == 0 {
		metadata = make(map[string]string, len(headers))
		for name, tmpl := range headers {
			metadata[strings.ToLower(name)] = tmpl
		}
	}
	md = make(map[string]string, len(metadata))
	for _, name := range slices.Sorted(maps.Keys(metadata)) {
		key, tmpl := providers.SubKey("metadata", name), metadata[name]
		lk := strings.ToLower(name)
		if _, dup := md[lk]; dup {
			return nil, nil, &providers.ConfigError{Key: key, Message: "is the same metadata key as another that differs only by case; keep one"}
		}
		if !metadataKeyRE().MatchString(lk) || strings.HasSuffix(lk, "-bin") || strings.HasPrefix(lk, "grpc-") {
			return nil, nil, &providers.ConfigError{Key: key, Message: "is not a usable gRPC metadata key (lowercase letters, digits, '-', '_', '.'; not grpc-* or *-bin)"}
		}
		if err := providers.CheckSendable(key, tmpl); err != nil {
			return nil, nil, err
		}
		if err := checkTemplate(tmpl, vars); err != nil {
			return nil, nil, &providers.ConfigError{Key: key, Message: err.Error()}
		}
		md[lk] = tmpl
	}
	if strings.Contains(cfg.KeyID, "{") {
		return nil, nil, &providers.ConfigError{Key: "key_id", Message: "must not contain '{'"}
	}
	return headers, md, nil
}

// checkTemplate refuses a placeholder that is not one of vars.
func checkTemplate(t string, vars []string) error {
	for _, ph := range placeholderRE().FindAllString(t, -1) {
		if !slices.Contains(vars, ph) {
			return fmt.Errorf("unknown placeholder %s: use %s", ph, strings.Join(vars, " or "))
		}
	}
	return nil
}

// fill returns the templates m with each placeholder replaced by r.
func fill(m map[string]string, r *strings.Replacer) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = r.Replace(v)
	}
	return out
}

// tokenType is "Bearer" when the secret goes out as a bearer token (so git may send it as
// one), else "api-key".
func (p *Provider) tokenType() string {
	if p.headers["Authorization"] == "Bearer {secret}" {
		return "Bearer"
	}
	return "api-key"
}

// Fetch reads the secret from the store and fills in the templates. The credential never
// expires; the agent fetches again only after a server rejected it.
// Local reports true: building the headers reads the secret store only.
func (p *Provider) Local() bool { return true }

func (p *Provider) Fetch(ctx context.Context) (*providers.Credential, error) {
	secret, err := p.secrets.Get(ctx, providers.SecretKey)
	if errors.Is(err, providers.ErrSecretNotFound) {
		return nil, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("no API secret stored; store it with `authagent set-secret %s` (reads it from stdin)", p.profile))
	}
	if err != nil {
		return nil, fmt.Errorf("read API secret: %w", err)
	}
	r := strings.NewReplacer("{secret}", secret, "{key_id}", p.keyID)
	return &providers.Credential{
		TokenType: p.tokenType(),
		Token:     secret,
		Headers:   fill(p.headers, r),
		Metadata:  fill(p.metadata, r),
	}, nil
}
