package tests

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// hubFlags define the apikey profile most tests use.
func hubFlags() []string {
	return []string{
		"--key-id", "a1b2",
		"--header", "X-API-Key-ID={key_id}",
		"--header", "X-API-Key={secret}",
		"--host", "api.example.com",
	}
}

func wantHubHeaders(secret string) map[string]string {
	return map[string]string{"X-API-Key-ID": "a1b2", "X-API-Key": secret}
}

func wantHubHeaderLines(secret string) string {
	return "X-API-Key: " + secret + "\nX-API-Key-ID: a1b2\n"
}

func TestAPIKeyHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, hubFlags()...)

	for _, path := range []string{
		"/v1/profiles/hub/credential",
		"/v1/credential?url=" + url.QueryEscape("https://api.example.com/x"),
	} {
		got := curlCredential(t, e, path)
		want := credential{
			Profile:      "hub",
			TokenType:    got.TokenType, // not part of what this test checks
			Token:        secret,
			Headers:      wantHubHeaders(secret),
			GRPCMetadata: map[string]string{"x-api-key-id": "a1b2", "x-api-key": secret},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("curl %s (-want +got):\n%s", path, diff)
		}
	}

	if got, want := runOK(t, e, "", "header", "hub").stdout, wantHubHeaderLines(secret); got != want {
		t.Errorf("authagent header hub = %q, want %q", got, want)
	}
	if got, want := runOK(t, e, "", "token", "hub").stdout, secret+"\n"; got != want {
		t.Errorf("authagent token hub = %q, want %q", got, want)
	}
	r := runOK(t, e, "", "exec", "hub", "--", "sh", "-c", `printf %s "$AUTHAGENT_TOKEN"`)
	if r.stdout != secret {
		t.Errorf("authagent exec hub -- sh: child saw AUTHAGENT_TOKEN=%q, want the secret", r.stdout)
	}

	t.Run("header into curl -H @-", func(t *testing.T) {
		needTools(t, "curl", "sh")
		got := make(chan http.Header, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- r.Header.Clone()
		}))
		defer srv.Close()
		r := runIn(t, append(e.environ(), "URL="+srv.URL), e.dir, "", "sh", "-c", `authagent header hub | curl -sS -f -H @- "$URL"`)
		if r.code != 0 {
			t.Fatalf("authagent header hub | curl -H @-: %s", r)
		}
		h := <-got
		for name, want := range wantHubHeaders(secret) {
			if v := h.Get(name); v != want {
				t.Errorf("server got %s: %q, want %q", name, v, want)
			}
		}
	})

	t.Run("redefined", func(t *testing.T) {
		rotated := canary(t)
		addAPIKey(t, e, "hub", rotated, hubFlags()...)
		if got, want := runOK(t, e, "", "header", "hub").stdout, wantHubHeaderLines(rotated); got != want {
			t.Errorf("after a new secret, authagent header hub = %q, want %q", got, want)
		}
		runOK(t, e, "", "add", "hub", "--provider", "apikey", "--no-secret", "--header", "Authorization=Key {secret}")
		if got, want := runOK(t, e, "", "header", "hub").stdout, "Authorization: Key "+rotated+"\n"; got != want {
			t.Errorf("after --no-secret with new headers, authagent header hub = %q, want %q", got, want)
		}
	})
}

// TestSecretWithLineBreak stores a secret with a line break in it. Header values cannot
// hold one, so either the agent refuses the secret, or what `authagent header` prints (for
// `curl -H @-`) must not turn the rest of the secret into a header of its own.
func TestSecretWithLineBreak(t *testing.T) {
	t.Parallel()
	needTools(t, "curl", "sh")
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	for _, secret := range []string{"first\nX-Injected: by-the-secret", "first\r\nX-Injected: by-the-secret"} {
		r := run(t, e, secret, "add", "weird", "--provider", "apikey", "--header", "X-Key={secret}")
		if r.code != 0 {
			continue // refused: fine
		}
		got := make(chan http.Header, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- r.Header.Clone()
		}))
		r = runIn(t, append(e.environ(), "URL="+srv.URL), e.dir, "", "sh", "-c", `authagent header weird | curl -sS -H @- "$URL"`)
		srv.Close()
		select {
		case h := <-got:
			if v := h.Get("X-Injected"); v != "" {
				t.Errorf("secret %q was accepted, and `authagent header weird | curl -H @-` sent an extra header X-Injected: %s", secret, v)
			}
		default:
			// No request reached the server: `header` refused to print a broken header.
			if r.code == 0 {
				t.Errorf("authagent header weird | curl: no request was made, yet the pipe succeeded: %s", r)
			}
		}
	}
}

// TestNoSecretServiceFallsBackToMemory runs the agent where no Secret Service answers: it
// still starts and serves, and says plainly that secrets will not survive a restart.
func TestNoSecretServiceFallsBackToMemory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil).with("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	a := startAgent(t, e)

	st := agentStatus(t, e)
	if st.SecretStore.Kind != "memory" || st.SecretStore.Persistent || !strings.Contains(st.SecretStore.Warning, "restart") {
		t.Errorf("status --json: secret store %+v, want kind memory, not persistent, a warning about restarts", st.SecretStore)
	}
	if r := runOK(t, e, "", "status"); !strings.Contains(r.stdout, "NOT survive") {
		t.Errorf("authagent status does not say secrets will not survive a restart:\n%s", r)
	}
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, hubFlags()...)
	if r := runOK(t, e, "", "list"); !strings.Contains(r.stderr, st.SecretStore.Warning) {
		t.Errorf("authagent list does not show the warning:\n%s", r)
	}
	if got := runOK(t, e, "", "header", "hub").stdout; got != wantHubHeaderLines(secret) {
		t.Errorf("authagent header hub = %q, want %q", got, wantHubHeaderLines(secret))
	}

	// After a restart the profile is back from the config, but its secret is gone; the
	// error says what to do.
	a.Stop()
	startAgent(t, e)
	r := run(t, e, "", "token", "hub")
	if r.code != 1 || !strings.Contains(r.stderr, "authagent set-secret hub") {
		t.Errorf("authagent token hub after a restart without a keyring: want exit 1 and advice to `authagent set-secret hub`: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, secret) {
		t.Errorf("the error holds the secret: %s", r)
	}
}

func TestRestartKeepsSecretsInKeyring(t *testing.T) {
	t.Parallel()
	sess := startSession(t)
	e := newEnv(t, sess)
	a := startAgent(t, e)
	if st := agentStatus(t, e); st.SecretStore.Kind != "keyring" || !st.SecretStore.Persistent || st.SecretStore.Warning != "" {
		t.Fatalf("status: secret store %+v, want kind keyring, persistent, no warning", st.SecretStore)
	}

	secret := canary(t)
	addAPIKey(t, e, "hub", secret, hubFlags()...)
	long := longSecret(t, 5000)
	addAPIKey(t, e, "long", long, "--header", "X-Long={secret}")

	// The secrets are in gnome-keyring under service "authagent", each entry small enough
	// for every OS keyring (values over 2 KiB go in chunks).
	items := sess.keyringSearch(t, "service", "authagent")
	found := false
	for _, it := range items {
		found = found || it.secret == secret
		if len(it.secret) > 2048 {
			t.Errorf("keyring item %q holds %d bytes, want chunks of at most 2048", it.label, len(it.secret))
		}
	}
	if !found {
		t.Errorf("no item of service authagent in gnome-keyring holds the secret of hub; items: %d", len(items))
	}

	a.Stop()
	startAgent(t, e)

	st := agentStatus(t, e)
	if st.SecretStore.Kind != "keyring" || !st.SecretStore.Persistent {
		t.Errorf("status after restart: secret store %+v, want kind keyring, persistent", st.SecretStore)
	}
	if st.Profiles != 2 {
		t.Errorf("status after restart: %d profiles, want 2", st.Profiles)
	}
	if got, want := runOK(t, e, "", "header", "hub").stdout, wantHubHeaderLines(secret); got != want {
		t.Errorf("authagent header hub after restart = %q, want %q", got, want)
	}
	if got := curlCredential(t, e, "/v1/profiles/hub/credential"); got.Headers["X-API-Key"] != secret {
		t.Errorf("curl credential of hub after restart: headers %v, want X-API-Key = the secret", got.Headers)
	}
	if got := runOK(t, e, "", "token", "long").stdout; got != long+"\n" {
		t.Errorf("authagent token long after restart: %d bytes, want the %d-byte secret and a newline", len(got), len(long))
	}
	if got := curlCredential(t, e, "/v1/profiles/long/credential"); got.Headers["X-Long"] != long {
		t.Errorf("curl credential of long after restart: X-Long has %d bytes, want the %d-byte secret", len(got.Headers["X-Long"]), len(long))
	}

	// remove takes the secrets, chunks and all, out of the keyring.
	runOK(t, e, "", "remove", "long")
	runOK(t, e, "", "remove", "hub")
	if items := sess.keyringSearch(t, "service", "authagent"); len(items) != 0 {
		var labels []string
		for _, it := range items {
			labels = append(labels, it.label)
		}
		t.Errorf("after removing every profile, gnome-keyring still holds %d authagent items: %q", len(items), labels)
	}
	if got := listProfiles(t, e).names(); len(got) != 0 {
		t.Errorf("list after removing every profile = %v", got)
	}
}

// longSecret returns n random hex digits.
func longSecret(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(b))[:n]
}
