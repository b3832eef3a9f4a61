package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zalando/go-keyring"

	"github.com/authagent/authagent/providers"
)

const (
	// keyringService is the service every authagent secret is filed under.
	keyringService = "authagent"

	// DefaultKeyringTimeout bounds each keyring operation: the Secret Service can block
	// forever on an unlock prompt nobody answers.
	DefaultKeyringTimeout = 15 * time.Second

	// keyringChunkSize is the largest value stored in one entry. Windows Credential
	// Manager refuses more than 2560 bytes; macOS base64-encodes values and caps an item
	// near 3000 bytes, so 2048 fits everywhere.
	keyringChunkSize = 2048

	// chunkHeaderPrefix starts the main entry of a value stored in chunks:
	// "authagent:chunked:<gen>:<n>", with the chunks under "<account>#<gen>.<i>".
	chunkHeaderPrefix = "authagent:chunked:"

	// maxChunks caps what a header may claim (8 MiB), so a corrupt header cannot make
	// Get loop for ever.
	maxChunks = 4096
)

// ErrKeyringTimeout is wrapped by the error a KeyringStore returns when the keyring did
// not answer in time.
var ErrKeyringTimeout = errors.New("keyring timed out")

// keyringBackend is the part of go-keyring the store uses, so tests can swap it.
type keyringBackend interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

// systemKeyring is the OS keyring through go-keyring.
type systemKeyring struct{}

func (systemKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }

func (systemKeyring) Set(service, user, password string) error {
	return keyring.Set(service, user, password)
}

func (systemKeyring) Delete(service, user string) error { return keyring.Delete(service, user) }

// KeyringStore is a SecretStore in the OS keyring (Secret Service, macOS Keychain, Windows
// Credential Manager) under service "authagent". Values too long for one entry are split
// into chunks that are written before the entry that points at them, so a crash never
// leaves a half-written value behind.
type KeyringStore struct {
	// Timeout bounds each Get, Set and Delete; zero means DefaultKeyringTimeout.
	Timeout time.Duration
	// Log receives warnings about chunks that could not be cleaned up; nil discards them.
	Log *slog.Logger

	backend keyringBackend
	warning string // set by the opener when the keyring did not answer at start
	// writing serialises Set and Delete, so two writers of one account cannot orphan each
	// other's chunks. It is a channel so waiting for it honours ctx.
	writing chan struct{}
}

// NewKeyringStore returns a store in the OS keyring.
func NewKeyringStore() *KeyringStore {
	return newKeyringStore(systemKeyring{})
}

func newKeyringStore(b keyringBackend) *KeyringStore {
	return &KeyringStore{backend: b, writing: make(chan struct{}, 1)}
}

// Info reports a persistent "keyring" store.
func (s *KeyringStore) Info() StoreInfo {
	return StoreInfo{Kind: "keyring", Persistent: true, Warning: s.warning}
}

// Get returns the secret stored under account, reassembling chunks, or an error wrapping
// providers.ErrSecretNotFound.
func (s *KeyringStore) Get(ctx context.Context, account string) (string, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	v, err := s.get(ctx, account)
	if err != nil {
		return "", fmt.Errorf("keyring get %s: %w", account, err)
	}
	return v, nil
}

func (s *KeyringStore) get(ctx context.Context, account string) (string, error) {
	// A concurrent Set may replace the chunks between reading the header and reading
	// them; reading the header again tells that apart from a damaged entry.
	for attempt := 0; ; attempt++ {
		main, err := s.call(ctx, func() (string, error) { return s.backend.Get(keyringService, account) })
		if err != nil {
			return "", err
		}
		gen, n, chunked, err := parseChunkHeader(main)
		if err != nil {
			return "", err
		}
		if !chunked {
			return main, nil
		}
		v, err := s.getChunks(ctx, account, gen, n)
		if errors.Is(err, providers.ErrSecretNotFound) && attempt < 2 {
			continue
		}
		return v, err
	}
}

func (s *KeyringStore) getChunks(ctx context.Context, account, gen string, n int) (string, error) {
	var b strings.Builder
	for i := range n {
		c, err := s.call(ctx, func() (string, error) { return s.backend.Get(keyringService, chunkAccount(account, gen, i)) })
		if errors.Is(err, providers.ErrSecretNotFound) {
			// Only a Delete cut short leaves a header without its chunks.
			return "", fmt.Errorf("chunk %d of %d is missing: %w", i+1, n, err)
		}
		if err != nil {
			return "", fmt.Errorf("chunk %d of %d: %w", i+1, n, err)
		}
		b.WriteString(c)
	}
	return b.String(), nil
}

// Set stores value under account. A long value, or one that looks like a chunk header,
// goes into chunks under a fresh generation; the old generation's chunks are deleted only
// after the new value is in place.
func (s *KeyringStore) Set(ctx context.Context, account, value string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("keyring set %s: %w", account, err)
	}
	defer s.unlock()
	if err := s.set(ctx, account, value); err != nil {
		return fmt.Errorf("keyring set %s: %w", account, err)
	}
	return nil
}

func (s *KeyringStore) set(ctx context.Context, account, value string) error {
	oldGen, oldN, err := s.currentChunks(ctx, account)
	if err != nil {
		return err
	}

	if len(value) <= keyringChunkSize && !strings.HasPrefix(value, chunkHeaderPrefix) {
		if err := s.callErr(ctx, func() error { return s.backend.Set(keyringService, account, value) }); err != nil {
			return err
		}
	} else {
		gen, err := newGeneration()
		if err != nil {
			return err
		}
		chunks := splitChunks(value, keyringChunkSize)
		if len(chunks) > maxChunks {
			return fmt.Errorf("value of %d bytes is too long for the keyring (at most %d)", len(value), maxChunks*keyringChunkSize)
		}
		for i, c := range chunks {
			err := s.callErr(ctx, func() error { return s.backend.Set(keyringService, chunkAccount(account, gen, i), c) })
			if err != nil {
				s.deleteChunks(ctx, account, gen, i+1)
				return fmt.Errorf("chunk %d of %d: %w", i+1, len(chunks), err)
			}
		}
		header := chunkHeader(gen, len(chunks))
		if err := s.callErr(ctx, func() error { return s.backend.Set(keyringService, account, header) }); err != nil {
			s.deleteChunks(ctx, account, gen, len(chunks))
			return err
		}
	}

	if oldN > 0 {
		s.deleteChunks(ctx, account, oldGen, oldN)
	}
	return nil
}

// Delete removes the secret stored under account and its chunks; a missing account is not
// an error. Chunks go first, so a Delete cut short can simply be run again.
func (s *KeyringStore) Delete(ctx context.Context, account string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("keyring delete %s: %w", account, err)
	}
	defer s.unlock()
	if err := s.delete(ctx, account); err != nil {
		return fmt.Errorf("keyring delete %s: %w", account, err)
	}
	return nil
}

func (s *KeyringStore) delete(ctx context.Context, account string) error {
	gen, n, err := s.currentChunks(ctx, account)
	if err != nil {
		return err
	}
	for i := range n {
		if err := s.deleteEntry(ctx, chunkAccount(account, gen, i)); err != nil {
			return fmt.Errorf("chunk %d of %d: %w", i+1, n, err)
		}
	}
	return s.deleteEntry(ctx, account)
}

// currentChunks reads the main entry of account and returns the chunk generation it
// points at; n is 0 when the value is missing or not chunked. A malformed header is
// treated as a plain value so it can still be overwritten or deleted.
func (s *KeyringStore) currentChunks(ctx context.Context, account string) (gen string, n int, err error) {
	main, err := s.call(ctx, func() (string, error) { return s.backend.Get(keyringService, account) })
	if errors.Is(err, providers.ErrSecretNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	gen, n, _, err = parseChunkHeader(main)
	if err != nil {
		return "", 0, nil
	}
	return gen, n, nil
}

// deleteChunks removes chunks 0..n-1 of a generation that is no longer referenced. Failure
// leaves only unreferenced entries behind, so it is logged, not returned.
func (s *KeyringStore) deleteChunks(ctx context.Context, account, gen string, n int) {
	for i := range n {
		if err := s.deleteEntry(ctx, chunkAccount(account, gen, i)); err != nil {
			s.logger().Warn("could not delete an old keyring chunk", "account", account, "chunk", i+1, "of", n, "err", err)
			return
		}
	}
}

func (s *KeyringStore) deleteEntry(ctx context.Context, user string) error {
	err := s.callErr(ctx, func() error { return s.backend.Delete(keyringService, user) })
	if errors.Is(err, providers.ErrSecretNotFound) {
		return nil
	}
	return err
}

// call runs f in its own goroutine and gives up when ctx is done: a keyring waiting on an
// unlock prompt may never answer. The goroutine is left to finish on its own.
func (s *KeyringStore) call(ctx context.Context, f func() (string, error)) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", context.Cause(ctx)
	}
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if errors.Is(r.err, keyring.ErrNotFound) {
			return "", providers.ErrSecretNotFound
		}
		return r.v, r.err
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

func (s *KeyringStore) callErr(ctx context.Context, f func() error) error {
	_, err := s.call(ctx, func() (string, error) { return "", f() })
	return err
}

func (s *KeyringStore) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.Timeout
	if d <= 0 {
		d = DefaultKeyringTimeout
	}
	return context.WithTimeoutCause(ctx, d, &keyringTimeoutError{d: d})
}

func (s *KeyringStore) lock(ctx context.Context) error {
	select {
	case s.writing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (s *KeyringStore) unlock() { <-s.writing }

func (s *KeyringStore) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// keyringTimeoutError says what happened and what to do about it.
type keyringTimeoutError struct{ d time.Duration }

func (e *keyringTimeoutError) Error() string {
	return fmt.Sprintf("keyring did not answer within %s: it may be locked; unlock it "+
		"(log in to the desktop session, or run `gnome-keyring-daemon --unlock`) and try again", e.d)
}

func (e *keyringTimeoutError) Is(target error) bool {
	return target == ErrKeyringTimeout || target == context.DeadlineExceeded
}

func chunkAccount(account, gen string, i int) string {
	return account + "#" + gen + "." + strconv.Itoa(i)
}

func chunkHeader(gen string, n int) string {
	return chunkHeaderPrefix + gen + ":" + strconv.Itoa(n)
}

// parseChunkHeader reports whether v is a chunk header and which chunks it names. The
// error never quotes v: it may be a secret.
func parseChunkHeader(v string) (gen string, n int, chunked bool, err error) {
	rest, ok := strings.CutPrefix(v, chunkHeaderPrefix)
	if !ok {
		return "", 0, false, nil
	}
	gen, count, ok := strings.Cut(rest, ":")
	if !ok || gen == "" {
		return "", 0, false, errors.New("entry has a malformed chunk header")
	}
	if _, err := hex.DecodeString(gen); err != nil {
		return "", 0, false, errors.New("entry has a malformed chunk header")
	}
	n, err = strconv.Atoi(count)
	if err != nil || n < 1 || n > maxChunks {
		return "", 0, false, errors.New("entry has a malformed chunk header")
	}
	return gen, n, true, nil
}

func newGeneration() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("chunk generation: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// splitChunks cuts v into pieces of at most size bytes without splitting a UTF-8
// sequence, since some keyrings store values as text.
func splitChunks(v string, size int) []string {
	var chunks []string
	for len(v) > size {
		cut := size
		for cut > size-utf8.UTFMax && !utf8.RuneStart(v[cut]) {
			cut--
		}
		chunks = append(chunks, v[:cut])
		v = v[cut:]
	}
	return append(chunks, v)
}
