package externaljwt

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/providertest"
	"github.com/authagent/authagent/providers/tokencmd"
)

type memSecrets = providertest.Secrets

// clock is a settable Env.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// testNow is the fixed time the tests run at; whole seconds, so JWT exp round-trips.
var testNow = time.Now().UTC().Truncate(time.Second)

// unsignedJWT builds a JWT-shaped token with the given exp (none when zero) and a signature
// nobody checks.
func unsignedJWT(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims := map[string]any{"sub": "ci-job-42", "aud": "api"}
	if !exp.IsZero() {
		claims["exp"] = exp.Unix()
	}
	payload, _ := json.Marshal(claims)
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(payload) + "." + enc([]byte("signature-that-nobody-checks-0123456789"))
}

func signedJWT(t *testing.T, key *rsa.PrivateKey, kid string, exp time.Time) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(jwt.Claims{Subject: "ci", Expiry: jwt.NewNumericDate(exp)}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// script writes an executable /bin/sh script with body and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the test commands are /bin/sh scripts")
	}
	path := filepath.Join(t.TempDir(), "get-token")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func newProvider(t *testing.T, cfg *providers.ProfileConfig, secrets providers.Secrets, now func() time.Time) *Provider {
	t.Helper()
	cfg.Provider = Name
	if secrets == nil {
		secrets = &memSecrets{}
	}
	if now == nil {
		now = func() time.Time { return testNow }
	}
	prov, err := New(cfg, providers.Env{Name: "ci", Secrets: secrets, Now: now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return prov.(*Provider)
}

func wantBearer(tok string, exp time.Time) *providers.Credential {
	return &providers.Credential{
		TokenType: "Bearer",
		Token:     tok,
		ExpiresAt: exp,
		Headers:   map[string]string{"Authorization": "Bearer " + tok},
		Metadata:  map[string]string{"authorization": "Bearer " + tok},
	}
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     providers.ProfileConfig
		wantKey string // "" when the config is fine
	}{
		{"push", providers.ProfileConfig{}, ""},
		{"push with lifetime and jwks", providers.ProfileConfig{Lifetime: providers.Duration(time.Hour), JWKSURL: "https://login.example.com/jwks"}, ""},
		{"command with options", providers.ProfileConfig{Command: []string{"vault", "read"}, Env: map[string]string{"VAULT_ADDR": "https://vault"},
			Dir: "/tmp", Timeout: providers.Duration(time.Second)}, ""},
		{"file", providers.ProfileConfig{File: "/var/run/secrets/tokens/api"}, ""},
		{"command and file", providers.ProfileConfig{Command: []string{"vault"}, File: "/tok"}, "file"},
		{"empty command", providers.ProfileConfig{Command: []string{}}, "command"},
		{"empty program", providers.ProfileConfig{Command: []string{"", "x"}}, "command"},
		{"relative file", providers.ProfileConfig{File: "tokens/api"}, "file"},
		{"relative dir", providers.ProfileConfig{Command: []string{"vault"}, Dir: "work"}, "dir"},
		{"bad env name", providers.ProfileConfig{Command: []string{"vault"}, Env: map[string]string{"A=B": "c"}}, "env"},
		{"env without command", providers.ProfileConfig{File: "/tok", Env: map[string]string{"A": "b"}}, "env"},
		{"timeout without command", providers.ProfileConfig{Timeout: providers.Duration(time.Second)}, "timeout"},
		{"dir without command", providers.ProfileConfig{Dir: "/tmp"}, "dir"},
		{"jwks over http", providers.ProfileConfig{JWKSURL: "http://login.example.com/jwks"}, "jwks_url"},
		{"jwks not a URL", providers.ProfileConfig{JWKSURL: "jwks.json"}, "jwks_url"},
		{"key of another kind", providers.ProfileConfig{ClientID: "cli"}, "client_id"},
		{"username with a line break", providers.ProfileConfig{Username: "ci\npassword=x"}, "username"},
		{"command word with a NUL", providers.ProfileConfig{Command: []string{"vault", "read\x00x"}}, "command"},
		{"dir with a NUL", providers.ProfileConfig{Command: []string{"vault"}, Dir: "/tmp\x00x"}, "dir"},
		{"file with a NUL", providers.ProfileConfig{File: "/tmp/tok\x00en"}, "file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Provider = Name
			_, err := New(&tt.cfg, providers.Env{Name: "ci", Secrets: &memSecrets{}})
			var ce *providers.ConfigError
			switch {
			case tt.wantKey == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantKey != "" && !errors.As(err, &ce):
				t.Fatalf("New: got %v, want a *ConfigError for %s", err, tt.wantKey)
			case tt.wantKey != "" && ce.Key != tt.wantKey:
				t.Fatalf("New: got error for key %q (%v), want %q", ce.Key, err, tt.wantKey)
			}
		})
	}
}

func TestFetchCommand(t *testing.T) {
	exp := testNow.Add(time.Hour)
	jwtTok := unsignedJWT(exp)
	later := testNow.Add(2 * time.Hour)
	tests := []struct {
		name     string
		stdout   string
		lifetime time.Duration
		want     *providers.Credential
	}{
		{"raw JWT, exp claim", jwtTok + "\n", 0, wantBearer(jwtTok, exp)},
		{"raw JWT with blank lines around", "\n  " + jwtTok + "  \n\n", 0, wantBearer(jwtTok, exp)},
		{"JSON with expires_at", `{"token":"` + jwtTok + `","expires_at":"` + later.Format(time.RFC3339) + `"}`, 0, wantBearer(jwtTok, later)},
		{"JSON with expires_at, non-UTC zone", `{"token":"opaque-1","expires_at":"` + later.In(time.FixedZone("X", 3600)).Format(time.RFC3339) + `"}`, 0, wantBearer("opaque-1", later)},
		{"JSON without expiry, JWT exp", `{"token":"` + jwtTok + `"}`, 0, wantBearer(jwtTok, exp)},
		{"OAuth token response", `{"access_token":"opaque-2","token_type":"Bearer","expires_in":600}`, 0, wantBearer("opaque-2", testNow.Add(10*time.Minute))},
		{"ExecCredential v1", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false},
			"status":{"token":"` + jwtTok + `","expirationTimestamp":"` + later.Format(time.RFC3339) + `"}}`, 0, wantBearer(jwtTok, later)},
		{"ExecCredential v1beta1 without expiry", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1",
			"status":{"token":"` + jwtTok + `"}}`, 0, wantBearer(jwtTok, exp)},
		{"opaque token with lifetime", "ghs_0123456789abcdefABCDEF\n", 15 * time.Minute, wantBearer("ghs_0123456789abcdefABCDEF", testNow.Add(15*time.Minute))},
		{"lifetime does not override exp", jwtTok, 15 * time.Minute, wantBearer(jwtTok, exp)},
		{"opaque token, no expiry", "opaque-3", 0, wantBearer("opaque-3", time.Time{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "stdout")
			if err := os.WriteFile(out, []byte(tt.stdout), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := script(t, `cat "$1"`)
			p := newProvider(t, &providers.ProfileConfig{Command: []string{cmd, out}, Lifetime: providers.Duration(tt.lifetime)}, nil, nil)
			got, err := p.Fetch(t.Context())
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Fetch (-got +want):\n%s", diff)
			}
		})
	}
}

func TestFetchCommandErrors(t *testing.T) {
	secretJWT := unsignedJWT(testNow.Add(time.Hour))
	payload := strings.Split(secretJWT, ".")[1]
	expired := unsignedJWT(testNow.Add(-time.Minute))
	tests := []struct {
		name    string
		argv    []string // instead of the script
		body    string   // the script
		want    []string // in the error
		secrets []string // never in the error
	}{
		{name: "not found in PATH", argv: []string{"authagent-test-no-such-command"},
			want: []string{`"authagent-test-no-such-command" not found in PATH`}},
		{name: "absolute path missing", argv: []string{"/nonexistent/authagent-get-token"},
			want: []string{`"/nonexistent/authagent-get-token" not found`}},
		{name: "non-zero exit, stderr scrubbed",
			body: `echo "vault: permission denied for token ` + secretJWT + `" >&2
echo "request id 0123456789abcdef0123456789abcdef" >&2
exit 3`,
			want:    []string{"exit status 3", "permission denied for token [redacted]", "request id [redacted]"},
			secrets: []string{secretJWT, payload, "0123456789abcdef0123456789abcdef"}},
		{name: "non-zero exit, long stderr cut short",
			body: `i=0; while [ $i -lt 200 ]; do echo "line $i of a long complaint" >&2; i=$((i+1)); done; exit 1`,
			want: []string{"exit status 1", "line 0 of a long complaint | line 1", "…"}},
		{name: "non-zero exit, no stderr", body: `exit 2`, want: []string{"exit status 2", "wrote nothing on stderr"}},
		{name: "killed by a signal", body: `kill -9 $$`, want: []string{"signal: killed"}},
		{name: "empty output", body: `exit 0`, want: []string{"output is empty"}},
		{name: "output is prose", body: `echo "Error: the token s3cr3tValue99 was refused"`,
			want: []string{"neither a token nor JSON"}, secrets: []string{"s3cr3tValue99"}},
		{name: "more than one line", body: `echo "warning: something"; echo ` + secretJWT,
			want: []string{"2 lines"}, secrets: []string{secretJWT, "warning"}},
		{name: "broken JSON", body: `echo '{"token": "` + secretJWT + `'`,
			want: []string{"not valid JSON"}, secrets: []string{secretJWT}},
		{name: "JSON without token", body: `echo '{"expires_at": "2030-01-01T00:00:00Z"}'`, want: []string{`no "token"`}},
		{name: "JSON token of the wrong type", body: `echo '{"token": 42}'`, want: []string{`"token" is a number`}},
		{name: "JSON token with a space", body: `echo '{"token": "Bearer abc"}'`, want: []string{"has spaces"}, secrets: []string{"abc"}},
		{name: "bad expires_at", body: `echo '{"token": "` + secretJWT + `", "expires_at": "tomorrow"}'`,
			want: []string{`expires_at "tomorrow" is not an RFC 3339 time`}, secrets: []string{secretJWT}},
		{name: "ExecCredential of an unknown version",
			body: `echo '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1","status":{"token":"` + secretJWT + `"}}'`,
			want: []string{`apiVersion "client.authentication.k8s.io/v1alpha1" is not supported`}, secrets: []string{secretJWT}},
		{name: "ExecCredential with a client certificate",
			body: `echo '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"clientCertificateData":"x"}}'`,
			want: []string{"no status.token"}},
		{name: "other JSON kind", body: `echo '{"kind":"Secret","token":"x"}'`, want: []string{`kind "Secret" is not supported`}},
		{name: "expired JWT", body: `echo ` + expired,
			want:    []string{"the token from command", "expired at " + testNow.Add(-time.Minute).Format(time.RFC3339)},
			secrets: []string{expired, strings.Split(expired, ".")[1]}},
		{name: "expired expires_at", body: `echo '{"token":"` + secretJWT + `","expires_at":"2001-02-03T04:05:06Z"}'`,
			want: []string{"expired at 2001-02-03T04:05:06Z"}, secrets: []string{secretJWT}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := tt.argv
			if argv == nil {
				argv = []string{script(t, tt.body)}
			}
			p := newProvider(t, &providers.ProfileConfig{Command: argv}, nil, nil)
			got, err := p.Fetch(t.Context())
			if err == nil {
				t.Fatalf("Fetch: got %+v, want an error", got)
			}
			if errors.Is(err, providers.ErrNeedsLogin) {
				t.Errorf("Fetch: %v wraps ErrNeedsLogin; a command's failure is retried", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Fetch error %q does not contain %q", err, w)
				}
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("Fetch error %q contains the secret %q", err, s)
				}
			}
			if len(err.Error()) > 600 {
				t.Errorf("Fetch error is %d bytes long, want it cut short", len(err.Error()))
			}
		})
	}
}

func TestFetchCommandTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The child in the background holds stdout open: only killing the group ends it. The
	// pid file appears whole, once the child runs.
	cmd := script(t, `sleep 30 &
echo $! > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
wait`)
	// On a loaded machine the shell may not get as far as starting its child within the
	// timeout; then there is no child to check, and the test runs again with a longer one.
	var b []byte
	for timeout := 300 * time.Millisecond; ; timeout *= 2 {
		p := newProvider(t, &providers.ProfileConfig{Command: []string{cmd}, Env: map[string]string{"PIDFILE": pidFile},
			Timeout: providers.Duration(timeout)}, nil, nil)
		_, err := p.Fetch(t.Context())
		if err == nil || !strings.Contains(err.Error(), "timed out after "+timeout.String()) {
			t.Fatalf("Fetch: got %v, want a timeout after %s", err, timeout)
		}
		if runtime.GOOS != "linux" {
			return
		}
		if b, err = os.ReadFile(pidFile); err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) || timeout > 20*time.Second {
			t.Fatalf("the command did not start its child within %s: %v", timeout, err)
		}
		t.Logf("the command did not start its child within %s; again with twice the timeout", timeout)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Dead means gone or a zombie nobody reaped yet (the container's init may not).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		if _, rest, _ := strings.Cut(string(stat), ") "); strings.HasPrefix(rest, "Z") || strings.HasPrefix(rest, "X") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command's child %d survived the timeout: %s", pid, stat)
		}
	}
}

func TestFetchCommandCancelled(t *testing.T) {
	cmd := script(t, `sleep 30`)
	p := newProvider(t, &providers.ProfileConfig{Command: []string{cmd}}, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	_, err := p.Fetch(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch: got %v, want context.Canceled", err)
	}
}

func TestCommandEnvironment(t *testing.T) {
	t.Setenv("AUTHAGENT_TEST_CANARY", "canary-token-value")
	binDir, workDir := t.TempDir(), t.TempDir()
	out := filepath.Join(t.TempDir(), "env")
	// Found through the PATH the profile sets, not the agent's.
	tool := filepath.Join(binDir, "authagent-test-tokentool")
	if runtime.GOOS == "windows" {
		t.Skip("the test commands are /bin/sh scripts")
	}
	if err := os.WriteFile(tool, []byte("#!/bin/sh\nenv > \"$OUT\"\necho \"PWD_IS=$(pwd)\" >> \"$OUT\"\necho opaque-token\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, &providers.ProfileConfig{
		Command: []string{"authagent-test-tokentool"},
		Env:     map[string]string{"OUT": out, "GREETING": "hello world", "PATH": binDir + string(os.PathListSeparator) + os.Getenv("PATH")},
		Dir:     workDir,
	}, nil, nil)
	if _, err := p.Fetch(t.Context()); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	wantDir, _ := filepath.EvalSymlinks(workDir)
	for k, want := range map[string]string{
		"GREETING":             "hello world",
		"KUBERNETES_EXEC_INFO": tokencmd.ExecInfo,
		"PWD_IS":               wantDir,
		"PATH":                 binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
	} {
		if got[k] != want {
			t.Errorf("the command saw %s=%q, want %q", k, got[k], want)
		}
	}
	if _, ok := got["AUTHAGENT_TEST_CANARY"]; ok || strings.Contains(string(b), "canary-token-value") {
		t.Errorf("the command saw the agent's AUTHAGENT_TEST_CANARY; its environment is:\n%s", b)
	}
}

func TestFetchFile(t *testing.T) {
	exp := testNow.Add(time.Hour)
	jwtTok := unsignedJWT(exp)
	tests := []struct {
		name    string
		content string // "" with noFile: no file at all
		noFile  bool
		want    *providers.Credential
		wantErr string
	}{
		{name: "raw JWT", content: jwtTok + "\n", want: wantBearer(jwtTok, exp)},
		{name: "JSON", content: `{"token":"opaque","expires_at":"` + exp.Format(time.RFC3339) + `"}`, want: wantBearer("opaque", exp)},
		{name: "empty", content: "", wantErr: "content is empty"},
		{name: "expired", content: unsignedJWT(testNow.Add(-time.Second)), wantErr: "expired at"},
		{name: "missing", noFile: true, wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if !tt.noFile {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			p := newProvider(t, &providers.ProfileConfig{File: path}, nil, nil)
			got, err := p.Fetch(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fetch: got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Fetch (-got +want):\n%s", diff)
			}
		})
	}
}

// writeAtomic writes a file the way most programs replace one: a temporary file renamed
// over it.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// projectToken lays out a token the way the kubelet's AtomicWriter does:
// dir/token -> ..data/token, ..data -> ..<version>, ..<version>/token. Each call after the
// first swaps ..data to a new version directory and removes the old one.
func projectToken(t *testing.T, dir, version, content string) {
	t.Helper()
	vdir := filepath.Join(dir, ".."+version)
	if err := os.Mkdir(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vdir, "token"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Symlink(".."+version, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old == "" {
		if err := os.Symlink(filepath.Join("..data", "token"), filepath.Join(dir, "token")); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
		t.Fatal(err)
	}
}

func TestWatchRotation(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlink rotation is a Unix layout")
	}
	tokens := []string{unsignedJWT(testNow.Add(time.Hour)), unsignedJWT(testNow.Add(2 * time.Hour)), unsignedJWT(testNow.Add(3 * time.Hour))}
	// write puts token n in place; n == 0 sets the layout up.
	tests := []struct {
		name  string
		write func(t *testing.T, dir string, n int)
	}{
		{"kubernetes symlink swap", func(t *testing.T, dir string, n int) {
			projectToken(t, dir, fmt.Sprintf("2024_01_01_00_00_00.%d", n), tokens[n])
		}},
		{"rename over", func(t *testing.T, dir string, n int) {
			writeAtomic(t, filepath.Join(dir, "token"), tokens[n])
		}},
		{"rewrite in place", func(t *testing.T, dir string, n int) {
			if err := os.WriteFile(filepath.Join(dir, "token"), []byte(tokens[n]), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink to a file in another directory, rewritten there", func(t *testing.T, dir string, n int) {
			elsewhere := filepath.Join(dir, "elsewhere")
			writeAtomic(t, filepath.Join(elsewhere, "real-token"), tokens[n])
			if n > 0 {
				return
			}
			if err := os.Symlink(filepath.Join(elsewhere, "real-token"), filepath.Join(dir, "token")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "elsewhere"), 0o755); err != nil {
				t.Fatal(err)
			}
			tt.write(t, dir, 0)
			p := newProvider(t, &providers.ProfileConfig{File: filepath.Join(dir, "token")}, nil, nil)
			got, err := p.Fetch(t.Context())
			if err != nil || got.Token != tokens[0] {
				t.Fatalf("Fetch before rotation: got %v, %v; want the first token", got, err)
			}

			ctx, cancel := context.WithCancel(t.Context())
			changed := make(chan struct{}, 1)
			done := make(chan error, 1)
			go func() {
				done <- p.Watch(ctx, func() {
					select {
					case changed <- struct{}{}:
					default:
					}
				})
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Watch: %v", err)
				}
			}()

			// The first rotation may race Watch's start and be found by its first look; once
			// that is reported, Watch is listening, so the second one arrives as events.
			for n := 1; n < len(tokens); n++ {
				tt.write(t, dir, n)
				select {
				case <-changed:
				case err := <-done:
					t.Fatalf("Watch returned early: %v", err)
				case <-time.After(30 * time.Second):
					t.Fatalf("Watch did not report rotation %d within 30s", n)
				}
				got, err = p.Fetch(t.Context())
				if err != nil || got.Token != tokens[n] {
					t.Fatalf("Fetch after rotation %d: got %v, %v; want token %d", n, got, err, n)
				}
			}
		})
	}
}

func TestWatchOtherSources(t *testing.T) {
	p := newProvider(t, &providers.ProfileConfig{}, nil, nil)
	if err := p.Watch(t.Context(), func() { t.Error("changed called for a push profile") }); err != nil {
		t.Errorf("Watch on a push profile: %v", err)
	}
}

func TestPush(t *testing.T) {
	clk := &clock{t: testNow}
	secrets := &memSecrets{}
	p := newProvider(t, &providers.ProfileConfig{}, secrets, clk.Now)
	ctx := t.Context()

	_, err := p.Fetch(ctx)
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent set-token ci") {
		t.Fatalf("Fetch before any push: got %v, want ErrNeedsLogin that says to push", err)
	}

	exp := testNow.Add(time.Hour)
	tok := unsignedJWT(exp)
	got, err := p.Push(ctx, tok+"\n", time.Time{})
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if diff := cmp.Diff(got, wantBearer(tok, exp)); diff != "" {
		t.Errorf("Push (-got +want):\n%s", diff)
	}

	// A new provider on the same store is the agent after a restart.
	restarted := newProvider(t, &providers.ProfileConfig{}, secrets, clk.Now)
	got, err = restarted.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch after restart: %v", err)
	}
	if diff := cmp.Diff(got, wantBearer(tok, exp)); diff != "" {
		t.Errorf("Fetch after restart (-got +want):\n%s", diff)
	}

	for _, bad := range []struct {
		name, token string
		exp         time.Time
		want        string
	}{
		{"expired JWT", unsignedJWT(testNow.Add(-time.Minute)), time.Time{}, "expired at"},
		{"expired by expires_at", "opaque", testNow.Add(-time.Second), "expired at"},
		{"one second left", "opaque", testNow.Add(time.Second), "too soon to be used"},
		{"empty", "  \n", time.Time{}, "is empty"},
		{"two lines", "abc\ndef", time.Time{}, "more than one line"},
	} {
		if _, err := p.Push(ctx, bad.token, bad.exp); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Push %s: got %v, want an error containing %q", bad.name, err, bad.want)
		}
	}
	if got, err := restarted.Fetch(ctx); err != nil || got.Token != tok {
		t.Errorf("Fetch after refused pushes: got %v, %v; want the token pushed before", got, err)
	}

	clk.Set(exp.Add(time.Second))
	_, err = restarted.Fetch(ctx)
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "expired at "+exp.Format(time.RFC3339)) {
		t.Fatalf("Fetch after expiry: got %v, want ErrNeedsLogin saying it expired", err)
	}
}

func TestPushExpiry(t *testing.T) {
	explicit := testNow.Add(10 * time.Minute)
	tests := []struct {
		name     string
		token    string
		exp      time.Time
		lifetime time.Duration
		want     time.Time
	}{
		{"explicit beats exp", unsignedJWT(testNow.Add(time.Hour)), explicit, 0, explicit},
		{"lifetime", "opaque", time.Time{}, 5 * time.Minute, testNow.Add(5 * time.Minute)},
		{"none", "opaque", time.Time{}, 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: testNow}
			secrets := &memSecrets{}
			p := newProvider(t, &providers.ProfileConfig{Lifetime: providers.Duration(tt.lifetime)}, secrets, clk.Now)
			if _, err := p.Push(t.Context(), tt.token, tt.exp); err != nil {
				t.Fatalf("Push: %v", err)
			}
			// The expiry is kept, not recomputed: a lifetime runs from the push.
			clk.Set(testNow.Add(time.Minute))
			got, err := p.Fetch(t.Context())
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if !got.ExpiresAt.Equal(tt.want) {
				t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, tt.want)
			}
		})
	}
}

func TestPushRefusedWithSource(t *testing.T) {
	p := newProvider(t, &providers.ProfileConfig{File: "/nonexistent/token"}, nil, nil)
	if _, err := p.Push(t.Context(), "opaque", time.Time{}); err == nil || !strings.Contains(err.Error(), "from its file") {
		t.Errorf("Push to a file profile: got %v, want a refusal", err)
	}
}

func TestJWKS(t *testing.T) {
	good, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &good.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	defer srv.Close()

	exp := testNow.Add(time.Hour)
	okTok := signedJWT(t, good, "k1", exp)
	tests := []struct {
		name    string
		token   string
		wantErr string
	}{
		{"signed by the JWKS key", okTok, ""},
		{"signed by another key under the same kid", signedJWT(t, other, "k1", exp), "does not verify against jwks_url"},
		{"signed by an unknown key", signedJWT(t, other, "k9", exp), "does not verify against jwks_url"},
		{"unsigned", unsignedJWT(exp), "does not verify against jwks_url"},
		{"not a JWT", "opaque-token", "is not a JWT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(tt.token), 0o600); err != nil {
				t.Fatal(err)
			}
			filed := newProvider(t, &providers.ProfileConfig{File: path, JWKSURL: srv.URL}, nil, nil)
			pushed := newProvider(t, &providers.ProfileConfig{JWKSURL: srv.URL}, nil, nil)
			for name, fetch := range map[string]func() (*providers.Credential, error){
				"file": func() (*providers.Credential, error) { return filed.Fetch(t.Context()) },
				"push": func() (*providers.Credential, error) { return pushed.Push(t.Context(), tt.token, time.Time{}) },
			} {
				got, err := fetch()
				if tt.wantErr == "" {
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if diff := cmp.Diff(got, wantBearer(tt.token, exp)); diff != "" {
						t.Errorf("%s (-got +want):\n%s", name, diff)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("%s: got %v, want an error containing %q", name, err, tt.wantErr)
				} else if strings.Contains(err.Error(), tt.token) {
					t.Errorf("%s: error %q contains the token", name, err)
				}
			}
		})
	}
}
