package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
)

// loginProvider is a fake device-flow provider: Login shows a challenge and waits for
// approve (or ctx).
type loginProvider struct {
	fakeProvider
	approve  chan error
	loggedIn chan struct{}
	logouts  int
}

func (p *loginProvider) Login(ctx context.Context, show func(providers.Challenge)) (*providers.Credential, error) {
	show(providers.Challenge{UserCode: "WXYZ-1234", VerificationURI: "https://idp.test/device", ExpiresAt: time.Now().Add(time.Minute)})
	select {
	case err := <-p.approve:
		if err != nil {
			return nil, err
		}
		return &providers.Credential{Token: "fresh", ExpiresAt: p.clock.Now().Add(time.Hour)}, nil
	case <-ctx.Done():
		return nil, errors.New("login cancelled")
	}
}

func (p *loginProvider) Logout(context.Context) error {
	p.mu.Lock()
	p.logouts++
	p.mu.Unlock()
	return nil
}

func newLoginHarness(t *testing.T) (*Agent, *loginProvider, *fakeClock) {
	t.Helper()
	return newLoginHarnessFor(t, func(lp *loginProvider) providers.Provider { return lp })
}

// newLoginHarnessFor is newLoginHarness with the profile's provider made by wrap.
func newLoginHarnessFor(t *testing.T, wrap func(*loginProvider) providers.Provider) (*Agent, *loginProvider, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	lp := &loginProvider{approve: make(chan error)}
	lp.clock = clock
	lp.fetch = func(*fakeClock, int) (*providers.Credential, error) {
		return nil, errors.Join(errors.New("not logged in"), providers.ErrNeedsLogin)
	}
	cfg := &Config{Path: filepath.Join(t.TempDir(), "c.toml"), Profiles: map[string]*providers.ProfileConfig{"work": {Provider: "dc"}}}
	a, err := New(Options{Config: cfg, Store: NewMemoryStore(), Clock: clock, Jitter: func() float64 { return 0.5 },
		Providers: map[string]providers.Factory{"dc": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return wrap(lp), nil }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	waitState(t, a, "work", StateNeedsLogin)
	return a, lp, clock
}

func waitState(t *testing.T, a *Agent, name string, want State) ProfileInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := a.Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		if info.State == want {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %q (last_error %q), want %q", info.State, info.LastError, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLoginFlow(t *testing.T) {
	a, lp, _ := newLoginHarness(t)
	ctx := context.Background()
	ch, err := a.Login(ctx, "work")
	if err != nil {
		t.Fatal(err)
	}
	if ch.UserCode != "WXYZ-1234" {
		t.Errorf("challenge %+v", ch)
	}
	info := waitState(t, a, "work", StateLoginPending)
	if info.Login == nil || info.Login.UserCode != "WXYZ-1234" {
		t.Errorf("profile during login: %+v", info)
	}
	if _, err := a.Login(ctx, "work"); !errors.Is(err, ErrLoginPending) {
		t.Errorf("second login: %v, want ErrLoginPending", err)
	}
	if _, err := a.Credential(ctx, "work", -1, nil); !errors.Is(err, ErrNeedsLogin) {
		t.Errorf("credential during login: %v, want ErrNeedsLogin", err)
	}
	lp.approve <- nil
	info = waitState(t, a, "work", StateValid)
	if info.Login != nil || info.LastError != "" {
		t.Errorf("after login: %+v", info)
	}
	c, err := a.Credential(ctx, "work", -1, nil)
	if err != nil || c.Token != "fresh" {
		t.Fatalf("after login: %v, %v", c, err)
	}

	if err := a.Logout(ctx, "work"); err != nil {
		t.Fatal(err)
	}
	info = waitState(t, a, "work", StateNeedsLogin)
	if lp.logouts != 1 {
		t.Errorf("provider logouts = %d, want 1", lp.logouts)
	}
	if _, err := a.Credential(ctx, "work", -1, nil); !errors.Is(err, ErrNeedsLogin) {
		t.Errorf("credential after logout: %v, want ErrNeedsLogin", err)
	}
}

func TestLoginCancelAndFailure(t *testing.T) {
	a, lp, _ := newLoginHarness(t)
	ctx := context.Background()
	if _, err := a.Login(ctx, "work"); err != nil {
		t.Fatal(err)
	}
	if err := a.CancelLogin(context.Background(), "work"); err != nil {
		t.Fatal(err)
	}
	info := waitState(t, a, "work", StateNeedsLogin)
	if info.LastError != "login failed: login cancelled" {
		t.Errorf("last_error %q", info.LastError)
	}
	if err := a.CancelLogin(context.Background(), "work"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("cancel with no login: %v", err)
	}
	if _, err := a.Login(ctx, "work"); err != nil {
		t.Fatal(err)
	}
	lp.approve <- errors.New("the login was denied at the identity provider")
	info = waitState(t, a, "work", StateNeedsLogin)
	if info.LastError != "login failed: the login was denied at the identity provider" {
		t.Errorf("last_error %q", info.LastError)
	}
}

func TestLoginNotSupported(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "k"}, nil })
	if _, err := h.a.Login(context.Background(), "p"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("login of a static profile: %v, want ErrBadRequest", err)
	}
	if err := h.a.Logout(context.Background(), "p"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("logout of a static profile: %v, want ErrBadRequest", err)
	}
}

type signingProvider struct{ fakeProvider }

func (*signingProvider) Sign(_ context.Context, r providers.SignRequest) (map[string]string, error) {
	return map[string]string{"Authorization": "SIG " + r.Method + " " + r.URL}, nil
}

func TestSign(t *testing.T) {
	clock := newFakeClock()
	sp := &signingProvider{}
	sp.clock = clock
	sp.fetch = func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{}, nil }
	cfg := &Config{Path: filepath.Join(t.TempDir(), "c.toml"), Profiles: map[string]*providers.ProfileConfig{
		"s": {Provider: "sig", Hosts: []string{"api.example.com"}}}}
	a, err := New(Options{Config: cfg, Store: NewMemoryStore(), Clock: clock,
		Providers: map[string]providers.Factory{"sig": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return sp, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	h, err := a.Sign(ctx, "s", providers.SignRequest{Method: "GET", URL: "https://api.example.com/x"})
	if err != nil || h["Authorization"] != "SIG GET https://api.example.com/x" {
		t.Fatalf("got %v, %v", h, err)
	}
	for _, u := range []string{"https://evil.example.org/", "http://api.example.com/", "/relative"} {
		if _, err := a.Sign(ctx, "s", providers.SignRequest{Method: "GET", URL: u}); !errors.Is(err, ErrForbidden) && !errors.Is(err, ErrBadRequest) {
			t.Errorf("sign for %s: %v, want refused", u, err)
		}
	}
}

// A login whose client leaves before the challenge is shown ends quietly: what the profile
// said before stands, instead of "login failed: … context canceled".
func TestLoginAbandonedQuietly(t *testing.T) {
	a, _, _ := newLoginHarnessFor(t, func(lp *loginProvider) providers.Provider { return &slowLogin{lp} })
	before, _ := a.Profile("work")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Login(ctx, "work"); err == nil {
		t.Fatal("a login whose client left succeeded")
	}
	// The login never showed a challenge, so the state says needs_login all along: wait
	// for the login itself to end, or the check below would run before its outcome.
	waitLoginEnded(t, a, "work")
	info, _ := a.Profile("work")
	if info.State != StateNeedsLogin || info.LastError != before.LastError {
		t.Errorf("state %q, last_error %q after an abandoned login, want them unchanged: %q, %q", info.State, info.LastError, before.State, before.LastError)
	}
}

// waitLoginEnded waits until the last login of profile name has ended and recorded how.
func waitLoginEnded(t *testing.T, a *Agent, name string) {
	t.Helper()
	a.mu.Lock()
	p := a.profiles.get(name)
	a.mu.Unlock()
	p.mu.Lock()
	done := p.loginDone
	p.mu.Unlock()
	if done == nil {
		t.Fatalf("profile %s has had no login", name)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the login did not end within 30s")
	}
}

// slowLogin waits for its context before it would show anything.
type slowLogin struct{ *loginProvider }

func (p *slowLogin) Login(ctx context.Context, show func(providers.Challenge)) (*providers.Credential, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("read client secret: %w", ctx.Err())
}
