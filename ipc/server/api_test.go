package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

const canary = "canary-5f0d8e"

type env struct {
	a      *agent.Agent
	client *ipc.Client
	sock   string
	store  *agent.MemoryStore
}

// startServer runs an agent with one apikey profile "hub" behind a real socket.
func startServer(t testing.TB, uid *int) *env {
	t.Helper()
	return startServerOn(t, filepath.Join(t.TempDir(), "run", "agent.sock"), uid)
}

// startServerOn is startServer on the socket path sock.
func startServerOn(t testing.TB, sock string, uid *int) *env {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	store := agent.NewMemoryStore()
	if err := store.Set(context.Background(), "hub/secret", canary); err != nil {
		t.Fatal(err)
	}
	cfg := &agent.Config{Path: cfgPath, Profiles: map[string]*providers.ProfileConfig{
		"hub": {Provider: "apikey", KeyID: "a1b2", Hosts: []string{"api.example.com", "127.0.0.1"},
			Headers: map[string]string{"X-API-Key-ID": "{key_id}", "X-API-Key": "{secret}"}},
	}}
	a, err := agent.New(agent.Options{Config: cfg, Store: store,
		Providers: map[string]providers.Factory{apikey.Name: apikey.New}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{Agent: a, UID: uid}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		a.Close()
	})
	return &env{a: a, client: &ipc.Client{Socket: sock}, sock: sock, store: store}
}

func TestClientAPI(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()

	st, err := e.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.Profiles != 1 || st.SecretStore.Kind != "memory" {
		t.Errorf("status = %+v", st)
	}

	wantCred := &ipc.Credential{
		Profile: "hub", TokenType: "api-key", Token: canary, Username: "oauth2",
		Headers:      map[string]string{"X-API-Key-ID": "a1b2", "X-API-Key": canary},
		GRPCMetadata: map[string]string{"x-api-key-id": "a1b2", "x-api-key": canary},
	}
	got, err := e.client.Credential(ctx, "hub")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantCred, got); diff != "" {
		t.Errorf("Credential (-want +got):\n%s", diff)
	}
	got, err = e.client.CredentialForURL(ctx, "https://api.example.com/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantCred, got); diff != "" {
		t.Errorf("CredentialForURL (-want +got):\n%s", diff)
	}

	ps, err := e.client.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Name != "hub" || ps[0].State != ipc.StateValid {
		t.Errorf("profiles = %+v", ps)
	}
	b, _ := json.Marshal(ps)
	if strings.Contains(string(b), canary) {
		t.Errorf("profile list leaks the secret: %s", b)
	}
}

func TestAPIErrors(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		call       func() error
		wantStatus int
		wantCode   string
	}{
		{"unknown profile", func() error { _, err := e.client.Credential(ctx, "nope"); return err }, 404, ipc.CodeUnknownProfile},
		{"no profile for host", func() error { _, err := e.client.CredentialForURL(ctx, "https://other.org/"); return err }, 404, ipc.CodeNoProfile},
		{"relative url", func() error { _, err := e.client.CredentialForURL(ctx, "/just/a/path"); return err }, 400, ipc.CodeBadRequest},
		{"host not allowed", func() error { _, err := e.client.Credential(ctx, "hub", ipc.ForURL("https://evil.org/")); return err }, 403, ipc.CodeForbidden},
		{"plain http", func() error {
			_, err := e.client.Credential(ctx, "hub", ipc.ForURL("http://api.example.com/"))
			return err
		}, 403, ipc.CodeForbidden},
		{"unknown provider", func() error {
			return e.client.PutProfile(ctx, "x", ipc.ProfileSpec{ProfileConfig: ipc.ProfileConfig{Provider: "nope"}})
		}, 400, ipc.CodeBadRequest},
		{"bad key for kind", func() error {
			return e.client.PutProfile(ctx, "x", ipc.ProfileSpec{ProfileConfig: ipc.ProfileConfig{Provider: "apikey", Issuer: "https://x"}})
		}, 400, ipc.CodeBadRequest},
		{"delete unknown", func() error { return e.client.DeleteProfile(ctx, "nope") }, 404, ipc.CodeUnknownProfile},
		{"reject unknown", func() error { return e.client.Reject(ctx, "nope") }, 404, ipc.CodeUnknownProfile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae *ipc.Error
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want *ipc.Error", err)
			}
			if ae.Status != tc.wantStatus || ae.Code != tc.wantCode || ae.Message == "" {
				t.Errorf("got %d %s %q, want %d %s", ae.Status, ae.Code, ae.Message, tc.wantStatus, tc.wantCode)
			}
			if strings.Contains(ae.Message, canary) {
				t.Errorf("error message leaks the secret: %q", ae.Message)
			}
		})
	}
}

// raw sends a request over the socket without the client's help.
func raw(t *testing.T, sock, method, path, contentType string, body io.Reader) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(method, "http://authagent"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb errorBody
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
			t.Fatalf("%s %s: %d with a body not in the error shape: %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode, eb.Error.Code
	}
	return resp.StatusCode, ""
}

func TestMalformedRequests(t *testing.T) {
	e := startServer(t, nil)
	big := `{"provider":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name, method, path string
		body               io.Reader
		wantStatus         int
		wantCode           string
	}{
		{"malformed JSON", "PUT", "/v1/profiles/x", strings.NewReader(`{"provider":`), 400, ipc.CodeBadRequest},
		{"unknown field", "PUT", "/v1/profiles/x", strings.NewReader(`{"provider":"apikey","colour":"red"}`), 400, ipc.CodeBadRequest},
		{"two values", "PUT", "/v1/profiles/x", strings.NewReader(`{"provider":"apikey"} {}`), 400, ipc.CodeBadRequest},
		{"too large", "PUT", "/v1/profiles/x", strings.NewReader(big), 413, ipc.CodeTooLarge},
		{"too large, chunked", "PUT", "/v1/profiles/x", io.MultiReader(strings.NewReader(big)), 413, ipc.CodeTooLarge},
		{"bad min_valid", "GET", "/v1/profiles/hub/credential?min_valid=soon", nil, 400, ipc.CodeBadRequest},
		{"no such path", "GET", "/v2/whatever", nil, 404, ipc.CodeNotFound},
		{"wrong method", "POST", "/v1/status", nil, 405, ipc.CodeMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code := raw(t, e.sock, tc.method, tc.path, "application/json", tc.body)
			if status != tc.wantStatus || code != tc.wantCode {
				t.Errorf("got %d %s, want %d %s", status, code, tc.wantStatus, tc.wantCode)
			}
		})
	}
	// The agent keeps serving.
	if _, err := e.client.Credential(context.Background(), "hub"); err != nil {
		t.Fatal(err)
	}
}

func TestOtherUIDForbidden(t *testing.T) {
	other := os.Getuid() + 1
	e := startServer(t, &other)
	_, err := e.client.Status(context.Background())
	var ae *ipc.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Code != ipc.CodeForbidden {
		t.Fatalf("got %v, want 403 forbidden", err)
	}
}

func TestPutWatchDelete(t *testing.T) {
	e := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := e.client.Watch(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ev, err := w.Next()
	if err != nil || ev.Type != "current" || ev.Profile.Name != "hub" {
		t.Fatalf("first event = %+v, %v; want current hub", ev, err)
	}
	secret := "s3cret-new"
	spec := ipc.ProfileSpec{ProfileConfig: ipc.ProfileConfig{Provider: "apikey", Hosts: []string{"b.example.com"}}, Secret: &secret}
	if err := e.client.PutProfile(ctx, "b", spec); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err = w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Profile.Name == "b" && ev.Profile.State == ipc.StateValid {
			break
		}
	}
	c, err := e.client.CredentialForURL(ctx, "https://b.example.com/")
	if err != nil || c.Headers["Authorization"] != "Bearer "+secret {
		t.Fatalf("new profile: %+v, %v", c, err)
	}
	if err := e.client.DeleteProfile(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err = w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "removed" && ev.Profile.Name == "b" {
			break
		}
	}
	if _, err := e.store.Get(ctx, "b/secret"); !errors.Is(err, providers.ErrSecretNotFound) {
		t.Errorf("secret of removed profile: %v", err)
	}
}

func TestListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	sock := filepath.Join(dir, "agent.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, sock: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", path, got, want)
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := Listen(sock); !errors.Is(err, ErrAgentRunning) {
		t.Errorf("second Listen on a live socket: %v, want ErrAgentRunning", err)
	}
	// A socket file nobody listens on is stale and replaced.
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	ln.Close()
	ln2, err := Listen(sock)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln2.Close()
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
}

// errorBody is the shape of an error answer, {"error":{"code","message"}}.
type errorBody struct {
	Error *ipc.Error `json:"error"`
}
