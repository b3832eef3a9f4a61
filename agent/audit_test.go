package agent

import (
	"context"
	"errors"
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
	defer al.Close()
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := al.Read(audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range entries {
			got = append(got, e.Profile+" "+e.Op+" "+e.Result)
			if e.PID != caller.PID || e.Exe != caller.Exe || e.ParentPID != caller.ParentPID || e.ParentExe != caller.ParentExe {
				t.Errorf("%s %s: caller %d %q, parent %d %q; want the request's", e.Op, e.Result, e.PID, e.Exe, e.ParentPID, e.ParentExe)
			}
		}
		if len(got) >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
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
