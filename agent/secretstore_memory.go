package agent

import (
	"context"
	"fmt"
	"sync"

	"github.com/authagent/authagent/providers"
)

// MemoryStore is a SecretStore that keeps secrets in the agent's memory only: nothing
// survives a restart. It is the store users choose with secret_store = "memory", and the
// fallback when the OS keyring cannot be reached.
type MemoryStore struct {
	mu      sync.Mutex
	secrets map[string]string
	warning string // set by the opener when the user did not choose this store
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{secrets: make(map[string]string)}
}

// Get returns the secret stored under account, or an error wrapping
// providers.ErrSecretNotFound.
func (s *MemoryStore) Get(ctx context.Context, account string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("memory get %s: %w", account, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.secrets[account]
	if !ok {
		return "", fmt.Errorf("memory get %s: %w", account, providers.ErrSecretNotFound)
	}
	return v, nil
}

// Set stores value under account, replacing what was there. A value longer than
// MaxSecretSize is refused (ErrTooLarge), as the keyring store does, so a profile that
// works with one store works with the other.
func (s *MemoryStore) Set(ctx context.Context, account, value string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory set %s: %w", account, err)
	}
	if err := CheckSecretSize(len(value)); err != nil {
		return fmt.Errorf("memory set %s: %w", account, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[account] = value
	return nil
}

// Delete forgets the secret stored under account; a missing account is not an error.
func (s *MemoryStore) Delete(ctx context.Context, account string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory delete %s: %w", account, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.secrets, account)
	return nil
}

// Info reports a non-persistent "memory" store, with the opener's warning if it fell back
// to this store.
func (s *MemoryStore) Info() StoreInfo {
	return StoreInfo{Kind: "memory", Persistent: false, Warning: s.warning}
}
