package agent

import (
	"context"
	"sync"
	"time"
)

// A profile's grant (its stored refresh token, pushed token, secret) outlives any one
// *profile: PutProfile and Reload replace the profile while a refresh of the old one may
// still run, and a strict IdP revokes everything when it sees one refresh token twice. So
// every use of a grant — a fetch, a login, a logout, deleting its secrets — holds the
// grant lock of the profile's name.

// grantLock is the lock of the grant stored under name.
func (a *Agent) grantLock(name string) *sync.Mutex {
	a.grantsMu.Lock()
	defer a.grantsMu.Unlock()
	if a.grants == nil {
		a.grants = make(map[string]*sync.Mutex)
	}
	l := a.grants[name]
	if l == nil {
		l = new(sync.Mutex)
		a.grants[name] = l
	}
	return l
}

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
