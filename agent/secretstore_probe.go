package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/authagent/authagent/providers"
)

// keyringPendingWarning is what status and list say while the keyring probe runs.
const keyringPendingWarning = "checking the OS keyring: it has not answered yet and may be locked (an unlock " +
	"prompt may be waiting). Unlock it (log in to the desktop session, or run `gnome-keyring-daemon " +
	"--unlock`); requests that need a stored secret wait until it answers"

// probedStore is the SecretStore an agent configured for the keyring starts with. It is
// ready at once while a probe finds out in the background which store to use, so the
// socket does not wait for a keyring that sits on an unlock prompt nobody answers. Calls
// made meanwhile wait for the probe (as long as their ctx allows), then go to its choice.
type probedStore struct {
	log   *slog.Logger
	ready chan struct{} // closed when the probe has chosen

	// Written before ready is closed and read only after it.
	store  SecretStore
	err    error // the probe was cut short: the agent is stopping
	locked bool  // store is the keyring, which did not answer the probe

	// answered is set when a locked keyring has answered a call since the probe, which
	// clears the warning; a later timeout brings it back.
	answered atomic.Bool
}

// probeKeyring starts the probe of ks and returns at once; the probe gives up when ctx ends.
func probeKeyring(ctx context.Context, log *slog.Logger, ks *KeyringStore) *probedStore {
	s := &probedStore{log: log, ready: make(chan struct{})}
	go func() {
		defer close(s.ready)
		s.store, s.err = chooseStore(ctx, log, ks)
		s.locked = s.store == SecretStore(ks) && ks.warning != ""
	}()
	return s
}

// Info reports the keyring with a warning while the probe runs, then the chosen store's
// info.
func (s *probedStore) Info() StoreInfo {
	select {
	case <-s.ready:
	default:
		return StoreInfo{Kind: "keyring", Persistent: true, Warning: keyringPendingWarning}
	}
	if s.err != nil {
		return StoreInfo{Kind: "keyring", Persistent: true, Warning: "the OS keyring was not checked: " + s.err.Error()}
	}
	info := s.store.Info()
	if s.locked && s.answered.Load() {
		info.Warning = ""
	}
	return info
}

// Get waits for the probe, then asks the chosen store.
func (s *probedStore) Get(ctx context.Context, account string) (string, error) {
	st, err := s.wait(ctx)
	if err != nil {
		return "", fmt.Errorf("keyring get %s: %w", account, err)
	}
	v, err := st.Get(ctx, account)
	s.observe(err)
	return v, err
}

// Set waits for the probe, then writes to the chosen store.
func (s *probedStore) Set(ctx context.Context, account, value string) error {
	st, err := s.wait(ctx)
	if err != nil {
		return fmt.Errorf("keyring set %s: %w", account, err)
	}
	err = st.Set(ctx, account, value)
	s.observe(err)
	return err
}

// Delete waits for the probe, then deletes from the chosen store.
func (s *probedStore) Delete(ctx context.Context, account string) error {
	st, err := s.wait(ctx)
	if err != nil {
		return fmt.Errorf("keyring delete %s: %w", account, err)
	}
	err = st.Delete(ctx, account)
	s.observe(err)
	return err
}

// wait returns the store the probe chose, or an error when ctx ends first.
func (s *probedStore) wait(ctx context.Context) (SecretStore, error) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		select {
		case <-s.ready:
		default:
			return nil, fmt.Errorf("the OS keyring has not answered yet; it may be locked: unlock it (log in to "+
				"the desktop session, or run `gnome-keyring-daemon --unlock`) and try again: %w", context.Cause(ctx))
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.store, nil
}

// observe clears the warning of a keyring that did not answer the probe once it answers a
// call, and brings it back when a call times out again.
func (s *probedStore) observe(err error) {
	if !s.locked {
		return
	}
	switch {
	case err == nil || errors.Is(err, providers.ErrSecretNotFound):
		if s.answered.CompareAndSwap(false, true) {
			s.log.Info("the OS keyring answers now")
		}
	case errors.Is(err, ErrKeyringTimeout):
		if s.answered.CompareAndSwap(true, false) {
			s.log.Warn("the OS keyring stopped answering; it may be locked again", "err", err)
		}
	}
}
