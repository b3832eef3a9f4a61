package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
)

// The single-flight test with a min_valid no token can meet: the refresh it forces brings
// the freshest token the provider gives, and that token is served, not refreshed again.
func TestSingleFlightMinValidBeyondLifetime(t *testing.T) {
	const life = 8 * time.Second
	h := newHarness(t, nil, 0.5, tokenFor(life))
	h.settle(t)
	h.clock.Advance(refreshFloor) // old enough for a forced refresh
	gate := make(chan struct{})
	h.prov.mu.Lock()
	h.prov.gate = gate
	h.prov.mu.Unlock()

	const n = 300
	var wg sync.WaitGroup
	creds := make(chan *CredentialInfo, n)
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := h.a.Credential(context.Background(), "p", time.Hour, nil)
			if err != nil {
				errs <- err
				return
			}
			creds <- c
		}()
	}
	for h.prov.Calls() < 2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the rest pile up on the flight (or find it done)
	close(gate)
	wg.Wait()
	close(errs)
	close(creds)
	for err := range errs {
		t.Fatal(err)
	}
	want := h.clock.Now().Add(life)
	for c := range creds {
		if c.Token != "tok2" || !c.ExpiresAt.Equal(want) {
			t.Fatalf("served %s expiring %s; want tok2 with its real expiry %s", c.Token, c.ExpiresAt, want)
		}
	}
	if got := h.prov.Calls(); got != 2 {
		t.Fatalf("provider calls = %d, want 2 (start + one refresh for the burst)", got)
	}

	// Clients that keep asking for an hour cost one refresh per refresh floor at most.
	for range 60 {
		h.clock.Advance(500 * time.Millisecond)
		h.settle(t)
		for range 10 {
			if _, err := h.a.Credential(context.Background(), "p", time.Hour, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := h.prov.Calls() - 2; got > 6 {
		t.Errorf("%d refreshes in 30 s of min_valid=3600 requests on 8 s tokens, want at most 30s/%s = 6", got, refreshFloor)
	}
}

func TestForcedRefreshWaitsForTenthOfLifetime(t *testing.T) {
	h := newHarness(t, nil, 0.5, tokenFor(time.Hour))
	h.settle(t)
	h.clock.Advance(5 * time.Minute) // past the floor, but less than 10 % of an hour
	if _, err := h.a.Credential(context.Background(), "p", 2*time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if got := h.prov.Calls(); got != 1 {
		t.Fatalf("a 5-minute-old 1 h token was refreshed for min_valid=2h (calls=%d)", got)
	}
	h.clock.Advance(time.Minute + time.Second)
	if _, err := h.a.Credential(context.Background(), "p", 2*time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if got := h.prov.Calls(); got != 2 {
		t.Fatalf("calls = %d after 10 %% of the lifetime, want 2", got)
	}
}

func TestProactiveRefreshFloor(t *testing.T) {
	// Tokens that live 3 s would be refreshed every 2.25 s; the floor makes it 5 s.
	h := newHarness(t, nil, 0.5, tokenFor(3*time.Second))
	h.settle(t)
	for range 720 { // an hour
		h.clock.Advance(refreshFloor)
		h.settle(t)
	}
	if got := h.prov.Calls(); got > 721 {
		t.Errorf("%d fetches in an hour of 3 s tokens, want at most one per %s (721)", got, refreshFloor)
	}
	if got := h.prov.Calls(); got < 700 {
		t.Errorf("%d fetches in an hour: the profile stopped refreshing", got)
	}
}

func TestExpiredOnArrivalBacksOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		exp  time.Duration // expiry relative to arrival
		want string
	}{
		{"expired two minutes ago", -2 * time.Minute, "already expired when it arrived"},
		{"one second left", time.Second, "too soon to be used"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, 0.5, func(c *fakeClock, n int) (*providers.Credential, error) {
				return &providers.Credential{Token: "t", ExpiresAt: c.Now().Add(tc.exp)}, nil
			})
			h.settle(t)
			info, _ := h.a.Profile("p")
			if info.State != StateError || !strings.Contains(info.LastError, tc.want) {
				t.Fatalf("state %q, last_error %q; want error saying %q", info.State, info.LastError, tc.want)
			}
			if _, err := h.a.Credential(context.Background(), "p", -1, nil); !errors.Is(err, ErrProvider) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("credential: %v; want ErrProvider saying %q", err, tc.want)
			}
			// A day of it, with a client asking every minute: one fetch per backoff step (at
			// 0.5 jitter: 1 s, 1.5 s, 2.5 s … then 150.5 s each), not one per request.
			for range 24 * 60 {
				simulate(t, h.a, h.clock, time.Minute)
				h.a.Credential(context.Background(), "p", -1, nil)
			}
			got := h.prov.Calls()
			if want := 10 + int(24*time.Hour/(150500*time.Millisecond)); got > want || got < want-10 {
				t.Errorf("%d fetches in a day, want one per backoff step (%d)", got, want)
			}
		})
	}
}

func TestRejectLoopBounded(t *testing.T) {
	h := newHarness(t, nil, 0.5, tokenFor(time.Hour))
	h.settle(t)
	// A client that rejects every token it gets: each reject drops the token, but the
	// provider is called at most callBurst times at once and once per callEvery after.
	for range 50 {
		h.a.Reject("p")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		h.a.Credential(ctx, "p", -1, nil)
		cancel()
	}
	if got := h.prov.Calls(); got > callBurst {
		t.Fatalf("%d provider calls for 50 reject+get rounds at one instant, want at most %d", got, callBurst)
	}
	calls := h.prov.Calls()
	h.clock.Advance(callEvery)
	h.settle(t)
	if got := h.prov.Calls(); got != calls+1 {
		t.Errorf("after %s: %d more calls, want 1", callEvery, got-calls)
	}
}

func TestPutProfileLoopBounded(t *testing.T) {
	h := newHarness(t, nil, 0.5, tokenFor(time.Hour))
	h.settle(t)
	// Redefining a profile starts a new one, which fetches; the call budget is per name,
	// so a client redefining it in a loop does not multiply the provider's load.
	for range 30 {
		if err := h.a.PutProfile(context.Background(), "p", &providers.ProfileConfig{Provider: "fake"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if got := h.prov.Calls(); got > callBurst {
		t.Errorf("%d provider calls for 30 redefinitions, want at most %d", got, callBurst)
	}
}

func TestRejectKeepsBackoff(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(c *fakeClock, n int) (*providers.Credential, error) {
		if n == 1 {
			return &providers.Credential{Token: "good", ExpiresAt: c.Now().Add(time.Hour)}, nil
		}
		return nil, errors.New("idp answered 503")
	})
	h.settle(t)
	h.clock.Advance(45 * time.Minute) // the proactive refresh fails; backoff starts
	h.settle(t)
	calls := h.prov.Calls()
	for range 20 {
		h.a.Reject("p")
		h.a.Credential(context.Background(), "p", -1, nil)
	}
	if got := h.prov.Calls(); got != calls {
		t.Errorf("reject + get during backoff made %d provider calls, want none", got-calls)
	}
}

func TestLoginWithExpiredToken(t *testing.T) {
	a, lp, clock := newLoginHarnessFor(t, func(lp *loginProvider) providers.Provider { return &expiredLogin{lp} })
	lp.mu.Lock()
	lp.fetch = func(c *fakeClock, _ int) (*providers.Credential, error) {
		return &providers.Credential{Token: "stale", ExpiresAt: c.Now().Add(-2 * time.Minute)}, nil
	}
	lp.mu.Unlock()
	if _, err := a.Login(context.Background(), "work"); err != nil {
		t.Fatal(err)
	}
	lp.approve <- nil
	info := waitState(t, a, "work", StateError)
	for _, want := range []string{"logged in (the new grant is stored)", "already expired when it arrived", "2m0s"} {
		if !strings.Contains(info.LastError, want) {
			t.Errorf("last_error %q does not say %q", info.LastError, want)
		}
	}
	// The refresh is retried with backoff, not at once and not never.
	calls := lp.Calls()
	clock.Advance(999 * time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	if got := lp.Calls(); got != calls {
		t.Fatalf("refreshed %d times within a second of the login", got-calls)
	}
	clock.Advance(time.Millisecond)
	waitCalls(t, lp, calls+1)
}

// expiredLogin logs in with a credential that expired two minutes before it arrived.
type expiredLogin struct{ *loginProvider }

func (p *expiredLogin) Login(ctx context.Context, show func(providers.Challenge)) (*providers.Credential, error) {
	if _, err := p.loginProvider.Login(ctx, show); err != nil {
		return nil, err
	}
	return &providers.Credential{Token: "stale", ExpiresAt: p.clock.Now().Add(-2 * time.Minute)}, nil
}

func waitCalls(t *testing.T, p interface{ Calls() int }, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Calls() < want {
		if time.Now().After(deadline) {
			t.Fatalf("provider calls = %d, want %d", p.Calls(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLoginChallengeExpiryBounded(t *testing.T) {
	a, _, clock := newLoginHarnessFor(t, func(lp *loginProvider) providers.Provider { return &challengeLogin{lp} })
	ch, err := a.Login(context.Background(), "work")
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(loginTimeout); !ch.ExpiresAt.Equal(want) {
		t.Errorf("challenge without an expiry: expires_at %s, want the login's end %s", ch.ExpiresAt, want)
	}
	a.CancelLogin("work")
}

// challengeLogin shows a challenge without an expiry, as a sloppy IdP's answer would give.
type challengeLogin struct{ *loginProvider }

func (p *challengeLogin) Login(ctx context.Context, show func(providers.Challenge)) (*providers.Credential, error) {
	show(providers.Challenge{UserCode: "ABCD", VerificationURI: "https://idp.test/device"})
	<-ctx.Done()
	return nil, errors.New("login cancelled")
}

// pushProvider accepts pushed tokens and counts them.
type pushProvider struct {
	fakeProvider
	pushes int
}

func (p *pushProvider) Push(_ context.Context, token string, exp time.Time) (*providers.Credential, error) {
	p.mu.Lock()
	p.pushes++
	p.mu.Unlock()
	return &providers.Credential{Token: token, ExpiresAt: exp}, nil
}

func TestPushLoopBounded(t *testing.T) {
	clock := newFakeClock()
	pp := &pushProvider{fakeProvider: fakeProvider{clock: clock, fetch: func(*fakeClock, int) (*providers.Credential, error) {
		return nil, errors.Join(errors.New("nothing pushed yet"), providers.ErrNeedsLogin)
	}}}
	a, err := New(Options{Config: &Config{Path: t.TempDir() + "/c.toml", Profiles: map[string]*providers.ProfileConfig{"p": {Provider: "push"}}},
		Store: NewMemoryStore(), Clock: clock,
		Providers: map[string]providers.Factory{"push": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return pp, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitState(t, a, "p", StateNeedsLogin)
	ok := 0
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		if err := a.PushToken(ctx, "p", fmt.Sprintf("tok-%d", i), clock.Now().Add(time.Hour)); err == nil {
			ok++
		} else if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("push %d: %v", i, err)
		}
		cancel()
	}
	if ok != callBurst-1 || pp.pushes != ok {
		t.Errorf("%d of 20 pushes at one instant went through (%d reached the provider), want %d: the call budget less the first fetch", ok, pp.pushes, callBurst-1)
	}
}
