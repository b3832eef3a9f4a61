package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/agent/audit"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

// startAuditServer runs an agent with one apikey profile "hub" (secret canary) that
// records to a real audit log, behind a real socket that serves the log back.
func startAuditServer(t *testing.T) (*ipc.Client, string, string) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "agent.sock")
	logPath := filepath.Join(dir, "state", "audit.log")
	al, err := audit.Open(logPath, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := agent.NewMemoryStore()
	if err := store.Set(context.Background(), "hub/secret", canary); err != nil {
		t.Fatal(err)
	}
	cfg := &agent.Config{Path: filepath.Join(dir, "config.toml"), Profiles: map[string]*providers.ProfileConfig{
		"hub": {Provider: "apikey", KeyID: "a1b2", Hosts: []string{"api.example.com"},
			Headers: map[string]string{"X-API-Key": "{secret}"}},
	}}
	a, err := agent.New(agent.Options{Config: cfg, Store: store, Audit: al,
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
	go func() { done <- (&Server{Agent: a, Audit: al}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		a.Close()
		al.Close()
	})
	return &ipc.Client{Socket: sock}, sock, logPath
}

// TestAuditEndpoint: each request is one entry with the verified caller (this test
// process), the URL's host only, and as result the very code the client got; GET
// /v1/audit filters and limits them; no entry holds a secret.
func TestAuditEndpoint(t *testing.T) {
	c, sock, logPath := startAuditServer(t)
	ctx := context.Background()
	code := func(err error) string {
		var e *ipc.Error
		if errors.As(err, &e) {
			return e.Code
		}
		if err != nil {
			t.Fatalf("not an API error: %v", err)
		}
		return audit.ResultOK
	}
	type want struct{ profile, op, host, result string }
	var wants []want
	_, err := c.Credential(ctx, "hub")
	wants = append(wants, want{"hub", audit.OpCredential, "", code(err)})
	_, err = c.Credential(ctx, "nope")
	wants = append(wants, want{"nope", audit.OpCredential, "", code(err)})
	_, err = c.CredentialForURL(ctx, "https://api.example.com/private/path?q=query-canary")
	wants = append(wants, want{"hub", audit.OpCredential, "api.example.com", code(err)})
	_, err = c.CredentialForURL(ctx, "https://elsewhere.example.com:8443/x")
	wants = append(wants, want{"", audit.OpCredential, "elsewhere.example.com:8443", code(err)})
	_, err = c.Credential(ctx, "hub", ipc.ForURL("https://evil.example.net/steal"))
	wants = append(wants, want{"hub", audit.OpCredential, "evil.example.net", code(err)})
	_, err = c.Sign(ctx, "hub", ipc.SignRequest{Method: "GET", URL: "https://api.example.com/s"})
	wants = append(wants, want{"hub", audit.OpSign, "api.example.com", code(err)})
	err = c.Reject(ctx, "hub")
	wants = append(wants, want{"hub", audit.OpReject, "", code(err)})
	err = c.SetSecret(ctx, "hub", canary+"-2")
	wants = append(wants, want{"hub", audit.OpSetSecret, "", code(err)})
	s := canary + "-3"
	err = c.PutProfile(ctx, "second", ipc.ProfileSpec{ProfileConfig: ipc.ProfileConfig{Provider: "apikey", KeyID: "k", Hosts: []string{"b.example.com"}}, Secret: &s})
	wants = append(wants, want{"second", audit.OpPutProfile, "", code(err)})
	err = c.DeleteProfile(ctx, "second")
	wants = append(wants, want{"second", audit.OpDeleteProfile, "", code(err)})

	results := map[string]bool{}
	for _, w := range wants {
		results[w.result] = true
	}
	for _, r := range []string{audit.ResultOK, ipc.CodeUnknownProfile, ipc.CodeNoProfile, ipc.CodeForbidden, ipc.CodeBadRequest} {
		if !results[r] {
			t.Errorf("no request above got %s; the test no longer compares that code", r)
		}
	}

	entries, err := c.Audit(ctx, ipc.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(wants) {
		t.Fatalf("%d entries, want %d: %+v", len(entries), len(wants), entries)
	}
	self, _ := os.Executable()
	self, _ = filepath.EvalSymlinks(self)
	for i, e := range entries {
		w := wants[i]
		if got := (want{e.Profile, e.Op, e.Host, e.Result}); got != w {
			t.Errorf("entry %d: %+v, want %+v", i, got, w)
		}
		if e.PID != os.Getpid() {
			t.Errorf("entry %d: pid %d, want this process's %d", i, e.PID, os.Getpid())
		}
		if runtime.GOOS == "linux" && (e.Exe != self || e.ParentPID != os.Getppid() || e.ParentExe == "") {
			t.Errorf("entry %d: exe %q, parent %d %q; want %q, %d and its exe", i, e.Exe, e.ParentPID, e.ParentExe, self, os.Getppid())
		}
		if e.Time.IsZero() || e.Time.Location() != time.UTC {
			t.Errorf("entry %d: time %v, want a UTC time", i, e.Time)
		}
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{canary, "/private/path", "query-canary", "/steal"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the audit log holds %q:\n%s", leak, b)
		}
	}

	got, err := c.Audit(ctx, ipc.AuditQuery{Profile: "second"})
	if err != nil || len(got) != 2 || got[0].Op != audit.OpPutProfile || got[1].Op != audit.OpDeleteProfile {
		t.Errorf("profile=second: %+v, %v; want its put and delete", got, err)
	}
	got, err = c.Audit(ctx, ipc.AuditQuery{Limit: 2})
	if err != nil || len(got) != 2 || got[1] != entries[len(entries)-1] {
		t.Errorf("limit=2: %+v, %v; want the newest two", got, err)
	}
	got, err = c.Audit(ctx, ipc.AuditQuery{Since: time.Now().Add(time.Hour)})
	if err != nil || len(got) != 0 {
		t.Errorf("since an hour from now: %+v, %v; want none", got, err)
	}
	for _, q := range []string{"limit=0", "limit=10001", "limit=x", "since=yesterday"} {
		status, code, answer := ask(t, sock, http.MethodGet, "/v1/audit?"+q)
		if status != http.StatusBadRequest || code != ipc.CodeBadRequest {
			t.Errorf("GET /v1/audit?%s: %d %s, want 400 bad_request: %s", q, status, code, answer)
		}
	}
}

// TestAuditEndpointWithoutLog: an agent that keeps no audit log says so with 503.
func TestAuditEndpointWithoutLog(t *testing.T) {
	e := startServer(t, nil)
	_, err := e.client.Audit(context.Background(), ipc.AuditQuery{})
	if !ipc.IsCode(err, ipc.CodeUnavailable) {
		t.Errorf("GET /v1/audit without a log: %v, want 503 unavailable", err)
	}
}
