package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

// TestSetSecretEndpoint: PUT /v1/profiles/{name}/secret replaces the secret and nothing
// else; its body is decoded as strictly as the other bodies; its errors have their codes.
func TestSetSecretEndpoint(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	if err := e.client.SetSecret(ctx, "hub", "rotated-9c2e"); err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	cred, err := e.client.Credential(ctx, "hub", ipc.ForURL("https://api.example.com/x"))
	if err != nil {
		t.Fatal(err)
	}
	if cred.Headers["X-API-Key"] != "rotated-9c2e" || cred.Headers["X-API-Key-ID"] != "a1b2" {
		t.Errorf("headers after SetSecret: %v, want the new secret and the key id a1b2", cred.Headers)
	}
	p, err := e.client.Profile(ctx, "hub")
	if err != nil || strings.Join(p.Hosts, ",") != "api.example.com,127.0.0.1" {
		t.Errorf("hub after SetSecret: %+v, %v; want its hosts kept", p, err)
	}
	for _, tt := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"capitalised key", "/v1/profiles/hub/secret", `{"Secret":"x"}`, 400, ipc.CodeBadRequest},
		{"a key of another endpoint", "/v1/profiles/hub/secret", `{"secret":"x","hosts":[]}`, 400, ipc.CodeBadRequest},
		{"key twice", "/v1/profiles/hub/secret", `{"secret":"x","secret":"y"}`, 400, ipc.CodeBadRequest},
		{"not a string", "/v1/profiles/hub/secret", `{"secret":1}`, 400, ipc.CodeBadRequest},
		{"no secret", "/v1/profiles/hub/secret", `{}`, 400, ipc.CodeBadRequest},
		{"control character", "/v1/profiles/hub/secret", `{"secret":"a\nb"}`, 400, ipc.CodeBadRequest},
		{"too large", "/v1/profiles/hub/secret", fmt.Sprintf(`{"secret":%q}`, strings.Repeat("s", agent.MaxSecretSize+1)), 413, ipc.CodeTooLarge},
		{"unknown profile", "/v1/profiles/nope/secret", `{"secret":"x"}`, 404, ipc.CodeUnknownProfile},
	} {
		status, code := raw(t, e.sock, http.MethodPut, tt.path, "application/json", strings.NewReader(tt.body))
		if status != tt.status || code != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, status, code, tt.status, tt.code)
		}
	}
	if got, _ := e.store.Get(ctx, "hub/secret"); got != "rotated-9c2e" {
		t.Errorf("refused requests changed the secret to %q", got)
	}
}

// TestSetSecretFinishesWhenClientLeaves: a secret whose client hangs up while it is
// written is stored all the same, and served.
func TestSetSecretFinishesWhenClientLeaves(t *testing.T) {
	e := startHard(t, hardOpts{})
	e.store.hold("set hub/secret")
	c := e.dial(t)
	body := `{"secret":"late-secret-77"}`
	fmt.Fprintf(c, "PUT /v1/profiles/hub/secret HTTP/1.1\r\nHost: authagent\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	e.store.awaitHeld(t)
	c.Close()
	time.Sleep(graceForCancel)
	close(e.store.release)
	waitUntil(t, "the new secret served", func() bool {
		cred, err := e.client.Credential(context.Background(), "hub")
		return err == nil && cred.Headers["X-API-Key"] == "late-secret-77"
	})
}

// TestReloadEndpoint: POST /v1/reload answers 204, 400 with file:line for a file that does
// not load, 503 for a missing one; status carries the error until a reload works, and
// config_warning for a secret_store change.
func TestReloadEndpoint(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	// startServer's agent has no config file yet; the answer names where it should be.
	err := e.client.Reload(ctx)
	var ae *ipc.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Code != ipc.CodeUnavailable || !strings.Contains(ae.Message, "is missing") {
		t.Fatalf("reload without a file: %v, want 503 unavailable saying it is missing", err)
	}
	file, _, _ := strings.Cut(ae.Message, " is missing")
	st, err := e.client.Status(ctx)
	if err != nil || !strings.Contains(st.ConfigError, "is missing") {
		t.Errorf("status after a failed reload: %+v, %v; want config_error", st, err)
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	good := "[profile.hub]\nprovider = \"apikey\"\nkey_id = \"a1b2\"\nhosts = [\"api.example.com\", \"127.0.0.1\"]\n" +
		"headers = { \"X-API-Key-ID\" = \"{key_id}\", \"X-API-Key\" = \"{secret}\" }\n"
	write(good + "scopess = [\"x\"]\n")
	err = e.client.Reload(ctx)
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != ipc.CodeBadRequest || !strings.Contains(ae.Message, file+":6: profile.hub.scopess") {
		t.Fatalf("reload of a bad file: %v, want 400 bad_request naming %s:6", err, file)
	}
	if st, _ := e.client.Status(ctx); !strings.Contains(st.ConfigError, file+":6") {
		t.Errorf("status config_error %q, want the bad line", st.ConfigError)
	}
	write("secret_store = \"memory\"\n" + good)
	if err := e.client.Reload(ctx); err != nil {
		t.Fatalf("reload of a good file: %v", err)
	}
	st, err = e.client.Status(ctx)
	if err != nil || st.ConfigError != "" || !strings.Contains(st.ConfigWarning, "restart") {
		t.Errorf("status after a good reload that changes secret_store: %+v, %v; want no config_error and a config_warning", st, err)
	}
}

// TestStopEndpoint: POST /v1/stop answers 202 with the agent's pid and then ends Serve
// through Server.Stop; a server without Stop answers 503 and keeps serving.
func TestStopEndpoint(t *testing.T) {
	e := startServer(t, nil)
	if _, err := e.client.Stop(context.Background()); !isCode(err, ipc.CodeUnavailable) {
		t.Errorf("stop without Server.Stop: %v, want unavailable", err)
	}
	if _, err := e.client.Status(context.Background()); err != nil {
		t.Errorf("the agent stopped without a Stop hook: %v", err)
	}

	cfg := &agent.Config{Path: filepath.Join(t.TempDir(), "config.toml"), Profiles: map[string]*providers.ProfileConfig{}}
	a, err := agent.New(agent.Options{Config: cfg, Store: agent.NewMemoryStore(),
		Providers: map[string]providers.Factory{apikey.Name: apikey.New}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sock := filepath.Join(t.TempDir(), "run", "agent.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- (&Server{Agent: a, Stop: cancel}).Serve(ctx, ln) }()
	pid, err := (&ipc.Client{Socket: sock}).Stop(context.Background())
	if err != nil || pid != os.Getpid() {
		t.Fatalf("Stop: pid %d, %v; want %d", pid, err, os.Getpid())
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after a stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still runs 10s after POST /v1/stop")
	}
}
