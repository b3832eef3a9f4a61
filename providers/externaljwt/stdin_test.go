package externaljwt

import (
	"errors"
	"strings"
	"testing"

	"github.com/authagent/authagent/providers"
)

// TestExchangeCommandStdin: with stdin = "secret" the command reads the profile's name,
// key id and secret as JSON on stdin; without a stored secret the profile needs the user;
// a command that prints the secret back is refused.
func TestExchangeCommandStdin(t *testing.T) {
	// The token is the JSON the command read, made into one header-safe word.
	cmd := script(t, `tr -d ' \n' | tr '"{}:,' '_____'`)
	secrets := &memSecrets{M: map[string]string{providers.SecretKey: "s3cret"}}
	p := newProvider(t, &providers.ProfileConfig{Command: []string{cmd}, Stdin: "secret", KeyID: "kid"}, secrets, nil)
	cred, err := p.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := "__profile___ci___key_id___kid___secret___s3cret__"; cred.Token != want {
		t.Errorf("the command read %q, want %q", cred.Token, want)
	}

	p = newProvider(t, &providers.ProfileConfig{Command: []string{cmd}, Stdin: "secret"}, &memSecrets{}, nil)
	if _, err := p.Fetch(t.Context()); !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent set-secret ci") {
		t.Errorf("no secret stored: %v, want ErrNeedsLogin saying how to store it", err)
	}

	echo := script(t, `sed -n 's/.*"secret":"\([^"]*\)".*/\1/p'`)
	p = newProvider(t, &providers.ProfileConfig{Command: []string{echo}, Stdin: "secret"}, secrets, nil)
	if cred, err := p.Fetch(t.Context()); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a command that prints the secret: %+v, %v; want it refused, the secret not shown", cred, err)
	}

	// Without stdin = "secret" the command reads nothing, and key_id has no use.
	p = newProvider(t, &providers.ProfileConfig{Command: []string{cmd}}, secrets, nil)
	if _, err := p.Fetch(t.Context()); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("without stdin: %v, want the command's empty output refused", err)
	}
	for _, tt := range []struct {
		cfg providers.ProfileConfig
		key string
	}{
		{providers.ProfileConfig{Command: []string{cmd}, KeyID: "kid"}, "key_id"},
		{providers.ProfileConfig{Stdin: "secret"}, "stdin"},
		{providers.ProfileConfig{File: "/tmp/x", Stdin: "secret"}, "stdin"},
		{providers.ProfileConfig{Command: []string{cmd}, Stdin: "key"}, "stdin"},
	} {
		tt.cfg.Provider = Name
		_, err := New(&tt.cfg, providers.Env{Name: "ci"})
		var ce *providers.ConfigError
		if !errors.As(err, &ce) || ce.Key != tt.key {
			t.Errorf("%+v: %v, want a ConfigError for %s", tt.cfg, err, tt.key)
		}
	}
}
