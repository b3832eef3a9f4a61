package login_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/server/servertest"
	"github.com/authagent/authagent/login"
	"github.com/authagent/authagent/providers"
)

// gateProvider is a device-login provider whose logins wait until the test ends them:
// with a token (nil) or with an error.
type gateProvider struct{ end chan error }

func (p *gateProvider) Fetch(context.Context) (*providers.Credential, error) {
	return nil, providers.ErrNeedsLogin
}

func (p *gateProvider) Login(ctx context.Context, show func(providers.Challenge)) (*providers.Credential, error) {
	show(providers.Challenge{Flow: providers.FlowDevice, UserCode: "WDJB-MJHT", VerificationURI: "https://idp.test/device",
		VerificationURIComplete: "https://idp.test/device?user_code=WDJB-MJHT", ExpiresAt: time.Now().Add(time.Minute), Interval: time.Second})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case err := <-p.end:
		if err != nil {
			return nil, err
		}
		return providers.TokenCredential("", "access-tok", time.Now().Add(time.Hour)), nil
	}
}

func (p *gateProvider) Logout(context.Context) error { return nil }

func startAgent(t *testing.T) (*ipc.Client, *gateProvider) {
	t.Helper()
	gp := &gateProvider{end: make(chan error, 1)}
	cfg := &agent.Config{Path: filepath.Join(t.TempDir(), "config.toml"), Profiles: map[string]*providers.ProfileConfig{
		"work": {Provider: "gate"},
	}}
	a, err := agent.New(agent.Options{Config: cfg, Store: agent.NewMemoryStore(), Providers: map[string]providers.Factory{
		"gate": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return gp, nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	sock := servertest.Serve(t, a, "")
	return &ipc.Client{Socket: sock}, gp
}

// recorder is the UI and the Opener: it writes down what the user was shown and what
// was opened.
type recorder struct {
	mu      sync.Mutex
	events  []string
	openErr error
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recorder) Challenge(name string, ch *ipc.LoginChallenge, joined, opening bool) {
	what := "challenge"
	if joined {
		what = "joined"
	}
	r.add(what + " " + name + " " + ch.UserCode + map[bool]string{true: " opening", false: ""}[opening])
}

func (r *recorder) OpenFailed(name string, _ *ipc.LoginChallenge, err error) {
	r.add("open failed " + name + ": " + err.Error())
}

func (r *recorder) Waiting(name string, _ *ipc.LoginChallenge) { r.add("waiting " + name) }

func (r *recorder) Open(_ context.Context, target string) error {
	r.add("open " + target)
	return r.openErr
}

// Starting a login shows the challenge and opens its page; a second login while the
// first waits joins it instead of failing with login_pending, and says so.
func TestStartAndJoin(t *testing.T) {
	c, _ := startAgent(t)
	rec := &recorder{}
	l := &login.Login{Client: c, Opener: rec, UI: rec}
	ctx := context.Background()
	if err := l.Do(ctx, login.Input{Profile: "work", Display: true}); err != nil {
		t.Fatal(err)
	}
	if err := l.Do(ctx, login.Input{Profile: "work"}); err != nil {
		t.Fatalf("a second login while one waits: %v, want to join it", err)
	}
	want := []string{
		"challenge work WDJB-MJHT opening",
		"open https://idp.test/device?user_code=WDJB-MJHT",
		"joined work WDJB-MJHT", // no display: nothing opened
	}
	if diff := cmp.Diff(want, rec.all()); diff != "" {
		t.Errorf("what the user saw (-want +got):\n%s", diff)
	}
}

// With Wait, Do returns when the login ends: nil once the profile is valid, the
// provider's error otherwise, and "login cancelled" (cancelling it in the agent) when the
// caller gives up. A page that cannot be opened is reported and the login goes on.
func TestWait(t *testing.T) {
	t.Run("logged in", func(t *testing.T) {
		c, gp := startAgent(t)
		rec := &recorder{openErr: errors.New("no browser")}
		l := &login.Login{Client: c, Opener: rec, UI: rec}
		go func() {
			waitFor(t, func() bool { return len(rec.all()) >= 4 })
			gp.end <- nil
		}()
		if err := l.Do(context.Background(), login.Input{Profile: "work", Display: true, Wait: true}); err != nil {
			t.Fatalf("Do: %v, want the login to succeed", err)
		}
		want := []string{"challenge work WDJB-MJHT opening", "open https://idp.test/device?user_code=WDJB-MJHT",
			"open failed work: no browser", "waiting work"}
		if diff := cmp.Diff(want, rec.all()); diff != "" {
			t.Errorf("what the user saw (-want +got):\n%s", diff)
		}
		if p, err := c.Profile(context.Background(), "work"); err != nil || p.State != ipc.StateValid {
			t.Errorf("profile after the login: %+v, %v", p, err)
		}
	})
	t.Run("failed", func(t *testing.T) {
		c, gp := startAgent(t)
		rec := &recorder{}
		l := &login.Login{Client: c, Opener: rec, UI: rec}
		go func() {
			waitFor(t, func() bool { return len(rec.all()) >= 2 })
			gp.end <- errors.New("the IdP said access_denied")
		}()
		err := l.Do(context.Background(), login.Input{Profile: "work", Wait: true})
		if err == nil || !strings.Contains(err.Error(), "access_denied") || !strings.HasPrefix(err.Error(), "work: ") {
			t.Errorf("Do: %v, want the profile's last error", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		c, _ := startAgent(t)
		rec := &recorder{}
		l := &login.Login{Client: c, Opener: rec, UI: rec}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			waitFor(t, func() bool { return len(rec.all()) >= 2 })
			cancel()
		}()
		if err := l.Do(ctx, login.Input{Profile: "work", Wait: true}); err == nil || err.Error() != "login cancelled" {
			t.Errorf("Do: %v, want login cancelled", err)
		}
		waitFor(t, func() bool {
			p, err := c.Profile(context.Background(), "work")
			return err == nil && p.Login == nil
		})
	})
}

func TestUnknownProfile(t *testing.T) {
	c, _ := startAgent(t)
	rec := &recorder{}
	err := (&login.Login{Client: c, Opener: rec, UI: rec}).Do(context.Background(), login.Input{Profile: "nope", Wait: true})
	if !ipc.IsCode(err, ipc.CodeUnknownProfile) {
		t.Errorf("Do: %v, want unknown_profile", err)
	}
	if got := rec.all(); len(got) != 0 {
		t.Errorf("the user was shown %q for a profile that does not exist", got)
	}
}

func TestPage(t *testing.T) {
	for _, tc := range []struct {
		ch   ipc.LoginChallenge
		want string
	}{
		{ipc.LoginChallenge{AuthURL: "https://a", VerificationURI: "https://a"}, "https://a"},
		{ipc.LoginChallenge{VerificationURI: "https://v", VerificationURIComplete: "https://v?c=1"}, "https://v?c=1"},
		{ipc.LoginChallenge{VerificationURI: "https://v"}, "https://v"},
	} {
		if got := login.Page(&tc.ch); got != tc.want {
			t.Errorf("Page(%+v) = %q, want %q", tc.ch, got, tc.want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Error("condition not met within 5s")
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
