package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A profile's grant (its stored refresh token, pushed token, secret) outlives any one
// *profile: PutProfile and Reload replace the profile while a refresh of the old one may
// still run, and a strict IdP revokes everything when it sees one refresh token twice. So
// every use of a grant — a fetch, a login, a logout, deleting its secrets — holds the
// grant lock of the profile's name.

// grant is what the agent keeps per profile name, across rebuilds of the profile.
type grant struct {
	mu    sync.Mutex  // held by every use of the grant
	calls callLimiter // every call to the profile's provider takes from it
}

// grantOf is the grant stored under name.
func (a *Agent) grantOf(name string) *grant {
	a.grantsMu.Lock()
	defer a.grantsMu.Unlock()
	if a.grants == nil {
		a.grants = make(map[string]*grant)
	}
	g := a.grants[name]
	if g == nil {
		g = &grant{calls: callLimiter{tokens: callBurst, last: a.clock.Now()}}
		a.grants[name] = g
	}
	return g
}

// grantLock is the lock of the grant stored under name.
func (a *Agent) grantLock(name string) *sync.Mutex { return &a.grantOf(name).mu }

// Every call a profile's provider makes on its source (a refresh, a login, a token
// command) first takes one of callBurst tokens, which come back one per callEvery. This is
// the bound that holds whatever the refresh policy decides and whatever clients ask for,
// across profile rebuilds (PUT, reload): at most callBurst calls at once and 60s/callEvery
// a minute after that.
const (
	callBurst = 5
	callEvery = 5 * time.Second
)

// callLimiter is a token bucket on the agent's clock.
type callLimiter struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// maxCallWait is the longest a call waits for the budget; past it the call is refused, so
// a loop that spent the budget far ahead cannot hold a profile up for hours.
const maxCallWait = 30 * time.Second

// reserve takes a token and says how long its caller must wait before using it. When the
// wait would exceed maxCallWait it takes nothing and reports false.
func (l *callLimiter) reserve(now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.last) {
		l.tokens = min(callBurst, l.tokens+float64(now.Sub(l.last))/float64(callEvery))
		l.last = now
	}
	wait := time.Duration(max(0, 1-l.tokens) * float64(callEvery))
	if wait > maxCallWait {
		return wait, false
	}
	l.tokens--
	return wait, true
}

// cancel gives back a token its caller did not use.
func (l *callLimiter) cancel() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens = min(callBurst, l.tokens+1)
}

// awaitCall waits until the grant of name may call its provider, or ctx ends, or stop is
// closed (the profile stopped: nothing is lost by not calling). A call that would have to
// wait longer than maxCallWait is refused at once with an error that says why.
func (a *Agent) awaitCall(ctx context.Context, name string, stop <-chan struct{}) error {
	calls := &a.grantOf(name).calls
	wait, ok := calls.reserve(a.clock.Now())
	if !ok {
		return fmt.Errorf("too many calls to the provider of profile %s in a short time (a loop of logins, adds, reloads or pushes?); the next is possible in %s", name, wait.Round(time.Second))
	}
	if wait <= 0 {
		return nil
	}
	a.log.Debug("provider calls limited; waiting", "profile", name, "wait", wait.Round(time.Millisecond))
	ready := make(chan struct{})
	t := a.clock.AfterFunc(wait, func() { close(ready) })
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		calls.cancel()
		return ctx.Err()
	case <-stop:
		calls.cancel()
		return errStopped
	}
}

var errStopped = errors.New("the profile was stopped")

// flushTimeout bounds how long Close waits for fetches in flight to save what they got.
const flushTimeout = 10 * time.Second

// secretView is the secret store as one profile sees it, with write-back: a value the
// store refused (a locked keyring) is kept in the agent and served from there, and saving
// it is tried again on every read, so a rotated refresh token survives a failed write and
// the profile being rebuilt. It is lost only if the agent stops before the store takes it.
type secretView struct {
	a      *Agent
	prefix string
}

func (s secretView) Get(ctx context.Context, key string) (string, error) {
	account := s.prefix + key
	s.a.pendingMu.Lock()
	v, ok := s.a.pending[account]
	s.a.pendingMu.Unlock()
	if !ok {
		return s.a.store.Get(ctx, account)
	}
	if err := s.a.store.Set(ctx, account, v); err == nil {
		s.a.pendingMu.Lock()
		if s.a.pending[account] == v {
			delete(s.a.pending, account)
		}
		s.a.pendingMu.Unlock()
	}
	return v, nil
}

func (s secretView) Set(ctx context.Context, key, value string) error {
	account := s.prefix + key
	err := s.a.store.Set(ctx, account, value)
	s.a.pendingMu.Lock()
	defer s.a.pendingMu.Unlock()
	if err != nil {
		if s.a.pending == nil {
			s.a.pending = make(map[string]string)
		}
		s.a.pending[account] = value
		s.a.log.Warn("the secret store refused a write; keeping the value in memory and retrying", "account", account, "error", err)
		return err
	}
	delete(s.a.pending, account)
	return nil
}

func (s secretView) Delete(ctx context.Context, key string) error {
	account := s.prefix + key
	s.a.pendingMu.Lock()
	delete(s.a.pending, account)
	s.a.pendingMu.Unlock()
	return s.a.store.Delete(ctx, account)
}
