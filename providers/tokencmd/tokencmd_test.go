//go:build unix

package tokencmd

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
)

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cmd")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func newCommand(t *testing.T, cfg providers.ProfileConfig) *Command {
	t.Helper()
	c, err := New(t.Context(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSecretInput: the JSON holds the profile, key id and secret exactly, HTML characters
// and all, on one line.
func TestSecretInput(t *testing.T) {
	secret := `s<3>&"q\u"\x`
	b := SecretInput("broker", "a1b2", secret)
	if strings.Count(string(b), "\n") != 1 || !strings.HasSuffix(string(b), "\n") {
		t.Errorf("SecretInput = %q: want one line", b)
	}
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["profile"] != "broker" || got["key_id"] != "a1b2" || got["secret"] != secret || len(got) != 3 {
		t.Errorf("SecretInput decodes to %q", got)
	}
	if !strings.Contains(string(b), "s<3>&") {
		t.Errorf("SecretInput = %q: HTML characters escaped, which a shell script would have to undo", b)
	}
}

// TestRunStdin: what Run is given reaches the command on stdin and nowhere else: not in
// its arguments, not in its environment. Without stdin the command reads end of file.
func TestRunStdin(t *testing.T) {
	dump := filepath.Join(t.TempDir(), "dump")
	cmd := newCommand(t, providers.ProfileConfig{
		Command: []string{script(t, `{ echo "args: $*"; env; } > "$DUMP"
printf '{"token":"tok-%s"}\n' "$(wc -c | tr -d ' ')"`), "--flag"},
		Env:   map[string]string{"DUMP": dump},
		Stdin: StdinSecret,
	})
	const canary = "canary-stdin-0123456789"
	input := SecretInput("p", "kid", canary)
	out, err := cmd.Run(t.Context(), input, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAnswer(out, time.Now(), "output")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Token, "tok-"+strconv.Itoa(len(input)); got != want {
		t.Errorf("the command read %s, want %s (all of the input)", got, want)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), canary) {
		t.Errorf("the secret is in the command's arguments or environment:\n%s", b)
	}
	if !strings.Contains(string(b), "args: --flag") || !strings.Contains(string(b), "DUMP="+dump) {
		t.Errorf("dump of the command's arguments and environment looks wrong:\n%s", b)
	}

	out, err = cmd.Run(t.Context(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := ParseAnswer(out, time.Now(), "output"); a.Token != "tok-0" {
		t.Errorf("without stdin the command read %q, want nothing (tok-0)", a.Token)
	}
}

// TestRunScrubsEchoedStdin: a failing command that echoes its stdin to stderr shows
// neither the secret nor its JSON form in the error, nor the env's values; what is not
// secret stays readable.
func TestRunScrubsEchoedStdin(t *testing.T) {
	cmd := newCommand(t, providers.ProfileConfig{
		Command: []string{script(t, `echo "broker said no to:" >&2; cat >&2; echo "env $TOKEN_HINT" >&2; exit 3`)},
		Env:     map[string]string{"TOKEN_HINT": "hint-value-xyz"},
		Stdin:   StdinSecret,
	})
	secret := `pa"ss\word-canary`
	_, err := cmd.Run(t.Context(), SecretInput("p", "kid", secret), func([]byte) ([]string, error) { return []string{secret}, nil })
	if err == nil {
		t.Fatal("a failing command succeeded")
	}
	msg := err.Error()
	for _, leak := range []string{secret, `pa\"ss\\word-canary`, "hint-value-xyz", "canary"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error %q contains %q", msg, leak)
		}
	}
	if !strings.Contains(msg, "broker said no to:") || !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, `"key_id":"kid"`) {
		t.Errorf("error %q lost what is not secret", msg)
	}
}

// TestRunKnownFails: when the secrets to scrub cannot be read, stderr is not shown at all.
func TestRunKnownFails(t *testing.T) {
	cmd := newCommand(t, providers.ProfileConfig{Command: []string{script(t, `echo "something secret" >&2; exit 1`)}})
	_, err := cmd.Run(t.Context(), nil, func([]byte) ([]string, error) { return nil, errors.New("keyring locked") })
	if err == nil || strings.Contains(err.Error(), "something secret") || !strings.Contains(err.Error(), "keyring locked") {
		t.Errorf("Run = %v: want an error that hides stderr and says why", err)
	}
}

// TestNewRefuses: command keys that could never run are refused with the key named.
func TestNewRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  providers.ProfileConfig
		key  string
	}{
		{"empty command", providers.ProfileConfig{Command: []string{}}, "command"},
		{"NUL in argv", providers.ProfileConfig{Command: []string{"a", "b\x00"}}, "command"},
		{"bad env name", providers.ProfileConfig{Command: []string{"a"}, Env: map[string]string{"A=B": "x"}}, "env"},
		{"relative dir", providers.ProfileConfig{Command: []string{"a"}, Dir: "rel"}, "dir"},
		{"unknown stdin", providers.ProfileConfig{Command: []string{"a"}, Stdin: "password"}, "stdin"},
	} {
		_, err := New(context.Background(), &tt.cfg)
		var ce *providers.ConfigError
		if !errors.As(err, &ce) || ce.Key != tt.key {
			t.Errorf("%s: %v, want a ConfigError for %s", tt.name, err, tt.key)
		}
	}
	c := newCommand(t, providers.ProfileConfig{Command: []string{"a"}, Stdin: "secret"})
	if !c.WantsSecret() || c.Name() != "a" {
		t.Errorf("stdin = \"secret\": WantsSecret %v, Name %q", c.WantsSecret(), c.Name())
	}
	if newCommand(t, providers.ProfileConfig{Command: []string{"a"}}).WantsSecret() {
		t.Error("a command without stdin wants the secret")
	}
}
