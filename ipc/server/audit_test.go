package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/agent/audit"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

// startAuditServer runs an agent with one apikey profile "hub" (secret canary) that
// records to a real audit log, behind a real socket that serves the log back. uid is the
// Server's UID (nil: this process's).
func startAuditServer(t *testing.T, uid *int) (*ipc.Client, string, string) {
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
	go func() { done <- (&Server{Agent: a, Audit: al, UID: uid}).Serve(ctx, ln) }()
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
	c, sock, logPath := startAuditServer(t, nil)
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
	wants = append(wants, want{"", audit.OpCredential, "", code(err)}) // not a profile: left out
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

// ghpCanary is shaped like a GitHub token (ghp_ and 36 letters and digits): a valid
// profile name, as most API keys are.
const ghpCanary = "ghp_CANARY0123456789abcdefghijklmnopqrst"

// TestAuditUnknownNames: a token passed where a profile name goes (credential, kube
// credential, login, cancel login, logout, reject, remove) is never written to the log: the
// entry keeps the code the client got, without the name. The kube-credential lookup that
// fails (by name or by URL) is recorded, and so is a cancelled login.
func TestAuditUnknownNames(t *testing.T) {
	if len(ghpCanary) != 40 {
		t.Fatalf("canary is %d long, want 40", len(ghpCanary))
	}
	c, sock, logPath := startAuditServer(t, nil)
	ctx := context.Background()
	type want struct{ profile, op, host, result string }
	var wants []want
	_, err := c.Credential(ctx, ghpCanary)
	wants = append(wants, want{"", audit.OpCredential, "", codeOf(err)})
	status, kcode, answer := ask(t, sock, http.MethodGet, "/v1/profiles/"+ghpCanary+"/credential?token=kube")
	if status != http.StatusNotFound {
		t.Errorf("kube credential of an unknown name: %d %s", status, answer)
	}
	wants = append(wants, want{"", audit.OpCredential, "", kcode})
	status, kcode, answer = ask(t, sock, http.MethodGet, "/v1/credential?token=kube&url=https%3A%2F%2Fnowhere.example.org%2F"+ghpCanary)
	if status != http.StatusNotFound {
		t.Errorf("kube credential for a URL no profile lists: %d %s", status, answer)
	}
	wants = append(wants, want{"", audit.OpCredential, "nowhere.example.org", kcode})
	status, kcode, answer = ask(t, sock, http.MethodGet, "/v1/profiles/hub/credential?token=kube")
	if status != http.StatusOK {
		t.Errorf("kube credential of hub: %d %s", status, answer)
	}
	wants = append(wants, want{"hub", audit.OpCredential, "", audit.ResultOK})
	_, err = c.Login(ctx, ghpCanary)
	wants = append(wants, want{"", audit.OpLogin, "", codeOf(err)})
	err = c.CancelLogin(ctx, ghpCanary)
	wants = append(wants, want{"", audit.OpLoginCancel, "", codeOf(err)})
	err = c.CancelLogin(ctx, "hub") // no login in progress: bad_request, a real name kept
	wants = append(wants, want{"hub", audit.OpLoginCancel, "", codeOf(err)})
	err = c.Logout(ctx, ghpCanary)
	wants = append(wants, want{"", audit.OpLogout, "", codeOf(err)})
	err = c.Reject(ctx, ghpCanary)
	wants = append(wants, want{"", audit.OpReject, "", codeOf(err)})
	err = c.DeleteProfile(ctx, ghpCanary)
	wants = append(wants, want{"", audit.OpDeleteProfile, "", codeOf(err)})

	for i, w := range wants {
		if want := ipc.CodeUnknownProfile; w.profile == "" && w.host == "" && w.result != want {
			t.Errorf("request %d (%s): got %s, want %s", i, w.op, w.result, want)
		}
	}
	// The log's writer runs behind the requests: reading the log back waits for it, so
	// the file is read after, with every entry in it.
	entries, err := c.Audit(ctx, ipc.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "ghp_") || strings.Contains(strings.ToLower(string(b)), "canary") {
		t.Errorf("the audit log holds the token passed as a name:\n%s", b)
	}
	var got []want
	for _, e := range entries {
		got = append(got, want{e.Profile, e.Op, e.Host, e.Result})
	}
	if d := cmp.Diff(wants, got, cmp.AllowUnexported(want{})); d != "" {
		t.Errorf("entries (-want +got):\n%s", d)
	}
}

// TestAuditRefused: a connection from another user is refused with 403 and recorded as
// op refused with its pid and uid, once per uid a minute however often it knocks.
func TestAuditRefused(t *testing.T) {
	other := os.Getuid() + 1
	c, _, logPath := startAuditServer(t, &other) // this process plays the other user
	ctx := context.Background()
	for range 3 {
		if _, err := c.Status(ctx); !ipc.IsCode(err, ipc.CodeForbidden) {
			t.Fatalf("status from another uid: %v, want forbidden", err)
		}
	}
	var entries []audit.Entry
	var err error
	// The log's writer runs behind the requests (package audit): wait for the entry.
	for deadline := time.Now().Add(30 * time.Second); len(entries) == 0 && err == nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		entries, err = audit.Read(logPath, audit.Filter{})
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d entries, want one refused: %+v", len(entries), entries)
	}
	e := entries[0]
	if e.Op != audit.OpRefused || e.Result != ipc.CodeForbidden || e.PID != os.Getpid() || e.UID == nil || *e.UID != os.Getuid() || e.Profile != "" {
		uid := "nil"
		if e.UID != nil {
			uid = strconv.Itoa(*e.UID)
		}
		t.Errorf("entry %+v (uid %s); want op refused, result forbidden, pid %d, uid %d", e, uid, os.Getpid(), os.Getuid())
	}
}

// codeOf is the API error code of err, or "ok".
func codeOf(err error) string {
	if err == nil {
		return audit.ResultOK
	}
	var e *ipc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "not an API error: " + err.Error()
}
