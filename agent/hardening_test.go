package agent

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/providers"
)

// unsearchableKeyring hides the search of the keyring it wraps, like go-keyring on macOS
// and Windows: only the pending markers tell a store where chunks were left.
type unsearchableKeyring struct{ keyringBackend }

// stallingKeyring holds the first Set whose user matches stall until release is closed,
// like a Secret Service that is slow to answer, or an agent killed in the middle of a
// write when release is never closed (the held call never lands).
type stallingKeyring struct {
	next    keyringBackend
	stall   func(user string) bool
	entered chan struct{} // closed when the held Set has begun
	release chan struct{}

	once sync.Once
}

func newStallingKeyring(t *testing.T, next keyringBackend, stall func(user string) bool) *stallingKeyring {
	k := &stallingKeyring{next: next, stall: stall, entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(k.Release)
	return k
}

// Release lets the held Set go on to the keyring.
func (k *stallingKeyring) Release() {
	select {
	case <-k.release:
	default:
		close(k.release)
	}
}

func (k *stallingKeyring) Get(service, user string) (string, error) { return k.next.Get(service, user) }

func (k *stallingKeyring) Set(service, user, value string) error {
	if k.stall(user) {
		held := false
		k.once.Do(func() { held = true })
		if held {
			close(k.entered)
			<-k.release
		}
	}
	return k.next.Set(service, user, value)
}

func (k *stallingKeyring) Delete(service, user string) error { return k.next.Delete(service, user) }

func (k *stallingKeyring) Accounts(service string) ([]string, error) {
	if s, ok := k.next.(keyringSearcher); ok {
		return s.Accounts(service)
	}
	return nil, errNoSearch
}

// settle waits until no write of s (nor the tidying after one) holds its lock.
func settle(t *testing.T, s *KeyringStore) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.lock(ctx); err != nil {
		t.Fatalf("the store is still writing after 10s: %v", err)
	}
	s.unlock()
}

// TestKeyringWriteCutShort cuts a chunked write short at its sixth chunk, by each cause,
// with and without a keyring that can be searched. The cut write leaves the old value;
// then the next write or delete of the account leaves exactly what it stored.
func TestKeyringWriteCutShort(t *testing.T) {
	const account = "work/secret"
	old := strings.Repeat("o", 5000)   // 3 chunks
	long := strings.Repeat("n", 20000) // 10 chunks
	isChunk5 := func(user string) bool { return strings.HasPrefix(user, account+"#") && strings.HasSuffix(user, ".5") }

	type cut struct {
		name string
		// run cuts a Set of long short while the keyring holds its sixth chunk. It returns
		// the store to go on with: the same one, or a new one for an agent started again.
		run func(t *testing.T, s *KeyringStore, k *stallingKeyring, backend keyringBackend) *KeyringStore
	}
	cuts := []cut{
		{"cancelled ctx", func(t *testing.T, s *KeyringStore, k *stallingKeyring, _ keyringBackend) *KeyringStore {
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				<-k.entered
				cancel()
			}()
			if err := s.Set(ctx, account, long); !errors.Is(err, context.Canceled) {
				t.Fatalf("Set cancelled at chunk 6: err = %v, want context.Canceled", err)
			}
			k.Release() // the keyring answers late: chunk 6 lands after Set gave up
			return s
		}},
		{"timeout", func(t *testing.T, s *KeyringStore, k *stallingKeyring, _ keyringBackend) *KeyringStore {
			// Every later call of this subtest runs under it too (the store's goroutines read
			// it): long enough for those on a loaded machine, short enough to wait out.
			s.Timeout = time.Second
			if err := s.Set(t.Context(), account, long); !errors.Is(err, ErrKeyringTimeout) {
				t.Fatalf("Set stalled at chunk 6: err = %v, want ErrKeyringTimeout", err)
			}
			k.Release()
			return s
		}},
		{"agent killed", func(t *testing.T, s *KeyringStore, k *stallingKeyring, backend keyringBackend) *KeyringStore {
			done := make(chan error, 1)
			go func() { done <- s.Set(context.WithoutCancel(t.Context()), account, long) }()
			<-k.entered
			// The held call never returns while the test runs: the agent is gone. A new
			// one starts on the same keyring.
			t.Cleanup(func() {
				k.Release()
				<-done
			})
			return newKeyringStore(backend)
		}},
	}
	nexts := []struct {
		name string
		run  func(ctx context.Context, s *KeyringStore) error
		want map[string]string
	}{
		{"next write", func(ctx context.Context, s *KeyringStore) error { return s.Set(ctx, account, "short") }, map[string]string{account: "short"}},
		{"next delete", func(ctx context.Context, s *KeyringStore) error { return s.Delete(ctx, account) }, map[string]string{}},
	}
	for _, searchable := range []bool{true, false} {
		for _, c := range cuts {
			for _, next := range nexts {
				name := c.name + "/" + next.name
				if !searchable {
					name += "/unsearchable"
				}
				t.Run(name, func(t *testing.T) {
					fake := newFakeKeyring()
					var backend keyringBackend = fake
					if !searchable {
						backend = unsearchableKeyring{fake}
					}
					k := newStallingKeyring(t, backend, isChunk5)
					s := newKeyringStore(k)
					if err := s.Set(t.Context(), account, old); err != nil {
						t.Fatalf("Set of the old value: %v", err)
					}

					s = c.run(t, s, k, backend)
					settle(t, s)
					if got, err := s.Get(t.Context(), account); err != nil || got != old {
						t.Errorf("Get after the cut write = %d bytes, %v; want the old value", len(got), err)
					}
					if c.name != "agent killed" {
						// The cut write tidied after itself once its late call returned.
						if got, want := len(fake.snapshot()), wantEntries(old); got != want {
							t.Errorf("after the cut write the keyring holds %d entries, want %d: %v", got, want, slices.Sorted(maps.Keys(fake.snapshot())))
						}
					}

					if err := next.run(t.Context(), s); err != nil {
						t.Fatalf("%s: %v", next.name, err)
					}
					if diff := cmp.Diff(next.want, fake.snapshot()); diff != "" {
						t.Errorf("keyring after the %s (-want +got):\n%s", next.name, diff)
					}
				})
			}
		}
	}
}

// TestKeyringSweep: an agent starting on a keyring that can be searched deletes the chunk
// entries no header points at, also those an older agent left without a marker, and
// nothing else.
func TestKeyringSweep(t *testing.T) {
	fake := newFakeKeyring()
	seed := newKeyringStore(fake)
	live := strings.Repeat("L", 5000)
	for _, a := range []string{"work/secret", "hub/refresh_token"} {
		if err := seed.Set(t.Context(), a, live); err != nil {
			t.Fatal(err)
		}
	}
	want := fake.snapshot()
	for _, other := range []string{"x/secret#notachunk", "authagent-probe", "hub/secret"} {
		fake.entries[other] = "v"
		want[other] = "v"
	}
	// Left behind: chunks of a generation no header points at, a marker, and chunks of an
	// account that has no main entry at all.
	for i := range 94 {
		fake.entries[chunkAccount("work/secret", "00112233aabbccdd", i)] = "stray"
	}
	fake.entries["work/secret"+pendingSuffix] = "0011223344556677:2"
	fake.entries[chunkAccount("gone/secret", "8899aabbccddeeff", 0)] = "stray"

	var logs syncBuffer
	s, err := openSecretStore(t.Context(), "keyring", slog.New(slog.NewTextHandler(&logs, nil)), newKeyringStore(fake), keyringProbeGrace)
	if err != nil {
		t.Fatal(err)
	}
	waitProbe(t, s)
	// The sweep runs in the background once the probe has its answer, and logs how it
	// ended after its last delete: wait for that, not for the keyring to look swept.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "keyring chunks") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if diff := cmp.Diff(want, fake.snapshot()); diff != "" {
		t.Errorf("keyring after the start (-want +got):\n%s", diff)
	}
	if got, err := s.Get(t.Context(), "work/secret"); err != nil || got != live {
		t.Errorf("Get work/secret = %d bytes, %v; want the live value", len(got), err)
	}
	if !strings.Contains(logs.String(), "entries=96") {
		t.Errorf("log = %q, want it to say 96 entries were deleted", logs.String())
	}
}

func TestSecretSizeCap(t *testing.T) {
	atLimit := strings.Repeat("s", MaxSecretSize)
	over := atLimit + "s"
	refused := errors.New("the keyring was asked")
	stores := map[string]func() (SecretStore, func() int){
		"keyring": func() (SecretStore, func() int) {
			fake := newFakeKeyring()
			return newKeyringStore(fake), func() int { return len(fake.snapshot()) }
		},
		"memory": func() (SecretStore, func() int) {
			m := NewMemoryStore()
			return m, func() int { return len(m.secrets) }
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			s, entries := open()
			err := s.Set(t.Context(), "big/secret", over)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Set of %d bytes: err = %v, want ErrTooLarge", len(over), err)
			}
			if want := "secret is 65537 bytes; the limit is 65536 bytes"; !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to say %q", err, want)
			}
			if n := entries(); n != 0 {
				t.Errorf("a refused Set left %d entries", n)
			}
			if err := s.Set(t.Context(), "big/secret", atLimit); err != nil {
				t.Fatalf("Set of exactly %d bytes: %v", MaxSecretSize, err)
			}
			if got, err := s.Get(t.Context(), "big/secret"); err != nil || got != atLimit {
				t.Errorf("Get = %d bytes, %v; want %d", len(got), err, MaxSecretSize)
			}
		})
	}
	t.Run("checked before the keyring is asked", func(t *testing.T) {
		err := newKeyringStore(failingKeyring{refused}).Set(t.Context(), "big/secret", over)
		if !errors.Is(err, ErrTooLarge) || errors.Is(err, refused) {
			t.Errorf("err = %v, want ErrTooLarge without asking the keyring", err)
		}
	})
	t.Run("PutProfile", func(t *testing.T) {
		h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
		h.settle(t)
		err := h.a.PutProfile(t.Context(), "big", &providers.ProfileConfig{Provider: "fake"}, &over)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("PutProfile with a %d-byte secret: err = %v, want ErrTooLarge", len(over), err)
		}
		if want := "profile big: secret is 65537 bytes; the limit is 65536 bytes (64 KiB)"; err.Error() != want {
			t.Errorf("err = %q, want %q", err, want)
		}
		if strings.Contains(err.Error(), "sss") {
			t.Errorf("err quotes the secret: %.100q", err)
		}
		if _, err := h.store.Get(t.Context(), "big/secret"); !errors.Is(err, providers.ErrSecretNotFound) {
			t.Errorf("the refused secret is in the store: %v", err)
		}
		if data, err := os.ReadFile(h.path); err == nil && strings.Contains(string(data), "big") {
			t.Errorf("the refused profile is in the config file:\n%s", data)
		}
		if _, err := h.a.Profile("big"); !errors.Is(err, ErrUnknownProfile) {
			t.Errorf("the refused profile is served: %v", err)
		}
		if err := h.a.PutProfile(t.Context(), "big", &providers.ProfileConfig{Provider: "fake"}, &atLimit); err != nil {
			t.Errorf("PutProfile with a secret of exactly %d bytes: %v", MaxSecretSize, err)
		}
	})
}

func TestLoadConfigRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte("[profile.p]\nprovider = \"fake\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := []string{".config.toml.12345.tmp", ".config.toml.4294967295.tmp"}
	kept := []string{
		".config.toml.abc.tmp",   // not what os.CreateTemp makes
		".config.toml..tmp",      // nor this
		"config.toml.123.tmp",    // no leading dot
		".other.toml.123.tmp",    // another file's
		".config.toml.123.tmp~",  // an editor's backup
		".config.toml.123.tmp.d", // the pattern, plus more
	}
	for _, name := range append(slices.Clone(stale), kept...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The pattern, but a directory and a symlink: not files the writer made.
	if err := os.Mkdir(filepath.Join(dir, ".config.toml.7.tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(path, filepath.Join(dir, ".config.toml.8.tmp")); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, ".config.toml.7.tmp", ".config.toml.8.tmp", "config.toml")

	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Profiles) != 1 {
		t.Errorf("profiles = %d, want 1", len(cfg.Profiles))
	}
	var got []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(kept)
	if diff := cmp.Diff(kept, got); diff != "" {
		t.Errorf("files after LoadConfig (-want +got):\n%s", diff)
	}
}

func TestLoadConfigRemovesStaleTempsBehindSymlink(t *testing.T) {
	real := t.TempDir()
	target := filepath.Join(real, "config.toml")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "config.toml")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(real, ".config.toml.99.tmp")
	if err := os.WriteFile(stale, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(link); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there (%v): the writer writes next to the symlink's target", stale, err)
	}
}

func TestLoadConfigKeepsOtherUsersTemps(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a file to another user") // CI runs as root
	}
	dir := t.TempDir()
	theirs := filepath.Join(dir, ".config.toml.5.tmp")
	if err := os.WriteFile(theirs, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "config.toml")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(theirs); err != nil {
		t.Errorf("another user's file was removed: %v", err)
	}
}

// TestWriteFileAtomicFailureLeavesNoTemp: the writer removes its temporary file when the
// final rename fails.
func TestWriteFileAtomicFailureLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	// A non-empty directory where the file should be: the rename over it fails.
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, []byte("secret_store = \"keyring\"\n"), 0o600); err == nil {
		t.Fatal("writeFileAtomic over a directory: err = nil, want an error")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if isConfigTemp("config.toml", e.Name()) {
			t.Errorf("the failed write left %s behind", e.Name())
		}
	}
}

// TestReloadKeepsProfilesWithoutConfig: a reload that finds the file missing, or with
// nothing but blank lines and comments, keeps the profiles and says so; a file with only
// secret_store removes them.
func TestReloadKeepsProfilesWithoutConfig(t *testing.T) {
	h := newHarness(t, nil, 0.5, func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
	h.settle(t)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(h.path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	names := func() []string {
		var out []string
		for _, p := range h.a.Profiles() {
			out = append(out, p.Name)
		}
		return out
	}
	write("[profile.p]\nprovider = \"fake\"\n\n[profile.q]\nprovider = \"fake\"\n")
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	want := []string{"p", "q"}

	tests := []struct {
		name    string
		prepare func()
		wantMsg string
	}{
		{"missing", func() { os.Remove(h.path) }, "is missing"},
		{"empty", func() { write("") }, "is empty"},
		{"blank lines", func() { write("\n  \n\t\n") }, "is empty"},
		{"comments only", func() { write("# all profiles\n\n   # commented out\n#[profile.p]\n") }, "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.prepare()
			err := h.a.Reload()
			if !errors.Is(err, ErrNoConfig) {
				t.Fatalf("Reload: err = %v, want ErrNoConfig", err)
			}
			for _, w := range []string{h.path, tt.wantMsg, "kept the 2 profiles", "SIGHUP again", "authagent remove"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to mention %q", err, w)
				}
			}
			if got := names(); !cmp.Equal(got, want) {
				t.Errorf("profiles after the reload = %v, want %v", got, want)
			}
		})
	}

	t.Run("only secret_store", func(t *testing.T) {
		write("secret_store = \"keyring\"\n")
		if err := h.a.Reload(); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if got := names(); len(got) != 0 {
			t.Errorf("profiles = %v, want none", got)
		}
	})
}

// TestLoadConfigAtStartWithoutConfig: at start a missing or empty file is a config without
// profiles.
func TestLoadConfigAtStartWithoutConfig(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.toml")
	if err := os.WriteFile(empty, []byte("# nothing yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.toml"), empty} {
		cfg, err := LoadConfig(path)
		if err != nil {
			t.Errorf("LoadConfig(%s): %v", filepath.Base(path), err)
			continue
		}
		if len(cfg.Profiles) != 0 || cfg.SecretStore != "keyring" {
			t.Errorf("LoadConfig(%s) = %d profiles, store %q; want none, keyring", filepath.Base(path), len(cfg.Profiles), cfg.SecretStore)
		}
	}
}
