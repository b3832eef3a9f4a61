package apikey

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/providers"
)

type secrets map[string]string

func (s secrets) Get(_ context.Context, k string) (string, error) {
	v, ok := s[k]
	if !ok {
		return "", providers.ErrSecretNotFound
	}
	return v, nil
}
func (s secrets) Set(_ context.Context, k, v string) error { s[k] = v; return nil }
func (s secrets) Delete(_ context.Context, k string) error { delete(s, k); return nil }

func TestFetch(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cfg          providers.ProfileConfig
		wantHeaders  map[string]string
		wantMetadata map[string]string
	}{
		{
			name:         "default bearer",
			cfg:          providers.ProfileConfig{},
			wantHeaders:  map[string]string{"Authorization": "Bearer S"},
			wantMetadata: map[string]string{"authorization": "Bearer S"},
		},
		{
			name: "key id and secret headers",
			cfg: providers.ProfileConfig{KeyID: "a1b2c3", Headers: map[string]string{
				"X-API-Key-ID": "{key_id}", "X-API-Key": "{secret}"}},
			wantHeaders:  map[string]string{"X-API-Key-ID": "a1b2c3", "X-API-Key": "S"},
			wantMetadata: map[string]string{"x-api-key-id": "a1b2c3", "x-api-key": "S"},
		},
		{
			name:         "single metadata entry, uppercase key lowered",
			cfg:          providers.ProfileConfig{Mode: "headers", Metadata: map[string]string{"Auth-Token": "{secret}"}},
			wantHeaders:  map[string]string{"Authorization": "Bearer S"},
			wantMetadata: map[string]string{"auth-token": "S"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Provider = Name
			p, err := New(&cfg, providers.Env{Name: "hub", Secrets: secrets{"secret": "S"}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Fetch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantHeaders, got.Headers); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantMetadata, got.Metadata); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
			if !got.ExpiresAt.IsZero() {
				t.Errorf("a static key expires at %v", got.ExpiresAt)
			}
		})
	}
}

func TestNoSecretNeedsLogin(t *testing.T) {
	p, err := New(&providers.ProfileConfig{Provider: Name}, providers.Env{Name: "hub", Secrets: secrets{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Fetch(context.Background())
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent set-secret hub") {
		t.Errorf("got %v, want ErrNeedsLogin that says how to store a secret", err)
	}
}

func TestConfigErrors(t *testing.T) {
	cc := func(c providers.ProfileConfig) providers.ProfileConfig {
		c.Mode = "client_credentials"
		if c.KeyID == "" {
			c.KeyID = "svc"
		}
		return c
	}
	sig := func(c providers.ProfileConfig) providers.ProfileConfig {
		c.Mode = "sigv4"
		if c.KeyID == "" {
			c.KeyID = "AKID"
		}
		if c.Region == "" {
			c.Region = "us-east-1"
		}
		if c.Service == "" {
			c.Service = "api"
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		cfg     providers.ProfileConfig
		wantKey string
	}{
		{"unknown mode", providers.ProfileConfig{Mode: "magic"}, "mode"},
		{"devicecode key", providers.ProfileConfig{Issuer: "https://x"}, "issuer"},
		{"bad header name", providers.ProfileConfig{Headers: map[string]string{"X Key": "{secret}"}}, `headers."X Key"`},
		{"unknown placeholder", providers.ProfileConfig{Headers: map[string]string{"X-Key": "{password}"}}, "headers.X-Key"},
		{"grpc- metadata", providers.ProfileConfig{Metadata: map[string]string{"grpc-timeout": "{secret}"}}, "metadata.grpc-timeout"},
		{"binary metadata", providers.ProfileConfig{Metadata: map[string]string{"token-bin": "{secret}"}}, "metadata.token-bin"},
		{"headers: token_url", providers.ProfileConfig{TokenURL: "https://x/token"}, "token_url"},
		{"headers: region", providers.ProfileConfig{Mode: "headers", Region: "us-east-1"}, "region"},

		{"client_credentials: no key_id", providers.ProfileConfig{Mode: "client_credentials", TokenURL: "https://x/token"}, "key_id"},
		{"client_credentials: no token_url", cc(providers.ProfileConfig{}), "token_url"},
		{"client_credentials: http token_url", cc(providers.ProfileConfig{TokenURL: "http://login.example.com/token"}), "token_url"},
		{"client_credentials: relative token_url", cc(providers.ProfileConfig{TokenURL: "/token"}), "token_url"},
		{"client_credentials: scope with a space", cc(providers.ProfileConfig{TokenURL: "https://x/token", Scopes: []string{"a b"}}), "scopes"},
		{"client_credentials: headers", cc(providers.ProfileConfig{TokenURL: "https://x/token", Headers: map[string]string{"A": "b"}}), "headers"},
		{"client_credentials: region", cc(providers.ProfileConfig{TokenURL: "https://x/token", Region: "r"}), "region"},

		{"sigv4: no key_id", providers.ProfileConfig{Mode: "sigv4", Region: "r", Service: "s"}, "key_id"},
		{"sigv4: key_id with a comma", sig(providers.ProfileConfig{KeyID: "a,b"}), "key_id"},
		{"sigv4: key_id with a line break", sig(providers.ProfileConfig{KeyID: "a\nb"}), "key_id"},
		{"sigv4: no region", providers.ProfileConfig{Mode: "sigv4", KeyID: "AKID", Service: "s"}, "region"},
		{"sigv4: no service", providers.ProfileConfig{Mode: "sigv4", KeyID: "AKID", Region: "r"}, "service"},
		{"sigv4: region with a slash", sig(providers.ProfileConfig{Region: "us/east"}), "region"},
		{"sigv4: service with a space", sig(providers.ProfileConfig{Service: "my api"}), "service"},
		{"sigv4: token_url", sig(providers.ProfileConfig{TokenURL: "https://x/token"}), "token_url"},
		{"sigv4: headers", sig(providers.ProfileConfig{Headers: map[string]string{"A": "b"}}), "headers"},
		{"sigv4: bad date_header", sig(providers.ProfileConfig{DateHeader: "X Date"}), "date_header"},
		{"sigv4: date_header is the auth header", sig(providers.ProfileConfig{DateHeader: "X-Auth", AuthHeader: "x-auth"}), "date_header"},
		{"headers: date_header", providers.ProfileConfig{DateHeader: "X-Date"}, "date_header"},
		{"sigv4: scopes", sig(providers.ProfileConfig{Scopes: []string{"a"}}), "scopes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Provider = Name
			_, err := New(&cfg, providers.Env{Secrets: secrets{}})
			var ce *providers.ConfigError
			if !errors.As(err, &ce) || ce.Key != tc.wantKey {
				t.Errorf("got %v, want a ConfigError for %q", err, tc.wantKey)
			}
		})
	}
}

func TestUnknownModeListsModes(t *testing.T) {
	_, err := New(&providers.ProfileConfig{Provider: Name, Mode: "hmac"}, providers.Env{Secrets: secrets{}})
	for _, m := range []string{"headers", "client_credentials", "sigv4"} {
		if err == nil || !strings.Contains(err.Error(), m) {
			t.Errorf("error %v does not name mode %q", err, m)
		}
	}
}

func TestConfigAccepted(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  providers.ProfileConfig
		want any
	}{
		{"headers by default", providers.ProfileConfig{KeyID: "k"}, &Provider{}},
		{"client_credentials, loopback http", providers.ProfileConfig{Mode: "client_credentials", KeyID: "svc", TokenURL: "http://127.0.0.1:8080/token",
			Scopes: []string{"api"}, Audience: "https://api", Resource: "https://api"}, &ClientCredentials{}},
		{"sigv4, DCI key id", providers.ProfileConfig{Mode: "sigv4", KeyID: "remoteci/464cc0a3-d638-4081-a69e-4c80261f3ba5", Region: "BHS3", Service: "api",
			Hosts: []string{"api.distributed-ci.io"}}, &SigV4{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Provider = Name
			p, err := New(&cfg, providers.Env{Secrets: secrets{}})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprintf("%T", p), fmt.Sprintf("%T", tc.want); got != want {
				t.Errorf("provider %s, want %s", got, want)
			}
		})
	}
}

// TestUnsendableValuesRefused: a value with a control character (other than tab) could never
// go out in a header or gRPC metadata, so the Factory refuses it and names the field, in
// every mode the field is used in. The message never repeats the value.
func TestUnsendableValuesRefused(t *testing.T) {
	const evil = "a\r\nX-Evil: 1 {secret}"
	for _, tc := range []struct {
		name    string
		cfg     providers.ProfileConfig
		wantKey string
		wantMsg string
	}{
		{"header value CRLF", providers.ProfileConfig{Headers: map[string]string{"X-K": evil}}, "headers.X-K", "contains a line break"},
		{"header value LF", providers.ProfileConfig{Headers: map[string]string{"X-K": "a\n{secret}"}}, "headers.X-K", "contains a line break"},
		{"header value NUL", providers.ProfileConfig{Headers: map[string]string{"X-K": "a\x00{secret}"}}, "headers.X-K", "contains a NUL byte"},
		{"header value ESC", providers.ProfileConfig{Headers: map[string]string{"X-K": "a\x1b{secret}"}}, "headers.X-K", "U+001B"},
		{"header value DEL", providers.ProfileConfig{Headers: map[string]string{"X-K": "a\x7f{secret}"}}, "headers.X-K", "U+007F"},
		{"header name with CRLF", providers.ProfileConfig{Headers: map[string]string{"X-K\r\nX-Evil": "{secret}"}}, `headers."X-K\r\nX-Evil"`, "not a valid HTTP header name"},
		{"header name with a colon", providers.ProfileConfig{Headers: map[string]string{"X-K:": "{secret}"}}, `headers."X-K:"`, "not a valid HTTP header name"},
		{"metadata value", providers.ProfileConfig{Metadata: map[string]string{"auth": evil}}, "metadata.auth", "contains a line break"},
		{"metadata key", providers.ProfileConfig{Metadata: map[string]string{"auth\n": "{secret}"}}, `metadata."auth\n"`, "not a usable gRPC metadata key"},
		{"key_id, headers mode", providers.ProfileConfig{KeyID: "id\r\nX-Evil: 1"}, "key_id", "contains a line break"},
		{"key_id, client_credentials", providers.ProfileConfig{Mode: "client_credentials", KeyID: "id\n", TokenURL: "https://x/token"}, "key_id", "contains a line break"},
		{"key_id, sigv4", providers.ProfileConfig{Mode: "sigv4", KeyID: "id\x00", Region: "r", Service: "s"}, "key_id", "contains a NUL byte"},
		{"username", providers.ProfileConfig{Username: "git\npassword=x"}, "username", "contains a line break"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Provider = Name
			_, err := New(&cfg, providers.Env{Secrets: secrets{}})
			var ce *providers.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a ConfigError for %s", err, tc.wantKey)
			}
			if ce.Key != tc.wantKey || !strings.Contains(ce.Message, tc.wantMsg) {
				t.Errorf("got key %q message %q, want key %q and a message with %q", ce.Key, ce.Message, tc.wantKey, tc.wantMsg)
			}
			if strings.ContainsAny(err.Error(), "\r\n\x00\x1b\x7f") {
				t.Errorf("the error %q holds a control character itself", err)
			}
		})
	}
	// A tab is allowed in a header value (RFC 9110 field content).
	cfg := providers.ProfileConfig{Provider: Name, Headers: map[string]string{"X-K": "a\t{secret}"}}
	if _, err := New(&cfg, providers.Env{Secrets: secrets{}}); err != nil {
		t.Errorf("a tab in a header value: %v", err)
	}
}

// Header names that differ only by case are one header: refused, so the metadata built
// from them cannot pick one at random.
func TestCaseVariantHeadersRefused(t *testing.T) {
	for _, tc := range []struct {
		headers, metadata map[string]string
		want              string
	}{
		{headers: map[string]string{"X-Key": "{secret}", "x-key": "public-{key_id}"}, want: "x-key"},
		{headers: map[string]string{"X-A": "{secret}"}, metadata: map[string]string{"auth": "{secret}", "Auth": "x"}, want: "metadata"},
	} {
		_, err := New(&providers.ProfileConfig{Provider: Name, KeyID: "k", Headers: tc.headers, Metadata: tc.metadata}, providers.Env{Name: "p"})
		var ce *providers.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(ce.Key, tc.want) || !strings.Contains(ce.Message, "case") {
			t.Errorf("%v / %v: got %v, want a ConfigError naming %s", tc.headers, tc.metadata, err, tc.want)
		}
	}
}
