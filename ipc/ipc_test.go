package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

const canary = "canary-5f0d8e"

type env struct {
	a      *agent.Agent
	client *Client
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
	return &env{a: a, client: &Client{Socket: sock}, sock: sock, store: store}
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

	wantCred := &Credential{
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
	if len(ps) != 1 || ps[0].Name != "hub" || ps[0].State != StateValid {
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
		{"unknown profile", func() error { _, err := e.client.Credential(ctx, "nope"); return err }, 404, CodeUnknownProfile},
		{"no profile for host", func() error { _, err := e.client.CredentialForURL(ctx, "https://other.org/"); return err }, 404, CodeNoProfile},
		{"relative url", func() error { _, err := e.client.CredentialForURL(ctx, "/just/a/path"); return err }, 400, CodeBadRequest},
		{"host not allowed", func() error { _, err := e.client.Credential(ctx, "hub", ForURL("https://evil.org/")); return err }, 403, CodeForbidden},
		{"plain http", func() error { _, err := e.client.Credential(ctx, "hub", ForURL("http://api.example.com/")); return err }, 403, CodeForbidden},
		{"unknown provider", func() error {
			return e.client.PutProfile(ctx, "x", ProfileSpec{ProfileConfig: providers.ProfileConfig{Provider: "nope"}})
		}, 400, CodeBadRequest},
		{"bad key for kind", func() error {
			return e.client.PutProfile(ctx, "x", ProfileSpec{ProfileConfig: providers.ProfileConfig{Provider: "apikey", Issuer: "https://x"}})
		}, 400, CodeBadRequest},
		{"delete unknown", func() error { return e.client.DeleteProfile(ctx, "nope") }, 404, CodeUnknownProfile},
		{"reject unknown", func() error { return e.client.Reject(ctx, "nope") }, 404, CodeUnknownProfile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae *Error
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
		{"malformed JSON", "PUT", "/v1/profiles/x", strings.NewReader(`{"provider":`), 400, CodeBadRequest},
		{"unknown field", "PUT", "/v1/profiles/x", strings.NewReader(`{"provider":"apikey","colour":"red"}`), 400, CodeBadRequest},
		{"two values", "PUT", "/v1/profiles/x", strings.NewReader(`{"provider":"apikey"} {}`), 400, CodeBadRequest},
		{"too large", "PUT", "/v1/profiles/x", strings.NewReader(big), 413, CodeTooLarge},
		{"too large, chunked", "PUT", "/v1/profiles/x", io.MultiReader(strings.NewReader(big)), 413, CodeTooLarge},
		{"bad min_valid", "GET", "/v1/profiles/hub/credential?min_valid=soon", nil, 400, CodeBadRequest},
		{"no such path", "GET", "/v2/whatever", nil, 404, CodeNotFound},
		{"wrong method", "POST", "/v1/status", nil, 405, CodeMethodNotAllowed},
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
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Code != CodeForbidden {
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
	spec := ProfileSpec{ProfileConfig: providers.ProfileConfig{Provider: "apikey", Hosts: []string{"b.example.com"}}, Secret: &secret}
	if err := e.client.PutProfile(ctx, "b", spec); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err = w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Profile.Name == "b" && ev.Profile.State == StateValid {
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

func TestTransport(t *testing.T) {
	e := startServer(t, nil)
	status := http.StatusOK
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.WriteHeader(status)
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &Transport{Client: e.client}}
	resp, err := hc.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seen.Get("X-API-Key") != canary || seen.Get("X-API-Key-ID") != "a1b2" {
		t.Errorf("server saw headers %v", seen)
	}

	// A 401 makes the agent drop its cached token: watch for the change it announces.
	w, err := e.client.Watch(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	status = http.StatusUnauthorized
	resp, err = hc.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ev, err := w.Next(); err != nil || ev.Profile.Name != "hub" {
		t.Errorf("after a 401: event %+v, %v; want a change of hub", ev, err)
	}

	// A host outside the profile's hosts gets nothing.
	pinned := &http.Client{Transport: &Transport{Client: e.client, Profile: "hub"}}
	if _, err := pinned.Get(strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)); err == nil {
		t.Error("pinned transport sent a token to a host outside the profile's hosts")
	}
}

func TestPerRPCCredentials(t *testing.T) {
	e := startServer(t, nil)
	for _, p := range []*PerRPCCredentials{
		{Client: e.client, Profile: "hub"},
		{Client: e.client},
	} {
		md, err := p.GetRequestMetadata(context.Background(), "https://api.example.com/pkg.Service")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]string{"x-api-key-id": "a1b2", "x-api-key": canary}, md); diff != "" {
			t.Errorf("metadata (-want +got):\n%s", diff)
		}
		if !p.RequireTransportSecurity() {
			t.Error("RequireTransportSecurity = false by default")
		}
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

func TestNoAgent(t *testing.T) {
	c := &Client{Socket: filepath.Join(t.TempDir(), "none.sock")}
	_, err := c.Status(context.Background())
	if !errors.Is(err, ErrNoAgent) || !strings.Contains(err.Error(), "authagent start") {
		t.Errorf("got %v, want ErrNoAgent that says how to start one", err)
	}
}

// BenchmarkCredentialKeepAlive measures a cached credential request over a kept-alive
// socket connection, the hot path of every client. Goal: p50 under 50µs on 2 cores.
func BenchmarkCredentialKeepAlive(b *testing.B) {
	e := startServer(b, nil)
	ctx := context.Background()
	if _, err := e.client.Credential(ctx, "hub"); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := e.client.Credential(ctx, "hub"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

func ExampleClient() {
	c := &Client{} // finds $AUTHAGENT_SOCK or the default socket by itself
	cred, err := c.CredentialForURL(context.Background(), "https://api.example.com/v1/things")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(cred.Headers) > 0)
}

func TestClientRetriesOnConnectionTheAgentClosed(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	if _, err := e.client.Status(ctx); err != nil {
		t.Fatal(err)
	}
	// The pooled connection now reads EOF at once, as one the agent closed would.
	pool := e.client.conns()
	pool.mu.Lock()
	if len(pool.idle) != 1 {
		t.Fatalf("%d idle connections after one request, want 1", len(pool.idle))
	}
	pool.idle[0].Conn.(*net.UnixConn).CloseRead()
	pool.mu.Unlock()
	if _, err := e.client.Status(ctx); err != nil {
		t.Fatalf("request on a connection the agent closed: %v", err)
	}
}
