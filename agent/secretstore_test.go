package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/zalando/go-keyring"

	"github.com/authagent/authagent/providers"
)

// fakeKeyring is an in-memory keyringBackend that answers like go-keyring does.
type fakeKeyring struct {
	mu      sync.Mutex
	entries map[string]string // user → value; the service is checked, not kept
	// failSet, when set, is consulted before every Set.
	failSet func(user, value string) error
}

func newFakeKeyring() *fakeKeyring { return &fakeKeyring{entries: map[string]string{}} }

func (f *fakeKeyring) Get(service, user string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if service != keyringService {
		return "", fmt.Errorf("unexpected service %q", service)
	}
	v, ok := f.entries[user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (f *fakeKeyring) Set(service, user, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if service != keyringService {
		return fmt.Errorf("unexpected service %q", service)
	}
	if f.failSet != nil {
		if err := f.failSet(user, value); err != nil {
			return err
		}
	}
	if len(value) > keyringChunkSize {
		return keyring.ErrSetDataTooBig
	}
	f.entries[user] = value
	return nil
}

func (f *fakeKeyring) Delete(service, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.entries[user]; !ok {
		return keyring.ErrNotFound
	}
	delete(f.entries, user)
	return nil
}

// Accounts lists the entries, as a search of the Secret Service does.
func (f *fakeKeyring) Accounts(service string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if service != keyringService {
		return nil, fmt.Errorf("unexpected service %q", service)
	}
	return slices.Collect(maps.Keys(f.entries)), nil
}

func (f *fakeKeyring) snapshot() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.entries)
}

// blockingKeyring never answers until the test ends, like a Secret Service waiting on an
// unlock prompt. entered receives once per call that has started.
type blockingKeyring struct {
	release chan struct{}
	entered chan struct{}
}

func newBlockingKeyring(t *testing.T) *blockingKeyring {
	t.Helper()
	b := &blockingKeyring{release: make(chan struct{}), entered: make(chan struct{}, 16)}
	t.Cleanup(func() { close(b.release) })
	return b
}

func (b *blockingKeyring) block() {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
}

func (b *blockingKeyring) Get(string, string) (string, error) {
	b.block()
	return "", keyring.ErrNotFound
}
func (b *blockingKeyring) Set(string, string, string) error { b.block(); return nil }
func (b *blockingKeyring) Delete(string, string) error      { b.block(); return nil }

// failingKeyring fails every call, like a desktop without a session bus.
type failingKeyring struct{ err error }

func (f failingKeyring) Get(string, string) (string, error) { return "", f.err }
func (f failingKeyring) Set(string, string, string) error   { return f.err }
func (f failingKeyring) Delete(string, string) error        { return f.err }

// wantEntries is how many keyring entries value takes: one, or a header and its chunks.
func wantEntries(value string) int {
	if len(value) <= keyringChunkSize && !strings.HasPrefix(value, chunkHeaderPrefix) {
		return 1
	}
	return 1 + len(splitChunks(value, keyringChunkSize))
}

func TestKeyringStoreRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		value string
	}{
		{"empty", ""},
		{"short", "rt-0123456789"},
		{"at limit", strings.Repeat("a", keyringChunkSize)},
		{"one over limit", strings.Repeat("b", keyringChunkSize+1)},
		{"10 KiB", strings.Repeat("0123456789abcdef", 640)},
		{"multibyte", strings.Repeat("é€😀", 1500)},
		{"header prefix", chunkHeaderPrefix + "0011223344556677:3"},
		{"bare header prefix", chunkHeaderPrefix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			fake := newFakeKeyring()
			s := newKeyringStore(fake)

			if err := s.Set(ctx, "work/refresh_token", tt.value); err != nil {
				t.Fatalf("Set: %v", err)
			}
			got, err := s.Get(ctx, "work/refresh_token")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got != tt.value {
				t.Errorf("Get = %d bytes, want %d bytes (%q…)", len(got), len(tt.value), got[:min(len(got), 40)])
			}
			entries := fake.snapshot()
			if got, want := len(entries), wantEntries(tt.value); got != want {
				t.Errorf("keyring holds %d entries, want %d: %v", got, want, slices.Sorted(maps.Keys(entries)))
			}
			for user, v := range entries {
				if !utf8.ValidString(v) {
					t.Errorf("entry %s is not valid UTF-8", user)
				}
			}

			if err := s.Delete(ctx, "work/refresh_token"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if entries := fake.snapshot(); len(entries) != 0 {
				t.Errorf("after Delete the keyring holds %v, want nothing", slices.Sorted(maps.Keys(entries)))
			}
			if _, err := s.Get(ctx, "work/refresh_token"); !errors.Is(err, providers.ErrSecretNotFound) {
				t.Errorf("Get after Delete: err = %v, want ErrSecretNotFound", err)
			}
		})
	}
}

func TestKeyringStoreOverwrite(t *testing.T) {
	short := "short-secret"
	long := strings.Repeat("L", 10*1024)
	longer := strings.Repeat("M", 7*1024)
	prefixed := chunkHeaderPrefix + "x"
	tests := []struct {
		name          string
		first, second string
	}{
		{"long to short", long, short},
		{"short to long", short, long},
		{"long to long", long, longer},
		{"header prefix to short", prefixed, short},
		{"short to short", short, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			fake := newFakeKeyring()
			s := newKeyringStore(fake)

			if err := s.Set(ctx, "work/refresh_token", tt.first); err != nil {
				t.Fatalf("first Set: %v", err)
			}
			if err := s.Set(ctx, "work/refresh_token", tt.second); err != nil {
				t.Fatalf("second Set: %v", err)
			}
			got, err := s.Get(ctx, "work/refresh_token")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got != tt.second {
				t.Errorf("Get = %d bytes, want the second value (%d bytes)", len(got), len(tt.second))
			}
			entries := fake.snapshot()
			if got, want := len(entries), wantEntries(tt.second); got != want {
				t.Errorf("keyring holds %d entries, want %d (orphan chunks?): %v", got, want, slices.Sorted(maps.Keys(entries)))
			}
		})
	}
}

func TestKeyringStoreAccountsAreSeparate(t *testing.T) {
	ctx := t.Context()
	fake := newFakeKeyring()
	s := newKeyringStore(fake)
	long := strings.Repeat("x", 5000)
	for _, a := range []string{"work/refresh_token", "work/secret", "hub/secret"} {
		if err := s.Set(ctx, a, a+long); err != nil {
			t.Fatalf("Set %s: %v", a, err)
		}
	}
	if err := s.Delete(ctx, "work/secret"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, a := range []string{"work/refresh_token", "hub/secret"} {
		got, err := s.Get(ctx, a)
		if err != nil || got != a+long {
			t.Errorf("Get %s = %d bytes, %v; want the stored value", a, len(got), err)
		}
	}
	if got, want := len(fake.snapshot()), 2*wantEntries(long); got != want {
		t.Errorf("keyring holds %d entries, want %d", got, want)
	}
}

func TestKeyringStoreNotFound(t *testing.T) {
	ctx := t.Context()
	fake := newFakeKeyring()
	// A header whose chunks are gone: what a Delete cut short leaves behind.
	fake.entries["cut/secret"] = chunkHeader("0011223344556677", 2)
	s := newKeyringStore(fake)

	for _, account := range []string{"nobody/secret", "cut/secret"} {
		_, err := s.Get(ctx, account)
		if !errors.Is(err, providers.ErrSecretNotFound) {
			t.Errorf("Get %s: err = %v, want ErrSecretNotFound", account, err)
		}
		if errors.Is(err, keyring.ErrNotFound) {
			t.Errorf("Get %s: err = %v leaks go-keyring's ErrNotFound", account, err)
		}
	}
	if err := s.Delete(ctx, "nobody/secret"); err != nil {
		t.Errorf("Delete of a missing account: %v", err)
	}
	if err := s.Delete(ctx, "cut/secret"); err != nil {
		t.Errorf("Delete of a cut-short entry: %v", err)
	}
	if entries := fake.snapshot(); len(entries) != 0 {
		t.Errorf("keyring holds %v, want nothing", slices.Sorted(maps.Keys(entries)))
	}
}

func TestKeyringStoreTimeout(t *testing.T) {
	s := newKeyringStore(newBlockingKeyring(t))
	s.Timeout = 50 * time.Millisecond
	calls := map[string]func(context.Context) error{
		"Get":    func(ctx context.Context) error { _, err := s.Get(ctx, "work/secret"); return err },
		"Set":    func(ctx context.Context) error { return s.Set(ctx, "work/secret", "v") },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "work/secret") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call(t.Context())
			if !errors.Is(err, ErrKeyringTimeout) {
				t.Fatalf("err = %v, want ErrKeyringTimeout", err)
			}
			for _, want := range []string{"did not answer within 50ms", "unlock", "try again"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestKeyringStoreContextCancel(t *testing.T) {
	t.Run("while blocked", func(t *testing.T) {
		b := newBlockingKeyring(t)
		s := newKeyringStore(b)
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-b.entered
			cancel()
		}()
		_, err := s.Get(ctx, "work/secret")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if errors.Is(err, ErrKeyringTimeout) {
			t.Errorf("err = %v, a cancel is not a timeout", err)
		}
	})
	t.Run("before the call", func(t *testing.T) {
		fake := newFakeKeyring()
		s := newKeyringStore(fake)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Set(ctx, "work/secret", "v"); !errors.Is(err, context.Canceled) {
			t.Errorf("Set: err = %v, want context.Canceled", err)
		}
		if entries := fake.snapshot(); len(entries) != 0 {
			t.Errorf("keyring holds %v after a cancelled Set", slices.Sorted(maps.Keys(entries)))
		}
	})
}

func TestKeyringStoreErrorsOmitSecret(t *testing.T) {
	const canary = "CANARY-7f3a9c-do-not-log"
	long := strings.Repeat(canary, 400) // chunked
	tests := []struct {
		name  string
		setup func(t *testing.T) (*KeyringStore, *fakeKeyring)
		run   func(ctx context.Context, s *KeyringStore) error
	}{
		{
			name: "chunk write fails",
			setup: func(t *testing.T) (*KeyringStore, *fakeKeyring) {
				fake := newFakeKeyring()
				fake.failSet = func(user, _ string) error {
					if strings.HasSuffix(user, ".2") {
						return errors.New("dbus: connection reset")
					}
					return nil
				}
				return newKeyringStore(fake), fake
			},
			run: func(ctx context.Context, s *KeyringStore) error { return s.Set(ctx, "work/secret", long) },
		},
		{
			name: "header write fails",
			setup: func(t *testing.T) (*KeyringStore, *fakeKeyring) {
				fake := newFakeKeyring()
				fake.failSet = func(user, _ string) error {
					if user == "work/secret" {
						return errors.New("dbus: connection reset")
					}
					return nil
				}
				return newKeyringStore(fake), fake
			},
			run: func(ctx context.Context, s *KeyringStore) error { return s.Set(ctx, "work/secret", long) },
		},
		{
			name: "short value rejected",
			setup: func(t *testing.T) (*KeyringStore, *fakeKeyring) {
				fake := newFakeKeyring()
				fake.failSet = func(string, string) error { return keyring.ErrSetDataTooBig }
				return newKeyringStore(fake), fake
			},
			run: func(ctx context.Context, s *KeyringStore) error { return s.Set(ctx, "work/secret", canary) },
		},
		{
			name: "malformed header",
			setup: func(t *testing.T) (*KeyringStore, *fakeKeyring) {
				fake := newFakeKeyring()
				fake.entries["work/secret"] = chunkHeaderPrefix + canary
				return newKeyringStore(fake), fake
			},
			run: func(ctx context.Context, s *KeyringStore) error { _, err := s.Get(ctx, "work/secret"); return err },
		},
		{
			name: "timeout",
			setup: func(t *testing.T) (*KeyringStore, *fakeKeyring) {
				s := newKeyringStore(newBlockingKeyring(t))
				s.Timeout = 50 * time.Millisecond
				return s, nil
			},
			run: func(ctx context.Context, s *KeyringStore) error { return s.Set(ctx, "work/secret", long) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, fake := tt.setup(t)
			err := tt.run(t.Context(), s)
			if err == nil {
				t.Fatal("err = nil, want an error")
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "CANARY") {
				t.Errorf("error leaks the secret: %q", err)
			}
			if fake == nil || tt.name == "malformed header" {
				return
			}
			// A failed Set leaves neither its value nor half of its chunks behind.
			if entries := fake.snapshot(); len(entries) != 0 {
				t.Errorf("keyring holds %v after a failed Set", slices.Sorted(maps.Keys(entries)))
			}
		})
	}
}

func TestKeyringStoreFailedSetKeepsOldValue(t *testing.T) {
	ctx := t.Context()
	fake := newFakeKeyring()
	s := newKeyringStore(fake)
	old := strings.Repeat("o", 5000)
	if err := s.Set(ctx, "work/refresh_token", old); err != nil {
		t.Fatalf("Set: %v", err)
	}
	fake.mu.Lock()
	fake.failSet = func(user, _ string) error {
		if user == "work/refresh_token" {
			return errors.New("dbus: connection reset")
		}
		return nil
	}
	fake.mu.Unlock()
	if err := s.Set(ctx, "work/refresh_token", strings.Repeat("n", 5000)); err == nil {
		t.Fatal("Set: err = nil, want the header write to fail")
	}
	got, err := s.Get(ctx, "work/refresh_token")
	if err != nil || got != old {
		t.Errorf("Get = %d bytes, %v; want the old value intact", len(got), err)
	}
	if got, want := len(fake.snapshot()), wantEntries(old); got != want {
		t.Errorf("keyring holds %d entries, want %d", got, want)
	}
}

func TestMemoryStore(t *testing.T) {
	ctx := t.Context()
	s := NewMemoryStore()
	if _, err := s.Get(ctx, "work/secret"); !errors.Is(err, providers.ErrSecretNotFound) {
		t.Errorf("Get of a missing account: err = %v, want ErrSecretNotFound", err)
	}
	long := strings.Repeat("m", 10*1024)
	if err := s.Set(ctx, "work/secret", long); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got, err := s.Get(ctx, "work/secret"); err != nil || got != long {
		t.Errorf("Get = %d bytes, %v; want %d bytes", len(got), err, len(long))
	}
	if err := s.Delete(ctx, "work/secret"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Delete(ctx, "work/secret"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := s.Get(ctx, "work/secret"); !errors.Is(err, providers.ErrSecretNotFound) {
		t.Errorf("Get after Delete: err = %v, want ErrSecretNotFound", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Set(cancelled, "work/secret", "v"); !errors.Is(err, context.Canceled) {
		t.Errorf("Set with a cancelled ctx: err = %v, want context.Canceled", err)
	}
}

func TestStoreInfo(t *testing.T) {
	tests := []struct {
		name  string
		store SecretStore
		want  StoreInfo
	}{
		{"memory", NewMemoryStore(), StoreInfo{Kind: "memory", Persistent: false}},
		{"keyring", newKeyringStore(newFakeKeyring()), StoreInfo{Kind: "keyring", Persistent: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.store.Info()); diff != "" {
				t.Errorf("Info() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenSecretStore(t *testing.T) {
	probeErr := errors.New("dbus: The name org.freedesktop.secrets was not provided by any .service files")
	tests := []struct {
		name        string
		kind        string
		backend     func(t *testing.T) keyringBackend
		wantKind    string
		wantWarning bool
		wantLog     string // in the one warning logged; "" for no log
	}{
		{"memory", "memory", func(*testing.T) keyringBackend { return failingKeyring{probeErr} }, "memory", false, ""},
		{"keyring works", "keyring", func(*testing.T) keyringBackend { return newFakeKeyring() }, "keyring", false, ""},
		{"default is keyring", "", func(*testing.T) keyringBackend { return newFakeKeyring() }, "keyring", false, ""},
		{"no secret service", "keyring", func(*testing.T) keyringBackend { return failingKeyring{probeErr} }, "memory", true, "org.freedesktop.secrets"},
		{"keyring hangs (locked)", "", func(t *testing.T) keyringBackend { return newBlockingKeyring(t) }, "keyring", true, "did not answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			ks := newKeyringStore(tt.backend(t))
			// Only the hanging keyring waits it out; a working one must answer within it on
			// a loaded machine.
			ks.Timeout = 500 * time.Millisecond

			s, err := openSecretStore(t.Context(), tt.kind, log, ks, keyringProbeGrace)
			if err != nil {
				t.Fatalf("openSecretStore: %v", err)
			}
			waitProbe(t, s)
			info := s.Info()
			if info.Kind != tt.wantKind {
				t.Errorf("Info().Kind = %q, want %q", info.Kind, tt.wantKind)
			}
			if got := info.Warning != ""; got != tt.wantWarning {
				t.Errorf("Info().Warning = %q, want a warning: %v", info.Warning, tt.wantWarning)
			}
			if tt.wantWarning && tt.wantKind == "keyring" && !strings.Contains(info.Warning, "locked") {
				t.Errorf("Info().Warning = %q, want it to say the keyring may be locked", info.Warning)
			}
			if tt.wantWarning && tt.wantKind == "memory" {
				wants := []string{"NOT survive a restart", `secret_store = "memory"`}
				if runtime.GOOS == "linux" {
					wants = append(wants, "gnome-keyring")
				}
				for _, want := range wants {
					if !strings.Contains(info.Warning, want) {
						t.Errorf("Info().Warning = %q, want it to mention %q", info.Warning, want)
					}
				}
			}
			lines := strings.Count(logs.String(), "level=WARN")
			if tt.wantLog == "" {
				if logs.Len() != 0 {
					t.Errorf("logged %q, want nothing", logs.String())
				}
				return
			}
			if lines != 1 {
				t.Errorf("logged %d warnings, want 1: %q", lines, logs.String())
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log = %q, want it to contain the probe error %q", logs.String(), tt.wantLog)
			}
		})
	}
}

func TestOpenSecretStoreErrors(t *testing.T) {
	t.Run("unknown kind", func(t *testing.T) {
		_, err := openSecretStore(t.Context(), "vault", nil, newKeyringStore(newFakeKeyring()), 0)
		if err == nil {
			t.Fatal("err = nil, want an error")
		}
		for _, want := range []string{`"vault"`, `"keyring"`, `"memory"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to mention %s", err, want)
			}
		}
	})
	t.Run("caller gives up", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := openSecretStore(ctx, "keyring", nil, newKeyringStore(newFakeKeyring()), 0)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// waitProbe waits until the keyring probe of s, if it has one, has chosen a store.
func waitProbe(t *testing.T, s SecretStore) {
	t.Helper()
	p, ok := s.(*probedStore)
	if !ok {
		return
	}
	select {
	case <-p.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the keyring probe did not end within 10s")
	}
}

// gatedKeyring passes calls on to a backend while its gate is open and holds them while it
// is shut, like a keyring that is unlocked and locked again.
type gatedKeyring struct {
	next keyringBackend
	mu   sync.Mutex
	gate chan struct{} // closed while open
	open bool
}

// newGatedKeyring returns a shut gate in front of next; it opens when the test ends.
func newGatedKeyring(t *testing.T, next keyringBackend) *gatedKeyring {
	t.Helper()
	g := &gatedKeyring{next: next, gate: make(chan struct{})}
	t.Cleanup(g.Open)
	return g
}

func (g *gatedKeyring) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		close(g.gate)
		g.open = true
	}
}

func (g *gatedKeyring) Shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		g.gate = make(chan struct{})
		g.open = false
	}
}

func (g *gatedKeyring) pass() {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	<-gate
}

func (g *gatedKeyring) Get(service, user string) (string, error) {
	g.pass()
	return g.next.Get(service, user)
}

func (g *gatedKeyring) Set(service, user, value string) error {
	g.pass()
	return g.next.Set(service, user, value)
}

func (g *gatedKeyring) Delete(service, user string) error {
	g.pass()
	return g.next.Delete(service, user)
}

// openAsync runs openSecretStore and fails the test unless it returns promptly: it must
// not wait for the keyring longer than grace.
func openAsync(t *testing.T, ctx context.Context, log *slog.Logger, ks *KeyringStore, grace time.Duration) SecretStore {
	t.Helper()
	type result struct {
		s   SecretStore
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := openSecretStore(ctx, "keyring", log, ks, grace)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("openSecretStore: %v", r.err)
		}
		return r.s
	case <-time.After(grace + 5*time.Second):
		t.Fatal("openSecretStore waits for a keyring that does not answer")
	}
	return nil
}

func TestOpenSecretStoreDoesNotWaitForKeyring(t *testing.T) {
	b := newBlockingKeyring(t)
	ks := newKeyringStore(b)
	ks.Timeout = time.Hour // the probe stays pending for the whole test
	s := openAsync(t, t.Context(), nil, ks, keyringProbeGrace)
	<-b.entered // the probe is in the keyring

	info := s.Info()
	if info.Kind != "keyring" || !info.Persistent {
		t.Errorf("Info() while the probe runs = %+v, want kind keyring, persistent", info)
	}
	for _, want := range []string{"not answered yet", "locked", "unlock"} {
		if !strings.Contains(info.Warning, want) {
			t.Errorf("Info().Warning while the probe runs = %q, want it to mention %q", info.Warning, want)
		}
	}

	calls := map[string]func(context.Context) error{
		"Get":    func(ctx context.Context) error { _, err := s.Get(ctx, "work/secret"); return err },
		"Set":    func(ctx context.Context) error { return s.Set(ctx, "work/secret", "v") },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "work/secret") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			err := call(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the call's own deadline", err)
			}
			for _, want := range []string{"work/secret", "not answered yet", "unlock", "try again"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to mention %q", err, want)
				}
			}
			select {
			case <-b.entered:
				t.Errorf("%s went to the keyring before the probe chose it", name)
			default:
			}
		})
	}
	if got := s.Info(); got != info {
		t.Errorf("Info() after the calls = %+v, want still %+v", got, info)
	}
}

func TestOpenSecretStoreFastKeyringIsNeverPending(t *testing.T) {
	noService := errors.New("dbus: The name org.freedesktop.secrets was not provided by any .service files")
	tests := []struct {
		name     string
		backend  keyringBackend
		wantKind string
	}{
		{"keyring answers", newFakeKeyring(), "keyring"},
		{"no secret service", failingKeyring{noService}, "memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := openSecretStore(t.Context(), "keyring", nil, newKeyringStore(tt.backend), keyringProbeGrace)
			if err != nil {
				t.Fatalf("openSecretStore: %v", err)
			}
			// No waitProbe: a keyring that answers at once is settled when the store is returned.
			info := s.Info()
			if info.Kind != tt.wantKind || strings.Contains(info.Warning, "not answered yet") {
				t.Errorf("Info() = %+v, want kind %s, not pending", info, tt.wantKind)
			}
		})
	}
}

func TestOpenSecretStoreCallsWaitForProbe(t *testing.T) {
	noService := errors.New("dbus: The name org.freedesktop.secrets was not provided by any .service files")
	tests := []struct {
		name        string
		backend     keyringBackend
		wantKind    string
		wantWarning string // "" for none
	}{
		{"keyring answers", newFakeKeyring(), "keyring", ""},
		{"no secret service", failingKeyring{noService}, "memory", "NOT survive a restart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := newGatedKeyring(t, tt.backend)
			ks := newKeyringStore(gate)
			ks.Timeout = time.Hour
			s := openAsync(t, t.Context(), nil, ks, 0)
			if w := s.Info().Warning; !strings.Contains(w, "not answered yet") {
				t.Errorf("Info().Warning while the probe runs = %q, want it to say the keyring has not answered yet", w)
			}

			set := make(chan error, 1)
			go func() { set <- s.Set(t.Context(), "work/secret", "v1") }()
			select {
			case err := <-set:
				t.Fatalf("Set returned (%v) before the probe ended", err)
			case <-time.After(50 * time.Millisecond):
			}

			gate.Open()
			select {
			case err := <-set:
				if err != nil {
					t.Fatalf("Set after the probe: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Set did not return within 10s of the probe's end")
			}
			waitProbe(t, s)
			info := s.Info()
			if info.Kind != tt.wantKind {
				t.Errorf("Info().Kind = %q, want %q", info.Kind, tt.wantKind)
			}
			if tt.wantWarning == "" && info.Warning != "" || !strings.Contains(info.Warning, tt.wantWarning) {
				t.Errorf("Info().Warning = %q, want %q", info.Warning, tt.wantWarning)
			}
			if got, err := s.Get(t.Context(), "work/secret"); err != nil || got != "v1" {
				t.Errorf("Get = %q, %v; want the value set while the probe ran", got, err)
			}
			if fake, ok := tt.backend.(*fakeKeyring); ok {
				if got := fake.snapshot()["work/secret"]; got != "v1" {
					t.Errorf("keyring holds %q under work/secret, want the value set while the probe ran", got)
				}
			}
		})
	}
}

func TestOpenSecretStoreLockedKeyring(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	fake := newFakeKeyring()
	gate := newGatedKeyring(t, fake)
	ks := newKeyringStore(gate)
	// Each locked call waits it out (three of them); each unlocked one must finish within
	// it on a loaded machine.
	ks.Timeout = 500 * time.Millisecond
	s := openAsync(t, t.Context(), log, ks, 0)
	waitProbe(t, s)

	info := s.Info()
	if info.Kind != "keyring" || !info.Persistent || !strings.Contains(info.Warning, "may be locked") {
		t.Fatalf("Info() after the probe timed out = %+v, want the keyring with a warning that it may be locked", info)
	}
	if _, err := s.Get(t.Context(), "work/secret"); !errors.Is(err, ErrKeyringTimeout) {
		t.Errorf("Get while locked: err = %v, want ErrKeyringTimeout", err)
	}
	if got := s.Info(); got != info {
		t.Errorf("Info() after a timed-out call = %+v, want %+v", got, info)
	}

	gate.Open() // unlocked
	if _, err := s.Get(t.Context(), "work/secret"); !errors.Is(err, providers.ErrSecretNotFound) {
		t.Fatalf("Get once unlocked: err = %v, want ErrSecretNotFound", err)
	}
	if got, want := s.Info(), (StoreInfo{Kind: "keyring", Persistent: true}); got != want {
		t.Errorf("Info() once the keyring answers = %+v, want %+v", got, want)
	}

	gate.Shut() // locked again
	if err := s.Set(t.Context(), "work/secret", "v"); !errors.Is(err, ErrKeyringTimeout) {
		t.Errorf("Set when locked again: err = %v, want ErrKeyringTimeout", err)
	}
	if got := s.Info(); got != info {
		t.Errorf("Info() when locked again = %+v, want %+v", got, info)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("logged %d warnings, want 2 (locked at start, locked again): %q", n, logs.String())
	}
}

func TestOpenSecretStoreStopsWithContext(t *testing.T) {
	b := newBlockingKeyring(t)
	ks := newKeyringStore(b)
	ks.Timeout = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	s := openAsync(t, ctx, nil, ks, 0)
	<-b.entered
	cancel() // the agent stops
	waitProbe(t, s)
	if _, err := s.Get(t.Context(), "work/secret"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get after the agent's context ended: err = %v, want context.Canceled", err)
	}
	if info := s.Info(); info.Kind != "keyring" || info.Warning == "" {
		t.Errorf("Info() = %+v, want the keyring with a warning that it was not checked", info)
	}
}

// syncBuffer is a bytes.Buffer that a logger writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
