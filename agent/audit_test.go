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

	"github.com/authagent/authagent/agent/audit"
	"github.com/authagent/authagent/providers"
)

// TestAuditLogins: a login is two entries, its start and how it ended (ok, or the
// provider's refusal as provider_error), a logout one; each names the caller the request
// came with, also for the outcome that arrives after the request is answered. A string
// that is not a valid profile name (a token pasted as one) is left out of the entry.
func TestAuditLogins(t *testing.T) {
	clock := newFakeClock()
	lp := &loginProvider{approve: make(chan error)}
	lp.clock = clock
	lp.fetch = func(*fakeClock, int) (*providers.Credential, error) {
		return nil, errors.Join(errors.New("not logged in"), providers.ErrNeedsLogin)
	}
	logPath := filepath.Join(t.TempDir(), "audit.log")
	al, err := audit.Open(logPath, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: the agent (registered below) closes before the
	// log, so nothing it records while closing is written after the temp dir is gone.
	t.Cleanup(func() { al.Close() })
	cfg := &Config{Path: filepath.Join(t.TempDir(), "c.toml"), Profiles: map[string]*providers.ProfileConfig{"work": {Provider: "dc"}}}
	a, err := New(Options{Config: cfg, Store: NewMemoryStore(), Clock: clock, Jitter: func() float64 { return 0.5 }, Audit: al,
		Providers: map[string]providers.Factory{"dc": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return lp, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	waitState(t, a, "work", StateNeedsLogin)

	caller := &Caller{PID: 4711, UID: os.Getuid(), Exe: "/usr/bin/authagent", ParentPID: 4710, ParentExe: "/usr/bin/bash"}
	ctx := WithCaller(context.Background(), caller)
	if _, err := a.Login(ctx, "work"); err != nil {
		t.Fatal(err)
	}
	lp.approve <- errors.New("access_denied: the user said no")
	waitState(t, a, "work", StateNeedsLogin)
	if _, err := a.Login(ctx, "work"); err != nil {
		t.Fatal(err)
	}
	lp.approve <- nil
	waitState(t, a, "work", StateValid)
	if err := a.Logout(ctx, "work"); err != nil {
		t.Fatal(err)
	}
	pasted := "eyJhbGciOi.eyJzdWIiOiJtZSJ9.c2lnbmF0dXJlLWNhbmFyeS10aGF0LWlzLWxvbmdlci10aGFuLTY0LWNoYXJz"
	if _, err := a.Credential(ctx, pasted, -1, nil); !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("credential of a pasted token: %v, want unknown profile", err)
	}

	var got []string
	for _, e := range readAudit(t, al, audit.Filter{}, 6) {
		got = append(got, e.Profile+" "+e.Op+" "+e.Result)
		if e.PID != caller.PID || e.Exe != caller.Exe || e.ParentPID != caller.ParentPID || e.ParentExe != caller.ParentExe {
			t.Errorf("%s %s: caller %d %q, parent %d %q; want the request's", e.Op, e.Result, e.PID, e.Exe, e.ParentPID, e.ParentExe)
		}
	}
	want := []string{
		"work login ok", "work login_done provider_error",
		"work login ok", "work login_done ok",
		"work logout ok",
		" credential unknown_profile",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	b, _ := os.ReadFile(logPath)
	if strings.Contains(string(b), "canary") || strings.Contains(string(b), "WXYZ-1234") {
		t.Errorf("the audit log holds the pasted token or the login's user code:\n%s", b)
	}
}

// readAudit reads the entries of al that f selects once there are at least n of them, or
// after 30s. Read waits for the entries recorded before it only up to 2s, which the writer
// of a loaded machine can take.
func readAudit(t *testing.T, al *audit.Log, f audit.Filter, n int) []audit.Entry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries, err := al.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) >= n || time.Now().After(deadline) {
			return entries
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// auditAgent is an agent that records to a real audit log, with the profiles of the config
// file at cfgPath (written by the caller), each served by a provider that hands out "t".
func auditAgent(t *testing.T, cfgPath string) (*Agent, *audit.Log) {
	t.Helper()
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	al, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	clock := newFakeClock()
	lp := &loginProvider{approve: make(chan error)}
	lp.clock = clock
	lp.fetch = func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil }
	a, err := New(Options{Config: cfg, Store: NewMemoryStore(), Clock: clock, Jitter: func() float64 { return 0.5 }, Audit: al,
		Providers: map[string]providers.Factory{"fake": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return lp, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, al
}

// TestAuditUnknownNameLeftOut: a token shaped like a GitHub one (a valid profile name)
// passed as the name of a profile that does not exist reaches no entry, whatever the
// operation; the entries keep their result codes.
func TestAuditUnknownNameLeftOut(t *testing.T) {
	const canary = "ghp_CANARY0123456789abcdefghijklmnopqrst"
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfgPath, []byte("[profile.work]\nprovider = \"fake\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, al := auditAgent(t, cfgPath)
	ctx := WithCaller(context.Background(), &Caller{PID: 4711, Exe: "/usr/bin/curl"})
	target, _ := url.Parse("https://api.example.com/x")
	calls := []func() error{
		func() error { _, err := a.Credential(ctx, canary, -1, nil); return err },
		func() error { _, err := a.Credential(ctx, canary, -1, target); return err },
		func() error { _, err := a.IDToken(ctx, canary, -1, nil); return err },
		func() error { _, err := a.Login(ctx, canary); return err },
		func() error { return a.CancelLogin(ctx, canary) },
		func() error { return a.Logout(ctx, canary) },
		func() error { return a.Reject(ctx, canary) },
		func() error { return a.PushToken(ctx, canary, "x.y.z", time.Time{}) },
		func() error {
			_, err := a.Sign(ctx, canary, providers.SignRequest{Method: "GET", URL: "https://api.example.com/"})
			return err
		},
		func() error { return a.SetSecret(ctx, canary, "s") },
		func() error { return a.DeleteProfile(ctx, canary) },
	}
	for i, call := range calls {
		if err := call(); !errors.Is(err, ErrUnknownProfile) {
			t.Errorf("call %d with an unknown name: %v, want ErrUnknownProfile", i, err)
		}
	}
	// A profile that cannot be defined is not one either.
	if err := a.PutProfile(ctx, canary, &providers.ProfileConfig{Provider: "no-such-provider"}, nil); err == nil {
		t.Fatal("PutProfile with an unknown provider worked")
	}
	entries := readAudit(t, al, audit.Filter{}, len(calls)+1)
	if len(entries) != len(calls)+1 {
		t.Fatalf("%d entries, want %d: %+v", len(entries), len(calls)+1, entries)
	}
	for i, e := range entries[:len(calls)] {
		if e.Profile != "" || e.Result != "unknown_profile" || e.PID != 4711 {
			t.Errorf("entry %d: %+v; want no profile, result unknown_profile, the caller's pid", i, e)
		}
	}
	if e := entries[len(calls)]; e.Profile != "" || e.Op != audit.OpPutProfile || e.Result == audit.ResultOK {
		t.Errorf("the failed put: %+v; want no profile and its error code", e)
	}
	b, _ := os.ReadFile(al.Path())
	if strings.Contains(string(b), "ghp_") || strings.Contains(string(b), "CANARY") {
		t.Errorf("the audit log holds the token passed as a name:\n%s", b)
	}
	// A defined profile is named, also when the operation failed.
	if err := a.CancelLogin(ctx, "work"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("cancel without a login: %v, want ErrBadRequest", err)
	}
	all := readAudit(t, al, audit.Filter{}, len(calls)+2)
	if last := all[len(all)-1]; len(all) != len(calls)+2 || last.Profile != "work" || last.Op != audit.OpLoginCancel || last.Result != "bad_request" {
		t.Errorf("cancel of work's (absent) login: %d entries, the last %+v; want one more, work login_cancel bad_request", len(all), last)
	}
}

// TestAuditResultConfirmRequired: a request answered confirm_required is recorded so, not
// as internal.
func TestAuditResultConfirmRequired(t *testing.T) {
	if got := auditResult(fmt.Errorf("profile work: %w", ErrConfirmRequired)); got != "confirm_required" {
		t.Errorf("auditResult(ErrConfirmRequired) = %q, want confirm_required", got)
	}
	if got := auditResult(&ConfirmRequiredError{}); got != "confirm_required" {
		t.Errorf("auditResult(*ConfirmRequiredError) = %q, want confirm_required", got)
	}
}

// TestAuditReload: a reload records each profile it adds or changes (reload_put) and
// removes (reload_delete), under the caller that asked for it (POST /v1/reload), or
// under none (SIGHUP); a profile it leaves as it was, and a reload that fails, record
// nothing.
func TestAuditReload(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[profile.keep]\nprovider = \"fake\"\n[profile.change]\nprovider = \"fake\"\nhosts = [\"a.example.com\"]\n[profile.gone]\nprovider = \"fake\"\n")
	a, al := auditAgent(t, cfgPath)
	caller := &Caller{PID: 4711, Exe: "/usr/bin/authagent", ParentPID: 4710, ParentExe: "/usr/bin/bash"}
	write("[profile.keep]\nprovider = \"fake\"\n[profile.change]\nprovider = \"fake\"\nhosts = [\"b.example.com\"]\n[profile.new]\nprovider = \"fake\"\n")
	if err := a.ReloadFor(WithCaller(context.Background(), caller)); err != nil {
		t.Fatal(err)
	}
	write("[profile.keep]\nprovider = \"fake\"\n[profile.change]\nprovider = \"fake\"\nhosts = [\"b.example.com\"]\n[profile.new]\nprovider = \"fake\"\nscopess = 1\n")
	if err := a.Reload(); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("reload of a bad file: %v, want ErrBadRequest", err)
	}
	write("[profile.keep]\nprovider = \"fake\"\n")
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range readAudit(t, al, audit.Filter{}, 5) {
		got = append(got, fmt.Sprintf("%s %s %s pid=%d exe=%s parent=%d", e.Profile, e.Op, e.Result, e.PID, e.Exe, e.ParentPID))
	}
	want := []string{
		"change reload_put ok pid=4711 exe=/usr/bin/authagent parent=4710",
		"new reload_put ok pid=4711 exe=/usr/bin/authagent parent=4710",
		"gone reload_delete ok pid=4711 exe=/usr/bin/authagent parent=4710",
		"change reload_delete ok pid=0 exe= parent=0",
		"new reload_delete ok pid=0 exe= parent=0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
