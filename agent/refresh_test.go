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

// The single-flight test with a min_valid longer than the token lifetime: no refresh can
// meet it, so none is started; the token is served with its real expiry, and the
// proactive refresh comes as usual.
func TestSingleFlightMinValidBeyondLifetime(t *testing.T) {
	const life = 8 * time.Second
	h := newHarness(t, nil, 0.5, tokenFor(life))
	h.settle(t)
	h.clock.Advance(refreshFloor) // old enough for a forced refresh, were one any use
	want := h.clock.Now().Add(life - refreshFloor)

	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := h.a.Credential(context.Background(), "p", time.Hour, nil)
			if err == nil && (c.Token != "tok1" || !c.ExpiresAt.Equal(want)) {
				err = fmt.Errorf("served %s expiring %s; want tok1 with its real expiry %s", c.Token, c.ExpiresAt, want)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := h.prov.Calls(); got != 1 {
		t.Fatalf("provider calls = %d, want 1: min_valid=3600 on 8 s tokens started refreshes", got)
	}
	// Clients that keep asking cost no more than the proactive refreshes (one per 6 s).
	for range 60 {
		h.clock.Advance(500 * time.Millisecond)
		h.settle(t)
		for range 10 {
			if _, err := h.a.Credential(context.Background(), "p", time.Hour, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := h.prov.Calls() - 1; got > 6 {
		t.Errorf("%d refreshes in 30 s of min_valid=3600 requests on 8 s tokens, want the proactive ones only (5)", got)
	}
}

// A min_valid a refresh can meet forces one, and a burst of such requests shares it.
func TestSingleFlightForcedRefresh(t *testing.T) {
	const life = 8 * time.Second
	h := newHarness(t, nil, 0.5, tokenFor(life))
	h.settle(t)
	h.clock.Advance(refreshFloor) // 3 s left, less than the 7 s asked for
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
			c, err := h.a.Credential(context.Background(), "p", 7*time.Second, nil)
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
			t.Fatalf("served %s expiring %s; want tok2 expiring %s", c.Token, c.ExpiresAt, want)
		}
	}
	if got := h.prov.Calls(); got != 2 {
		t.Fatalf("provider calls = %d, want 2 (start + one refresh for the burst)", got)
	}
	// Clients that keep asking for 7 s cost one refresh per refresh floor at most.
	for range 60 {
		h.clock.Advance(500 * time.Millisecond)
		h.settle(t)
		for range 10 {
			if _, err := h.a.Credential(context.Background(), "p", 7*time.Second, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := h.prov.Calls() - 2; got > 7 {
		t.Errorf("%d refreshes in 30 s of min_valid=7s requests on 8 s tokens, want at most one per %s", got, refreshFloor)
	}
}

func TestForcedRefreshWaitsForTenthOfLifetime(t *testing.T) {
	h := newHarness(t, nil, 0.5, tokenFor(time.Hour))
	h.settle(t)
	h.clock.Advance(5 * time.Minute) // past the floor, but less than 10 % of an hour
	if _, err := h.a.Credential(context.Background(), "p", 59*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if got := h.prov.Calls(); got != 1 {
		t.Fatalf("a 5-minute-old 1 h token was refreshed for min_valid=59m (calls=%d)", got)
	}
	h.clock.Advance(time.Minute + time.Second)
	if _, err := h.a.Credential(context.Background(), "p", 59*time.Minute, nil); err != nil {
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
	for range 720 { // an hour, with a client asking now and then
		h.use(t)
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

func TestIdleProfileRefreshesRarely(t *testing.T) {
	// Nobody asks: tokens that live 3 s are refreshed once per idleFloor, not every 5 s.
	h := newHarness(t, nil, 0.5, tokenFor(3*time.Second))
	h.settle(t)
	simulate(t, h.a, h.clock, time.Hour)
	if got, want := h.prov.Calls(), 1+int(time.Hour/idleFloor); got > want {
		t.Errorf("%d fetches in an idle hour of 3 s tokens, want at most %d (one per %s)", got, want, idleFloor)
	}
	// A request then finds the token expired and fetches at once.
	h.clock.Advance(10 * time.Second)
	calls := h.prov.Calls()
	if _, err := h.a.Credential(context.Background(), "p", -1, nil); err != nil || h.prov.Calls() != calls+1 {
		t.Errorf("a request to an idle profile: %v after %d fetches; want a fresh token", err, h.prov.Calls()-calls)
	}
	// Tokens that outlive idleFloor are refreshed ahead of expiry whether asked for or not.
	h2 := newHarness(t, nil, 0.5, tokenFor(time.Hour))
	h2.settle(t)
	simulate(t, h2.a, h2.clock, 24*time.Hour)
	if got := h2.prov.Calls(); got < 24*4/3 {
		t.Errorf("%d fetches in an idle day of 1 h tokens, want one per 45 min", got)
	}
}

// A credential with a warning (a rotated refresh token the store refused, kept in
// memory) is served, and the warning is last_error.
func TestCredentialWarning(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(c *fakeClock, n int) (*providers.Credential, error) {
		return &providers.Credential{Token: fmt.Sprint("tok", n), ExpiresAt: c.Now().Add(time.Hour), Warning: "save the new refresh token: keyring locked"}, nil
	})
	h.settle(t)
	c, err := h.a.Credential(context.Background(), "p", -1, nil)
	info, _ := h.a.Profile("p")
	if err != nil || c.Token != "tok1" || info.State != StateValid || !strings.Contains(info.LastError, "keyring locked") {
		t.Fatalf("got %v, %v, state %q, last_error %q; want the token served, valid, with the warning", c, err, info.State, info.LastError)
	}
	simulate(t, h.a, h.clock, 24*time.Hour)
	if got := h.prov.Calls(); got > 24*60/39+2 {
		t.Errorf("%d fetches in a day, want a normal schedule (one per 45 min)", got)
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
	// A client that rejects every token it gets, once a second for an hour: the first
	// reject fetches at once (git's erase after a 401), the ones after back off like
	// failed fetches, instead of costing a refresh each.
	for range 3600 {
		h.a.Reject(context.Background(), "p")
		h.a.Credential(context.Background(), "p", -1, nil)
		simulate(t, h.a, h.clock, time.Second)
	}
	if got := h.prov.Calls(); got > 40 {
		t.Errorf("%d provider calls in an hour of reject+get every second, want one per backoff step (about 30)", got)
	}
	info, _ := h.a.Profile("p")
	if !strings.Contains(info.LastError, "refused") {
		t.Errorf("last_error %q does not say servers refused the tokens", info.LastError)
	}
	// One erase after a token lived past the window fetches at once again.
	h.settle(t)
	h.clock.Advance(2 * rejectWindow)
	h.settle(t)
	h.a.Credential(context.Background(), "p", -1, nil)
	simulate(t, h.a, h.clock, 10*time.Minute)
	calls := h.prov.Calls()
	h.a.Reject(context.Background(), "p")
	if _, err := h.a.Credential(context.Background(), "p", -1, nil); err != nil || h.prov.Calls() != calls+1 {
		t.Errorf("an erase after a good spell: %v, %d calls; want a fresh token at once", err, h.prov.Calls()-calls)
	}
}

func TestCallBudget(t *testing.T) {
	h := newHarness(t, nil, 0.5, tokenFor(time.Hour))
	h.settle(t) // the first fetch took one of callBurst
	var ok int
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		if h.a.awaitCall(ctx, "p", nil) == nil {
			ok++
		}
		cancel()
	}
	if ok != callBurst-1 {
		t.Fatalf("%d calls went through at one instant, want %d", ok, callBurst-1)
	}
	// Callers that gave up did not spend the budget: one more is due after callEvery.
	h.clock.Advance(callEvery)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := h.a.awaitCall(ctx, "p", nil); err != nil {
		t.Fatalf("after %s: %v, want a call", callEvery, err)
	}
	// A wait longer than maxCallWait is refused at once, saying why.
	waiters, stop := context.WithCancel(context.Background())
	defer stop()
	base := h.clock.pending()
	for range int(maxCallWait/callEvery) + 1 {
		go h.a.awaitCall(waiters, "p", nil) // these wait their turn; the last is refused
	}
	// Each of the first maxCallWait/callEvery waits on a timer of the clock for its turn;
	// once they all do, no turn is left within maxCallWait.
	for deadline := time.Now().Add(30 * time.Second); h.clock.pending() < base+int(maxCallWait/callEvery); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d callers wait for their turn, want %d", h.clock.pending()-base, int(maxCallWait/callEvery))
		}
	}
	err := h.a.awaitCall(context.Background(), "p", nil)
	if err == nil || !strings.Contains(err.Error(), "too many calls") {
		t.Errorf("got %v, want a refusal that says there were too many calls", err)
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
		h.a.Reject(context.Background(), "p")
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
	clock.mu.Lock()
	fired := clock.fired
	clock.mu.Unlock()
	clock.Advance(999 * time.Millisecond) // a refresh due by now would start in Advance
	clock.mu.Lock()
	early := clock.fired - fired
	clock.mu.Unlock()
	if got := lp.Calls(); got != calls || early != 0 {
		t.Fatalf("refreshed %d times (%d timers fired) within a second of the login", got-calls, early)
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
	deadline := time.Now().Add(30 * time.Second)
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
	a.CancelLogin(context.Background(), "work")
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

// A login counts as use: the short-lived token it brings is refreshed ahead of expiry,
// not held back as an idle profile's would be.
func TestLoginIsUse(t *testing.T) {
	a, lp, clock := newLoginHarnessFor(t, func(lp *loginProvider) providers.Provider { return &shortLogin{lp} })
	lp.mu.Lock()
	lp.fetch = func(c *fakeClock, _ int) (*providers.Credential, error) {
		return &providers.Credential{Token: "next", ExpiresAt: c.Now().Add(20 * time.Second)}, nil
	}
	lp.mu.Unlock()
	if _, err := a.Login(context.Background(), "work"); err != nil {
		t.Fatal(err)
	}
	lp.approve <- nil
	waitState(t, a, "work", StateValid)
	calls := lp.Calls()
	simulate(t, a, clock, 16*time.Second) // 75 % ± 10 % of 20 s
	if got := lp.Calls(); got != calls+1 {
		t.Errorf("%d refreshes within 16 s of a login with a 20 s token, want 1", got-calls)
	}
}

// shortLogin logs in with a token that lives 20 s.
type shortLogin struct{ *loginProvider }

func (p *shortLogin) Login(ctx context.Context, show func(providers.Challenge)) (*providers.Credential, error) {
	if _, err := p.loginProvider.Login(ctx, show); err != nil {
		return nil, err
	}
	return &providers.Credential{Token: "first", ExpiresAt: p.clock.Now().Add(20 * time.Second)}, nil
}

// localProvider is a fakeProvider whose fetches stay on this machine.
type localProvider struct{ fakeProvider }

func (*localProvider) Local() bool { return true }

// A provider that calls nothing remote (a static key, a token file) is not held to the
// call budget that protects identity providers: redefining such a profile in a loop
// fetches each time without waiting.
func TestLocalProviderNotBudgeted(t *testing.T) {
	clock := newFakeClock()
	lp := &localProvider{fakeProvider{clock: clock, fetch: func(*fakeClock, int) (*providers.Credential, error) {
		return &providers.Credential{Token: "static-key"}, nil
	}}}
	a, err := New(Options{Config: &Config{Path: t.TempDir() + "/c.toml", Profiles: map[string]*providers.ProfileConfig{"p": {Provider: "local"}}},
		Store: NewMemoryStore(), Clock: clock,
		Providers: map[string]providers.Factory{"local": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return lp, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitState(t, a, "p", StateValid)
	for range 20 {
		if err := a.PutProfile(context.Background(), "p", &providers.ProfileConfig{Provider: "local"}, nil); err != nil {
			t.Fatal(err)
		}
		waitState(t, a, "p", StateValid)
	}
	if got := lp.Calls(); got != 21 {
		t.Errorf("%d fetches for 20 redefinitions of a static key, want 21: the call budget held them", got)
	}
}
