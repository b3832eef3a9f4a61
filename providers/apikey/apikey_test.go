package apikey

import (
	"context"
	"errors"
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
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent add hub") {
		t.Errorf("got %v, want ErrNeedsLogin that says how to store a secret", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     providers.ProfileConfig
		wantKey string
	}{
		{"unknown mode", providers.ProfileConfig{Mode: "magic"}, "mode"},
		{"devicecode key", providers.ProfileConfig{Issuer: "https://x"}, "issuer"},
		{"bad header name", providers.ProfileConfig{Headers: map[string]string{"X Key": "{secret}"}}, "headers"},
		{"unknown placeholder", providers.ProfileConfig{Headers: map[string]string{"X-Key": "{password}"}}, "headers"},
		{"grpc- metadata", providers.ProfileConfig{Metadata: map[string]string{"grpc-timeout": "{secret}"}}, "metadata"},
		{"binary metadata", providers.ProfileConfig{Metadata: map[string]string{"token-bin": "{secret}"}}, "metadata"},
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
