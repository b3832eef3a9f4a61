package agent

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
)

// fakeClock moves only when told to. Its timers sit in a heap, so benchmarks with
// thousands of profiles measure the agent, not the clock.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    int
	fired  int
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	seq     int // keeps equal deadlines in the order they were set
	f       func()
	stopped bool
}

type timerHeap []*fakeTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(*fakeTimer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f, seq: c.seq}
	heap.Push(&c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves the clock and runs the timers that came due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		for len(c.timers) > 0 && c.timers[0].stopped {
			heap.Pop(&c.timers)
		}
		if len(c.timers) == 0 || c.timers[0].at.After(end) {
			c.now = end
			c.mu.Unlock()
			return
		}
		due := heap.Pop(&c.timers).(*fakeTimer)
		c.now = due.at
		due.stopped = true
		c.fired++
		c.mu.Unlock()
		due.f()
	}
}

// next is when the earliest pending timer fires; ok is false when none is pending.
func (c *fakeClock) next() (at time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.timers) > 0 && c.timers[0].stopped {
		heap.Pop(&c.timers)
	}
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].at, true
}

// simulate runs the agent for d of fake time: it fires the clock's timers one at a time
// and lets the fetch each one starts finish (on real time: a provider may talk HTTP) before
// the clock moves on, so every timer the agent sets counts from the moment it means.
func simulate(t *testing.T, a *Agent, c *fakeClock, d time.Duration) {
	t.Helper()
	end := c.Now().Add(d)
	for {
		quiesce(t, a, c)
		at, ok := c.next()
		if !ok || at.After(end) {
			c.Advance(end.Sub(c.Now()))
			quiesce(t, a, c)
			return
		}
		c.Advance(at.Sub(c.Now()))
	}
}

// quiesce waits until no profile has a fetch running. A fetch that waits for the clock
// (the call budget) counts as quiet: only moving the clock ends it. A profile's own
// refresh or ID token timer pending meanwhile does not: the clock must not move past a
// fetch that is still running, or its token arrives expired.
func quiesce(t *testing.T, a *Agent, c *fakeClock) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.mu.Lock()
		ps := a.profiles.all()
		a.mu.Unlock()
		busy := false
		own := map[Timer]bool{} // the profiles' refresh and ID token timers
		for _, p := range ps {
			p.mu.Lock()
			busy = busy || p.flight != nil
			own[p.timer], own[p.idTimer] = true, true
			p.mu.Unlock()
		}
		if !busy || c.pendingExcept(own) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a fetch did not finish within 30s")
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// pending counts timers that have not fired or been stopped.
func (c *fakeClock) pending() int { return c.pendingExcept(nil) }

// pendingExcept counts timers that have not fired or been stopped, leaving out those in
// skip.
func (c *fakeClock) pendingExcept(skip map[Timer]bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !skip[t] {
			n++
		}
	}
	return n
}

// fakeProvider answers Fetch from a function and counts calls.
type fakeProvider struct {
	mu    sync.Mutex
	calls int
	gate  chan struct{} // when not nil, Fetch waits for it
	clock *fakeClock
	fetch func(c *fakeClock, n int) (*providers.Credential, error)
}

func (p *fakeProvider) Fetch(ctx context.Context) (*providers.Credential, error) {
	p.mu.Lock()
	p.calls++
	n, gate, fetch := p.calls, p.gate, p.fetch
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return fetch(p.clock, n)
}

func (p *fakeProvider) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

type harness struct {
	a     *Agent
	clock *fakeClock
	prov  *fakeProvider
	store *MemoryStore
	path  string
}

// newHarness builds an agent with one profile "p" served by a fake provider. jitter is
// the fixed value of the random source (0.5 means no jitter).
func newHarness(t *testing.T, pc *providers.ProfileConfig, jitter float64, fetch func(c *fakeClock, n int) (*providers.Credential, error)) *harness {
	t.Helper()
	h, release := newHeldHarness(t, pc, jitter, fetch)
	release()
	return h
}

// newHeldHarness is newHarness with the first fetch held until release is called.
func newHeldHarness(t *testing.T, pc *providers.ProfileConfig, jitter float64, fetch func(c *fakeClock, n int) (*providers.Credential, error)) (*harness, func()) {
	t.Helper()
	clock := newFakeClock()
	gate := make(chan struct{})
	h := &harness{clock: clock, prov: &fakeProvider{clock: clock, fetch: fetch, gate: gate}, store: NewMemoryStore()}
	h.path = filepath.Join(t.TempDir(), "config.toml")
	if pc == nil {
		pc = &providers.ProfileConfig{}
	}
	pc.Provider = "fake"
	cfg := &Config{Path: h.path, Profiles: map[string]*providers.ProfileConfig{"p": pc}}
	a, err := New(Options{
		Config: cfg,
		Store:  h.store,
		Providers: map[string]providers.Factory{
			"fake": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return h.prov, nil },
		},
		Clock:  h.clock,
		Jitter: func() float64 { return jitter },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	h.a = a
	return h, func() {
		h.prov.mu.Lock()
		h.prov.gate = nil
		h.prov.mu.Unlock()
		close(gate)
	}
}

// use asks for the credential once, as a client would, so the profile is not idle.
func (h *harness) use(t *testing.T) {
	t.Helper()
	if _, err := h.a.Credential(context.Background(), "p", 0, nil); err != nil {
		t.Fatal(err)
	}
}

// settle waits until no fetch is in flight.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if info, _ := h.a.Profile("p"); info.State != StateRefreshing {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("fetch did not finish")
}

func tokenFor(life time.Duration) func(clock *fakeClock, n int) (*providers.Credential, error) {
	return func(clock *fakeClock, n int) (*providers.Credential, error) {
		return &providers.Credential{Token: fmt.Sprint("tok", n), ExpiresAt: clock.Now().Add(life)}, nil
	}
}

func TestStaticCredentialFetchedOnce(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) {
		return &providers.Credential{Token: "k", Headers: map[string]string{"X-K": "k"}}, nil
	})
	for range 5 {
		c, err := h.a.Credential(context.Background(), "p", -1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Token != "k" || c.Username != "oauth2" {
			t.Fatalf("got %+v", c)
		}
	}
	h.clock.Advance(1000 * time.Hour)
	if got := h.prov.Calls(); got != 1 {
		t.Errorf("provider calls = %d, want 1", got)
	}
	if got := h.clock.pending(); got != 0 {
		t.Errorf("pending timers = %d, want 0 for a credential that never expires", got)
	}
}

func TestSingleFlight(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, nil, 0.5, tokenFor(time.Hour))
	h.settle(t)
	h.prov.mu.Lock()
	h.prov.gate = gate
	h.prov.mu.Unlock()
	h.a.Reject(context.Background(), "p")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.a.Credential(context.Background(), "p", -1, nil)
			errs <- err
		}()
	}
	// Let the waiters pile up on the one fetch, then release it.
	for h.prov.Calls() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := h.prov.Calls(); got != 2 {
		t.Errorf("provider calls = %d, want 2 (start + one shared refresh)", got)
	}
}

func TestRefreshSchedule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter float64
		pc     providers.ProfileConfig
		want   time.Duration // when the refresh happens after the fetch
	}{
		{"75% without jitter", 0.5, providers.ProfileConfig{}, 75 * time.Second},
		{"earliest jitter", 0, providers.ProfileConfig{}, 65 * time.Second},
		{"latest jitter", 0.999999, providers.ProfileConfig{}, 85 * time.Second},
		{"refresh_before", 0.5, providers.ProfileConfig{RefreshBefore: providers.Duration(50 * time.Second)}, 50 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := tc.pc
			h := newHarness(t, &pc, tc.jitter, tokenFor(100*time.Second))
			h.settle(t)
			h.use(t) // an idle profile's short-lived token waits for idleFloor
			h.clock.Advance(tc.want - time.Second)
			h.settle(t)
			if got := h.prov.Calls(); got != 1 {
				t.Fatalf("refreshed %d times before %s", got-1, tc.want-time.Second)
			}
			h.clock.Advance(time.Second)
			h.settle(t)
			if got := h.prov.Calls(); got != 2 {
				t.Fatalf("provider calls = %d at %s, want 2", got, tc.want)
			}
		})
	}
}

func TestMinValid(t *testing.T) {
	// Refresh would come at 85 s (latest jitter); at 80 s 20 s are left.
	h := newHarness(t, nil, 0.999999, tokenFor(100*time.Second))
	h.settle(t)
	h.clock.Advance(80 * time.Second)
	if _, err := h.a.Credential(context.Background(), "p", 10*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	if got := h.prov.Calls(); got != 1 {
		t.Fatalf("min_valid=10s with 20s left refreshed (calls=%d)", got)
	}
	// Default: min(30 s, 100 s / 4) = 25 s > 20 s left.
	if _, err := h.a.Credential(context.Background(), "p", -1, nil); err != nil {
		t.Fatal(err)
	}
	if got := h.prov.Calls(); got != 2 {
		t.Fatalf("default min_valid with 20s left: calls=%d, want 2", got)
	}
}

func TestShortLivedTokenNotRefreshedEveryRequest(t *testing.T) {
	h := newHarness(t, nil, 0.5, tokenFor(4*time.Second))
	h.settle(t)
	for range 50 {
		if _, err := h.a.Credential(context.Background(), "p", -1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.prov.Calls(); got != 1 {
		t.Fatalf("a 4s token was refreshed %d times on requests", got-1)
	}
}

func TestBackoffKeepsServingValidToken(t *testing.T) {
	boom := errors.New("idp answered 503")
	h := newHarness(t, nil, 0.5, func(c *fakeClock, n int) (*providers.Credential, error) {
		if n == 1 {
			return &providers.Credential{Token: "good", ExpiresAt: c.Now().Add(100 * time.Second)}, nil
		}
		return nil, boom
	})
	h.settle(t)
	h.use(t)
	h.clock.Advance(75 * time.Second) // refresh fails
	h.settle(t)
	info, _ := h.a.Profile("p")
	if info.State != StateValid || !strings.Contains(info.LastError, "503") {
		t.Fatalf("after a failed refresh: state %q, last_error %q; want valid with the error", info.State, info.LastError)
	}
	c, err := h.a.Credential(context.Background(), "p", 0, nil)
	if err != nil || c.Token != "good" {
		t.Fatalf("got %v, %v; want the still-valid token", c, err)
	}
	// Full jitter above 1 s, at 0.5: retries after 1 s, 1.5 s, 2.5 s, 4.5 s …
	calls := h.prov.Calls()
	for i, wait := range []time.Duration{time.Second, 1500 * time.Millisecond, 2500 * time.Millisecond, 4500 * time.Millisecond} {
		h.clock.Advance(wait - time.Millisecond)
		h.settle(t)
		if got := h.prov.Calls(); got != calls {
			t.Fatalf("retry %d came early", i)
		}
		h.clock.Advance(time.Millisecond)
		h.settle(t)
		calls++
		if got := h.prov.Calls(); got != calls {
			t.Fatalf("retry %d: calls = %d, want %d", i, got, calls)
		}
	}
	// Past expiry, nothing usable: the error, without a fetch per request.
	h.clock.Advance(16500 * time.Millisecond) // t=101s; a retry ran at 93 s, the next is at 109.5 s
	h.settle(t)
	before := h.prov.Calls()
	for range 10 {
		_, err := h.a.Credential(context.Background(), "p", -1, nil)
		if !errors.Is(err, ErrProvider) {
			t.Fatalf("got %v, want ErrProvider", err)
		}
	}
	if got := h.prov.Calls(); got > before+1 {
		t.Errorf("requests during backoff caused %d fetches", got-before)
	}
}

func TestBackoffCap(t *testing.T) {
	h := newHarness(t, nil, 0.999999, func(*fakeClock, int) (*providers.Credential, error) { return nil, errors.New("down") })
	h.settle(t)
	for range 30 {
		h.clock.Advance(backoffMax)
		h.settle(t)
	}
	if got := h.prov.Calls(); got < 20 {
		t.Errorf("calls = %d: retries stopped or backoff exceeded the %s cap", got, backoffMax)
	}
}

func TestNeedsLoginStopsRetries(t *testing.T) {
	h, release := newHeldHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) {
		return nil, fmt.Errorf("refresh token revoked: %w", providers.ErrNeedsLogin)
	})
	sub := h.a.Subscribe()
	defer sub.Close()
	release()
	h.settle(t)
	h.settle(t)
	if _, err := h.a.Credential(context.Background(), "p", -1, nil); !errors.Is(err, ErrNeedsLogin) {
		t.Fatalf("got %v, want ErrNeedsLogin", err)
	}
	calls := h.prov.Calls()
	h.clock.Advance(24 * time.Hour)
	if got := h.prov.Calls(); got != calls {
		t.Errorf("needs_login profile was retried %d times", got-calls)
	}
	info, _ := h.a.Profile("p")
	if info.State != StateNeedsLogin {
		t.Errorf("state = %q, want needs_login", info.State)
	}
	sawNeedsLogin := false
	for len(sub.C) > 0 {
		e := <-sub.C
		if e.Profile.State == StateNeedsLogin {
			sawNeedsLogin = true
		}
	}
	if !sawNeedsLogin {
		t.Error("no event announced needs_login")
	}
}

func TestCredentialURLPolicy(t *testing.T) {
	h := newHarness(t, &providers.ProfileConfig{Hosts: []string{"api.example.com", "*.corp.example", "localhost:8080"}}, 0.5,
		func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
	h.settle(t)
	for _, tc := range []struct {
		url  string
		want error
	}{
		{"https://api.example.com/x", nil},
		{"https://API.example.com:443/x", nil},
		{"https://a.b.corp.example/", nil},
		{"https://corp.example/", ErrForbidden},
		{"http://api.example.com/x", ErrForbidden},
		{"http://localhost:8080/", nil},
		{"http://localhost:9090/", ErrForbidden},
		{"https://evil.example.com/", ErrForbidden},
		{"ftp://api.example.com/", ErrForbidden},
	} {
		u, _ := url.Parse(tc.url)
		_, err := h.a.Credential(context.Background(), "p", -1, u)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", tc.url, err, tc.want)
		}
	}
}

func TestHostMatch(t *testing.T) {
	for _, tc := range []struct {
		entry, host, port string
		match             bool
	}{
		{"api.example.com", "api.example.com", "443", true},
		{"API.Example.com", "api.example.com", "443", true},
		{"api.example.com", "api.example.com.", "443", true},
		{"api.example.com", "x.api.example.com", "443", false},
		{"api.example.com:8443", "api.example.com", "8443", true},
		{"api.example.com:8443", "api.example.com", "443", false},
		{"*.example.com", "a.example.com", "443", true},
		{"*.example.com", "a.b.example.com", "443", true},
		{"*.example.com", "example.com", "443", false},
		{"*.example.com", "badexample.com", "443", false},
		{"[::1]:8080", "::1", "8080", true},
	} {
		if got := hostMatch(tc.entry, tc.host, tc.port) > 0; got != tc.match {
			t.Errorf("hostMatch(%q, %q, %q) = %v, want %v", tc.entry, tc.host, tc.port, got, tc.match)
		}
	}
}

func TestProfileForURLPrefersSpecific(t *testing.T) {
	h := newHarness(t, &providers.ProfileConfig{Hosts: []string{"*.example.com"}}, 0.5,
		func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
	specific := &providers.ProfileConfig{Provider: "fake", Hosts: []string{"git.example.com"}}
	if err := h.a.PutProfile(context.Background(), "z-git", specific, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, want string }{
		{"https://git.example.com/repo", "z-git"},
		{"https://api.example.com/", "p"},
	} {
		u, _ := url.Parse(tc.url)
		got, err := h.a.ProfileForURL(u)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
	u, _ := url.Parse("https://other.org/")
	if _, err := h.a.ProfileForURL(u); !errors.Is(err, ErrNoProfile) {
		t.Errorf("unmatched host: got %v, want ErrNoProfile", err)
	}
}

func TestPutAndDeleteProfile(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
	ctx := context.Background()
	secret := "canary-7c1e"
	h.settle(t)
	sub := h.a.Subscribe()
	defer sub.Close()
	if err := h.a.PutProfile(ctx, "hub", &providers.ProfileConfig{Provider: "fake", Hosts: []string{"api.example.com"}}, &secret); err != nil {
		t.Fatal(err)
	}
	if got, err := h.store.Get(ctx, "hub/secret"); err != nil || got != secret {
		t.Fatalf("secret in store: %q, %v", got, err)
	}
	data, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "[profile.hub]") || strings.Contains(string(data), secret) {
		t.Fatalf("config file:\n%s\nwant the profile and no secret", data)
	}
	if e := <-sub.C; e.Type != EventAdded || e.Profile.Name != "hub" {
		t.Fatalf("first event = %+v, want added hub", e)
	}
	if err := h.a.DeleteProfile(ctx, "hub"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Get(ctx, "hub/secret"); !errors.Is(err, providers.ErrSecretNotFound) {
		t.Errorf("secret survived delete: %v", err)
	}
	if _, err := h.a.Profile("hub"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("profile survived delete: %v", err)
	}
	if err := h.a.PutProfile(ctx, "../x", &providers.ProfileConfig{Provider: "fake"}, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad name: got %v, want ErrBadRequest", err)
	}
	if err := h.a.PutProfile(ctx, "y", &providers.ProfileConfig{Provider: "nope"}, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("unknown provider: got %v, want ErrBadRequest", err)
	}
}

func TestReload(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
	h.settle(t)
	write := func(s string) {
		if err := os.WriteFile(h.path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[profile.p]\nprovider = \"fake\"\n\n[profile.q]\nprovider = \"fake\"\nhosts = [\"q.example.com\"]\n")
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := len(h.a.Profiles()); got != 2 {
		t.Fatalf("profiles after reload = %d, want 2", got)
	}
	if got := h.prov.Calls(); got > 2 {
		t.Errorf("unchanged profile p was rebuilt and refetched (calls=%d)", got)
	}
	write("[profile.p]\nprovider = \"fake\"\nbogus = 1\n")
	err := h.a.Reload()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 3 || !strings.Contains(ce.Key, "bogus") {
		t.Fatalf("broken config: got %v, want a ConfigError at line 3 naming bogus", err)
	}
	if got := len(h.a.Profiles()); got != 2 {
		t.Fatalf("a broken config changed the profiles: %d", got)
	}
}

func TestControlCharactersRefused(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) {
		return &providers.Credential{Token: "a", Headers: map[string]string{"X-Key": "line1\r\nX-Evil: injected"}}, nil
	})
	h.settle(t)
	_, err := h.a.Credential(context.Background(), "p", -1, nil)
	if err == nil || strings.Contains(err.Error(), "injected") {
		t.Fatalf("got %v, want an error that does not echo the value", err)
	}
	for _, secret := range []string{"a\nX-Evil: b", "a\r", "a\x00b", "a\x7f"} {
		err := h.a.PutProfile(context.Background(), "w", &providers.ProfileConfig{Provider: "fake"}, &secret)
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("secret %q: got %v, want ErrBadRequest", secret, err)
		}
	}
	ok := "tab\tis fine"
	if err := h.a.PutProfile(context.Background(), "w", &providers.ProfileConfig{Provider: "fake"}, &ok); err != nil {
		t.Errorf("secret with a tab: %v", err)
	}
}

func TestSameTokenNotRefetchedBeforeExpiry(t *testing.T) {
	// A pushed token: the source hands back the same token until a new one is pushed.
	var exp time.Time
	h := newHarness(t, nil, 0.5, func(c *fakeClock, n int) (*providers.Credential, error) {
		if exp.IsZero() {
			exp = c.Now().Add(time.Hour)
		}
		if !c.Now().Before(exp) {
			return nil, fmt.Errorf("the pushed token expired: %w", providers.ErrNeedsLogin)
		}
		return &providers.Credential{Token: "same", ExpiresAt: exp}, nil
	})
	h.settle(t)
	h.clock.Advance(59 * time.Minute)
	h.settle(t)
	if got := h.prov.Calls(); got != 2 {
		t.Errorf("calls before expiry = %d, want 2 (first fetch and the 75%% refresh that found the same token)", got)
	}
	h.clock.Advance(time.Minute)
	h.settle(t)
	if info, _ := h.a.Profile("p"); info.State != StateNeedsLogin {
		t.Errorf("state at expiry = %q, want needs_login", info.State)
	}
}
