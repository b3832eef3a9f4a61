package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

// brokenElsewhere is a config whose profile b has an unknown key on line 10, well below
// profile a, which the edits below remove or rewrite.
const brokenElsewhere = `[profile.a]
provider = "apikey"
hosts = ["a.example.com"]

[profile.b]
provider = "apikey"
hosts = ["b.example.com"]
key_id = "x"
# a comment
scopess = ["x"]
`

// TestConfigEditErrorPointsAtFileLines: an edit of one profile that the file refuses for
// a bad key elsewhere names the key's line in the file as it is, not in the edited text
// (which had it on line 6 after removing a, and further down after growing a).
func TestConfigEditErrorPointsAtFileLines(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(path string) error
	}{
		{"remove", func(path string) error { return RemoveProfile(path, "a") }},
		{"replace with more lines", func(path string) error {
			return WriteProfile(path, "a", &providers.ProfileConfig{Provider: "apikey", KeyID: "k",
				Hosts: []string{"a.example.com"}, Headers: map[string]string{"X-A": "{secret}"}, Username: "me"})
		}},
		{"append a profile", func(path string) error {
			return WriteProfile(path, "c", &providers.ProfileConfig{Provider: "apikey"})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(brokenElsewhere), 0o600); err != nil {
				t.Fatal(err)
			}
			err := tt.edit(path)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("edit: %v, want a ConfigError", err)
			}
			if ce.Line != 10 || ce.Key != "profile.b.scopess" {
				t.Errorf("error at line %d key %q, want line 10 key profile.b.scopess: %v", ce.Line, ce.Key, err)
			}
			if !strings.Contains(err.Error(), path+":10: profile.b.scopess") {
				t.Errorf("message %q does not name %s:10", err, path)
			}
			if data, _ := os.ReadFile(path); string(data) != brokenElsewhere {
				t.Errorf("the file changed:\n%s", data)
			}
		})
	}
}

// TestReloadErrorInStatus: a failed reload stays visible in Status until a reload works,
// and says which file, line and key; a missing file is unavailable, a bad one a bad request.
func TestReloadErrorInStatus(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
	h.settle(t)
	if st := h.a.Status(); st.ConfigError != "" || st.ConfigWarning != "" {
		t.Fatalf("fresh agent: config error %q, warning %q; want none", st.ConfigError, st.ConfigWarning)
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(h.path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[profile.p]\nprovider = \"fake\"\nscopess = [\"x\"]\n")
	err := h.a.Reload()
	if !errors.Is(err, ErrBadRequest) {
		t.Errorf("Reload of a bad file: %v, want ErrBadRequest", err)
	}
	st := h.a.Status()
	if !strings.Contains(st.ConfigError, h.path+":3: profile.p.scopess") {
		t.Errorf("Status().ConfigError = %q, want the file, line 3 and the key", st.ConfigError)
	}
	write("[profile.p]\nprovider = \"nope\"\n")
	if err := h.a.Reload(); !errors.Is(err, ErrBadRequest) || !strings.Contains(h.a.Status().ConfigError, "nope") {
		t.Errorf("Reload with an unknown provider: %v, status %q; want ErrBadRequest, and the status to name it", err, h.a.Status().ConfigError)
	}
	os.Remove(h.path)
	if err := h.a.Reload(); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrNoConfig) {
		t.Errorf("Reload without a file: %v, want ErrUnavailable and ErrNoConfig", err)
	}
	if got := h.a.Status().ConfigError; !strings.Contains(got, "is missing") || !strings.Contains(got, "authagent reload") {
		t.Errorf("Status().ConfigError = %q, want it to say the file is missing and to run `authagent reload`", got)
	}
	write("[profile.p]\nprovider = \"fake\"\n")
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := h.a.Status(); st.ConfigError != "" {
		t.Errorf("after a reload that worked, ConfigError = %q, want none", st.ConfigError)
	}
}

// TestSecretStoreChangeInStatus: a reload that changes secret_store works, and Status
// says the change waits for a restart until the file says the old store again.
func TestSecretStoreChangeInStatus(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
	h.settle(t)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(h.path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := h.a.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	write("secret_store = \"memory\"\n[profile.p]\nprovider = \"fake\"\n")
	w := h.a.Status().ConfigWarning
	for _, part := range []string{`"memory"`, `"keyring"`, "restart", "authagent stop"} {
		if !strings.Contains(w, part) {
			t.Errorf("ConfigWarning %q does not mention %s", w, part)
		}
	}
	write("secret_store = \"keyring\"\n[profile.p]\nprovider = \"fake\"\n")
	if w := h.a.Status().ConfigWarning; w != "" {
		t.Errorf("back to the store the agent runs with: ConfigWarning %q, want none", w)
	}
}

// apikeyAgent is an agent with one apikey profile hub and no secret stored.
func apikeyAgent(t *testing.T) (*Agent, *MemoryStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	store := NewMemoryStore()
	pc := &providers.ProfileConfig{Provider: apikey.Name, KeyID: "a1b2c3", Hosts: []string{"api.example.com"},
		Headers: map[string]string{"X-API-Key-ID": "{key_id}", "X-API-Key": "{secret}"}}
	a, err := New(Options{Config: &Config{Path: path, Profiles: map[string]*providers.ProfileConfig{"hub": pc}},
		Store: store, Providers: map[string]providers.Factory{apikey.Name: apikey.New}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, store, path
}

// TestSetSecretKeepsDefinition: SetSecret stores a missing secret and rotates one, and the
// profile keeps its key_id, headers and hosts; the config file is not written.
func TestSetSecretKeepsDefinition(t *testing.T) {
	a, store, path := apikeyAgent(t)
	ctx := context.Background()
	if _, err := a.Credential(ctx, "hub", -1, nil); !errors.Is(err, ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent set-secret hub") {
		t.Fatalf("without a secret: %v, want needs_login saying `authagent set-secret hub`", err)
	}
	for _, secret := range []string{"first-secret", "rotated-secret"} {
		if err := a.SetSecret(ctx, "hub", secret); err != nil {
			t.Fatalf("SetSecret: %v", err)
		}
		if got, err := store.Get(ctx, "hub/secret"); err != nil || got != secret {
			t.Errorf("stored secret %q, %v; want %q", got, err, secret)
		}
		u, _ := url.Parse("https://api.example.com/x")
		c, err := a.Credential(ctx, "hub", -1, u)
		if err != nil {
			t.Fatalf("credential after SetSecret: %v", err)
		}
		want := map[string]string{"X-API-Key-ID": "a1b2c3", "X-API-Key": secret}
		if c.Headers["X-API-Key-ID"] != want["X-API-Key-ID"] || c.Headers["X-API-Key"] != want["X-API-Key"] || len(c.Headers) != 2 {
			t.Errorf("headers %v, want %v", c.Headers, want)
		}
	}
	info, err := a.Profile("hub")
	if err != nil || len(info.Hosts) != 1 || info.Hosts[0] != "api.example.com" || info.State != StateValid {
		t.Errorf("profile after SetSecret: %+v, %v; want hosts kept and state valid", info, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SetSecret wrote the config file (%v)", err)
	}
	for _, tt := range []struct {
		name, profile, secret string
		want                  error
	}{
		{"unknown profile", "nope", "s", ErrUnknownProfile},
		{"empty", "hub", "", ErrBadRequest},
		{"line break", "hub", "a\r\nX-Evil: 1", ErrBadRequest},
		{"too large", "hub", strings.Repeat("s", MaxSecretSize+1), ErrTooLarge},
	} {
		if err := a.SetSecret(ctx, tt.profile, tt.secret); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if got, _ := store.Get(ctx, "hub/secret"); got != "rotated-secret" {
		t.Errorf("a refused SetSecret changed the stored secret to %q", got)
	}
}

// TestRejectStaticCredential: a credential without an expiry that a server refused is
// fetched again at once, so the profile does not show as expired; a second refusal in a
// row backs off as before (and says so), and a token with an expiry is still fetched only
// on the next request.
func TestRejectStaticCredential(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) {
		return &providers.Credential{Token: "k", Headers: map[string]string{"X-K": "k"}}, nil
	})
	h.settle(t)
	h.use(t)
	if err := h.a.Reject(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	h.settle(t)
	if info, _ := h.a.Profile("p"); info.State != StateValid {
		t.Errorf("a static key after one reject: state %s, want valid", info.State)
	}
	if got := h.prov.Calls(); got != 2 {
		t.Errorf("provider calls %d, want 2 (the refetch right after the reject)", got)
	}
	h.use(t)
	h.a.Reject(context.Background(), "p") // the refetched key, refused at once: the second in a row
	h.settle(t)
	info, _ := h.a.Profile("p")
	if info.State == StateValid || info.State == StateExpired || !strings.Contains(info.LastError, "refused") {
		t.Errorf("after a second reject in a row: state %s, last_error %q; want a state that is not valid or expired, saying servers refused it", info.State, info.LastError)
	}
	if got := h.prov.Calls(); got != 2 {
		t.Errorf("provider calls %d after the second reject, want still 2 (backoff)", got)
	}

	e := newHarness(t, nil, 0.5, tokenFor(time.Hour))
	e.settle(t)
	e.a.Reject(context.Background(), "p")
	e.settle(t)
	if got := e.prov.Calls(); got != 1 {
		t.Errorf("a token with an expiry: %d provider calls after reject, want 1 (the next request fetches)", got)
	}
}

// TestNoProfileErrorKeepsPort: the error for a URL no profile matches names the host with
// its port, as hosts entries may have one.
func TestNoProfileErrorKeepsPort(t *testing.T) {
	h := newHarness(t, &providers.ProfileConfig{Hosts: []string{"127.0.0.1:9000"}}, 0.5, tokenFor(time.Hour))
	u, _ := url.Parse("http://127.0.0.1:8080/x")
	_, err := h.a.ProfileForURL(u)
	if !errors.Is(err, ErrNoProfile) || !strings.Contains(err.Error(), "127.0.0.1:8080") {
		t.Errorf("ProfileForURL(%s): %v, want ErrNoProfile naming 127.0.0.1:8080", u, err)
	}
}

// Removing a profile from a file that a hand edit broke elsewhere keeps the profile and its
// secrets, and says which line to fix, instead of deleting the secrets and then failing.
func TestDeleteWithBrokenFileKeepsSecrets(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
	ctx := context.Background()
	secret := "canary-3b9d"
	if err := h.a.PutProfile(ctx, "hub", &providers.ProfileConfig{Provider: "fake", Hosts: []string{"api.example.com"}}, &secret); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(h.path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "\n[profile.zz]\nprovider = \"fake\"\nbogus = 1\n")
	f.Close()
	err = h.a.DeleteProfile(ctx, "hub")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "bogus") || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("got %v; want 503 saying the profile is kept and naming the bad key", err)
	}
	if got, err := h.store.Get(ctx, "hub/secret"); err != nil || got != secret {
		t.Errorf("the secret after the refused removal: %q, %v; want it kept", got, err)
	}
	if _, err := h.a.Profile("hub"); err != nil {
		t.Errorf("the profile after the refused removal: %v", err)
	}
}

func TestConfigWithBOM(t *testing.T) {
	_, err := ParseConfig("config.toml", []byte("\ufeff[profile.a]\nprovider = \"apikey\"\n"))
	if err == nil || !strings.Contains(err.Error(), "byte order mark") {
		t.Errorf("got %v, want an error that names the byte order mark", err)
	}
}

func TestUnknownProfileSuggestsNearest(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
	h.settle(t)
	for name, want := range map[string]string{"P": `did you mean "p"`, "q": `did you mean "p"`, "completely-different": "authagent add completely-different"} {
		_, err := h.a.Profile(name)
		if !errors.Is(err, ErrUnknownProfile) || !strings.Contains(err.Error(), want) {
			t.Errorf("profile %q: %v; want it to say %s", name, err, want)
		}
	}
}
