// Package apikey is the provider for API keys: a key id and a secret sent as HTTP headers
// and gRPC metadata built from templates ("headers" mode). The secret lives in the agent's
// secret store; this package only reads it and fills in the templates. Trading the secret
// for a short-lived token and signing requests are modes added later.
package apikey

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/authagent/authagent/providers"
)

// Name is the provider name used in the config.
const Name = "apikey"

const modeHeaders = "headers"

// defaultHeaders is used when a profile sets no headers: the secret as a bearer token, the
// form most HTTP APIs take keys in.
var defaultHeaders = map[string]string{"Authorization": "Bearer {secret}"}

var (
	placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)
	// RFC 9110 token characters.
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	// gRPC metadata keys: lowercase letters, digits, '-', '_', '.'.
	metadataKeyRE = regexp.MustCompile(`^[0-9a-z_.-]+$`)
)

// Provider serves a static API key.
type Provider struct {
	keyID    string
	headers  map[string]string
	metadata map[string]string
	secrets  providers.Secrets
	profile  string
}

// New is the providers.Factory for apikey profiles.
func New(cfg *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
	mode := cfg.Mode
	if mode == "" {
		mode = modeHeaders
	}
	if mode != modeHeaders {
		return nil, &providers.ConfigError{Key: "mode", Message: fmt.Sprintf("mode %q is not available in this version; use \"headers\"", mode)}
	}
	if err := providers.CheckKeys(cfg, Name, "mode", "key_id", "headers", "metadata"); err != nil {
		return nil, err
	}
	headers := cfg.Headers
	if len(headers) == 0 {
		headers = defaultHeaders
	}
	for name, tmpl := range headers {
		if !headerNameRE.MatchString(name) {
			return nil, &providers.ConfigError{Key: "headers", Message: fmt.Sprintf("%q is not a valid HTTP header name", name)}
		}
		if err := checkTemplate(tmpl); err != nil {
			return nil, &providers.ConfigError{Key: "headers", Message: fmt.Sprintf("header %s: %v", name, err)}
		}
	}
	metadata := cfg.Metadata
	if len(metadata) == 0 {
		metadata = make(map[string]string, len(headers))
		for name, tmpl := range headers {
			metadata[strings.ToLower(name)] = tmpl
		}
	}
	md := make(map[string]string, len(metadata))
	for key, tmpl := range metadata {
		lk := strings.ToLower(key)
		if !metadataKeyRE.MatchString(lk) || strings.HasSuffix(lk, "-bin") || strings.HasPrefix(lk, "grpc-") {
			return nil, &providers.ConfigError{Key: "metadata", Message: fmt.Sprintf("%q is not a usable gRPC metadata key (lowercase letters, digits, '-', '_', '.'; not grpc-* or *-bin)", key)}
		}
		if err := checkTemplate(tmpl); err != nil {
			return nil, &providers.ConfigError{Key: "metadata", Message: fmt.Sprintf("metadata %s: %v", key, err)}
		}
		md[lk] = tmpl
	}
	if strings.Contains(cfg.KeyID, "{") {
		return nil, &providers.ConfigError{Key: "key_id", Message: "must not contain '{'"}
	}
	return &Provider{keyID: cfg.KeyID, headers: headers, metadata: md, secrets: env.Secrets, profile: env.Name}, nil
}

func checkTemplate(t string) error {
	for _, ph := range placeholderRE.FindAllString(t, -1) {
		if ph != "{secret}" && ph != "{key_id}" {
			return fmt.Errorf("unknown placeholder %s: use {key_id} or {secret}", ph)
		}
	}
	return nil
}

// Fetch reads the secret from the store and fills in the templates. The credential never
// expires; the agent fetches again only after a server rejected it.
func (p *Provider) Fetch(ctx context.Context) (*providers.Credential, error) {
	secret, err := p.secrets.Get(ctx, providers.SecretKey)
	if errors.Is(err, providers.ErrSecretNotFound) {
		return nil, fmt.Errorf("no API secret stored; store it with `authagent add %s --provider apikey` (reads it from stdin): %w", p.profile, providers.ErrNeedsLogin)
	}
	if err != nil {
		return nil, fmt.Errorf("read API secret: %w", err)
	}
	r := strings.NewReplacer("{secret}", secret, "{key_id}", p.keyID)
	fill := func(m map[string]string) map[string]string {
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = r.Replace(v)
		}
		return out
	}
	return &providers.Credential{
		TokenType: "api-key",
		Token:     secret,
		Headers:   fill(p.headers),
		Metadata:  fill(p.metadata),
	}, nil
}
