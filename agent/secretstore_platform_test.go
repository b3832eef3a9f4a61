package agent

import (
	"encoding/base64"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zalando/go-keyring"
)

// goKeyringOS is an in-memory keyringBackend that refuses values exactly where go-keyring
// v0.2.8 does on goos: on Windows a value over 2560 bytes (keyring_windows.go), on macOS a
// `security -i` command line over 4096 bytes (keyring_darwin.go), nowhere else. It lets
// the chunking for macOS and Windows be tested on Linux.
type goKeyringOS struct {
	goos    string
	mu      sync.Mutex
	entries map[string]string
}

func newGoKeyringOS(goos string) *goKeyringOS {
	return &goKeyringOS{goos: goos, entries: map[string]string{}}
}

// shellQuote is go-keyring's internal/shellescape.Quote.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if regexp.MustCompile(`[^\w@%+=:,./-]`).MatchString(s) {
		return "'" + strings.ReplaceAll(s, "'", "'\"'\"'") + "'"
	}
	return s
}

func (f *goKeyringOS) Set(service, user, password string) error {
	switch f.goos {
	case "windows":
		if len(password) > 2560 || len(service) >= 512 {
			return keyring.ErrSetDataTooBig
		}
	case "darwin":
		password = "go-keyring-base64:" + base64.StdEncoding.EncodeToString([]byte(password))
		command := fmt.Sprintf("add-generic-password -U -s %s -a %s -w %s\n", shellQuote(service), shellQuote(user), shellQuote(password))
		if len(command) > 4096 {
			return keyring.ErrSetDataTooBig
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries[user] = password
	return nil
}

func (f *goKeyringOS) Get(service, user string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.entries[user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	if f.goos == "darwin" {
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "go-keyring-base64:"))
		return string(b), err
	}
	return v, nil
}

func (f *goKeyringOS) Delete(service, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.entries[user]; !ok {
		return keyring.ErrNotFound
	}
	delete(f.entries, user)
	return nil
}

func (f *goKeyringOS) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}

func (f *goKeyringOS) users() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.entries))
}

// TestKeyringStoreChunksFitEachOS stores values around each OS's entry limit, up to
// MaxSecretSize, through a backend that refuses what go-keyring refuses on that OS: every
// Set must succeed, read back the same, take as few entries as the OS allows (a value as
// long as one entry holds takes one), and leave nothing behind after Delete.
func TestKeyringStoreChunksFitEachOS(t *testing.T) {
	accounts := []string{
		"work/refresh_token",
		strings.Repeat("n", 64) + "/refresh_token",
		strings.Repeat("'", 64) + "/api secret", // the worst case for macOS's shell quoting
	}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, account := range accounts {
			// The most one entry holds there: go-keyring's limit on Windows, what keeps
			// the longest chunk's `security` command within its limit on macOS.
			size := map[string]int{"linux": 2048, "windows": 2560}[goos]
			if goos == "darwin" {
				size = macOSValueLimit(keyringService, account+"#0123456789abcdef.4096")
			}
			values := map[string]string{
				"at limit":      strings.Repeat("a", size),
				"one over":      strings.Repeat("b", size+1),
				"two chunks":    strings.Repeat("c", 2*size),
				"multibyte":     strings.Repeat("é€😀", size/3),
				"MaxSecretSize": strings.Repeat("d", MaxSecretSize),
			}
			for name, value := range values {
				t.Run(fmt.Sprintf("%s/%.12s/%s", goos, account, name), func(t *testing.T) {
					ctx := t.Context()
					fake := newGoKeyringOS(goos)
					s := newKeyringStore(fake)
					s.goos = goos
					if err := s.Set(ctx, account, value); err != nil {
						t.Fatalf("Set of %d bytes (chunk size %d): %v", len(value), size, err)
					}
					got, err := s.Get(ctx, account)
					if err != nil || got != value {
						t.Fatalf("Get = %d bytes, %v; want the %d bytes set", len(got), err, len(value))
					}
					want := 1
					if len(value) > size {
						want = 1 + len(splitChunks(value, size))
					}
					if n := fake.count(); n != want {
						t.Errorf("keyring holds %d entries, want %d: %v", n, want, fake.users())
					}
					if err := s.Delete(ctx, account); err != nil {
						t.Fatalf("Delete: %v", err)
					}
					if n := fake.count(); n != 0 {
						t.Errorf("after Delete the keyring holds %v", fake.users())
					}
				})
			}
		}
	}
}

// TestChunkSize pins each OS's chunk size to go-keyring's limit there. On macOS the limit
// computed is taken, and at most 8 bytes more could have been: the quotes it counts around
// words that need none (6 base64 characters) and the rounding down to a base64 block.
func TestChunkSize(t *testing.T) {
	if got, want := chunkSize("windows", "work/refresh_token"), 2560; got != want {
		t.Errorf("Windows chunk size = %d, want %d (go-keyring refuses more)", got, want)
	}
	if got, want := chunkSize("linux", "work/refresh_token"), keyringChunkSize; got != want {
		t.Errorf("Linux chunk size = %d, want %d", got, want)
	}
	for _, account := range []string{"w", "work/refresh_token", strings.Repeat("'", 64), strings.Repeat("x", 3000)} {
		fake := newGoKeyringOS("darwin")
		limit := macOSValueLimit(keyringService, account)
		if limit > 0 {
			if err := fake.Set(keyringService, account, strings.Repeat("v", limit)); err != nil {
				t.Errorf("account %.10q…: go-keyring on macOS refuses %d bytes, the limit computed: %v", account, limit, err)
			}
		}
		if err := fake.Set(keyringService, account, strings.Repeat("v", limit+9)); err == nil {
			t.Errorf("account %.10q…: go-keyring on macOS takes %d bytes, more than the limit %d computed and its slack", account, limit+9, limit)
		}
	}
	if got := chunkSize("darwin", strings.Repeat("x", 5000)); got != 64 {
		t.Errorf("macOS chunk size for a 5000-byte account = %d, want the floor 64", got)
	}
}
