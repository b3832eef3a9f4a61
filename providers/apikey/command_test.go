//go:build unix

package apikey

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/providertest"
)

// exchangeScript is an exchange command: it reads the JSON on stdin, writes its arguments
// and environment to $DUMP, and prints a token made from the key id and the length of the
// secret, so the test can tell that it got both. With $MODE "fail" it echoes its input to
// stderr and fails; with "echo" it prints the secret as if it were the token.
const exchangeScript = `{ echo "args: $*"; env; } > "$DUMP"
in=$(cat)
key=$(printf '%s' "$in" | sed -n 's/.*"key_id":"\([^"]*\)".*/\1/p')
secret=$(printf '%s' "$in" | sed -n 's/.*"secret":"\([^"]*\)".*/\1/p')
case "$MODE" in
fail) printf 'broker refused %s\n' "$in" >&2; exit 2 ;;
echo) printf '%s\n' "$secret"; exit 0 ;;
esac
printf '{"token":"tok-%s-%d","expires_in":600}\n' "$key" "${#secret}"
`

func newExchangeCommand(t *testing.T, cfg providers.ProfileConfig, secrets *providertest.Secrets, now time.Time) (*Command, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "broker-login")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+exchangeScript), 0o700); err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(dir, "dump")
	cfg.Provider, cfg.Mode = Name, "command"
	cfg.Command = []string{path, "--server", "broker.example.com:443"}
	if cfg.Env == nil {
		cfg.Env = map[string]string{}
	}
	cfg.Env["DUMP"] = dump
	p, err := New(&cfg, providers.Env{Name: "broker", Secrets: secrets, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Command), dump
}

// TestCommandMode: the exchange command gets the key id and secret on stdin, never in its
// arguments or environment; its token goes out through the templates, with the expiry it
// printed.
func TestCommandMode(t *testing.T) {
	const secret = "canary-secret-42"
	now := time.Now()
	secrets := &providertest.Secrets{M: map[string]string{providers.SecretKey: secret}}
	p, dump := newExchangeCommand(t, providers.ProfileConfig{KeyID: "a1b2", Metadata: map[string]string{"auth-token": "{token}", "x-key": "{key_id}"}}, secrets, now)
	cred, err := p.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tok := "tok-a1b2-16" // the key id, and the length of the secret
	want := &providers.Credential{
		TokenType: "Bearer",
		Token:     tok,
		ExpiresAt: now.Round(0).Add(600 * time.Second).UTC(),
		Headers:   map[string]string{"Authorization": "Bearer " + tok},
		Metadata:  map[string]string{"auth-token": tok, "x-key": "a1b2"},
	}
	if diff := cmp.Diff(want, cred); diff != "" {
		t.Errorf("credential (-want +got):\n%s", diff)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("the secret is in the command's arguments or environment:\n%s", b)
	}
	if !strings.Contains(string(b), "args: --server broker.example.com:443") {
		t.Errorf("the command's arguments: %s", b)
	}
}

// TestCommandModeFailures: no secret needs the user; a failing command's stderr is scrubbed
// of the secret; a command that prints the secret is refused rather than served.
func TestCommandModeFailures(t *testing.T) {
	const secret = "canary-secret-42"
	p, _ := newExchangeCommand(t, providers.ProfileConfig{}, &providertest.Secrets{}, time.Now())
	_, err := p.Fetch(t.Context())
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent set-secret broker") {
		t.Errorf("without a secret: %v, want ErrNeedsLogin saying how to store one", err)
	}

	secrets := &providertest.Secrets{M: map[string]string{providers.SecretKey: secret}}
	p, _ = newExchangeCommand(t, providers.ProfileConfig{Env: map[string]string{"MODE": "fail"}}, secrets, time.Now())
	_, err = p.Fetch(t.Context())
	if err == nil || errors.Is(err, providers.ErrNeedsLogin) || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "broker refused") {
		t.Errorf("failing command: %v, want a retryable error with stderr, scrubbed", err)
	}

	p, _ = newExchangeCommand(t, providers.ProfileConfig{Env: map[string]string{"MODE": "echo"}}, secrets, time.Now())
	cred, err := p.Fetch(t.Context())
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "printed the profile's secret") {
		t.Errorf("echoing command: %+v, %v; want it refused", cred, err)
	}
}

// TestCommandModeConfig: the mode's keys, and placeholders other than {token} and
// {key_id}, which would let the secret out, are refused.
func TestCommandModeConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  providers.ProfileConfig
		key  string
	}{
		{"no command", providers.ProfileConfig{}, "command"},
		{"secret in a header", providers.ProfileConfig{Command: []string{"x"}, Headers: map[string]string{"X-Key": "{secret}"}}, "headers.X-Key"},
		{"secret in metadata", providers.ProfileConfig{Command: []string{"x"}, Metadata: map[string]string{"k": "{secret}"}}, "metadata.k"},
		{"stdin none", providers.ProfileConfig{Command: []string{"x"}, Stdin: "none"}, "stdin"},
		{"token_url", providers.ProfileConfig{Command: []string{"x"}, TokenURL: "https://x"}, "token_url"},
	} {
		tt.cfg.Provider, tt.cfg.Mode = Name, "command"
		_, err := New(&tt.cfg, providers.Env{Name: "b"})
		var ce *providers.ConfigError
		if !errors.As(err, &ce) || ce.Key != tt.key {
			t.Errorf("%s: %v, want a ConfigError for %s", tt.name, err, tt.key)
		}
	}
	_, err := New(&providers.ProfileConfig{Provider: Name, Mode: "command", Command: []string{"x"}, Stdin: "secret", Lifetime: providers.Duration(time.Minute)}, providers.Env{Name: "b"})
	if err != nil {
		t.Errorf("stdin = \"secret\" and lifetime: %v", err)
	}
}
