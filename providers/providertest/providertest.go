// Package providertest holds fakes for testing providers: an in-memory providers.Secrets.
// It is imported by tests only.
package providertest

import (
	"context"
	"fmt"
	"sync"

	"github.com/authagent/authagent/providers"
)

// Secrets is a providers.Secrets in memory. Its zero value is ready; M may be preset.
type Secrets struct {
	mu sync.Mutex
	M  map[string]string
}

func (s *Secrets) Get(_ context.Context, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.M[key]
	if !ok {
		return "", fmt.Errorf("get %s: %w", key, providers.ErrSecretNotFound)
	}
	return v, nil
}

func (s *Secrets) Set(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.M == nil {
		s.M = make(map[string]string)
	}
	s.M[key] = value
	return nil
}

func (s *Secrets) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.M, key)
	return nil
}

// Len is how many secrets are stored.
func (s *Secrets) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.M)
}
