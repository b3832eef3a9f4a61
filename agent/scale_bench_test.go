package agent

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authagent/authagent/providers"
)

// Goals from issue 13, checked by reading the figures, never by assertions: at 10 000
// profiles, adding or replacing one takes at most 5 ms, and finding the profile for a
// URL at most 0.2 ms. Each benchmark runs its baseline in the same run: the whole-file
// parse every edit did before, and the scan of every profile's hosts.

const scaleProfiles = 10000

// scaleSection is the config section of profile i, shaped like an apikey profile.
func scaleSection(i int) string {
	return fmt.Sprintf("[profile.p%05d]\nprovider = \"x\"\nmode = \"headers\"\nkey_id = \"k%05d\"\n"+
		"hosts = [\"h%05d.example.com\", \"*.w%05d.example.org:8443\"]\nheaders = { X-API-Key = \"{secret}\" }\n\n", i, i, i, i)
}

// newScaleAgent starts an agent on a config file of n profiles in dir, loaded as `serve`
// loads it. It returns the agent and the file's path.
func newScaleAgent(b *testing.B, n int, dir string) (*Agent, string) {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("# many profiles\nsecret_store = \"memory\"\n\n")
	for i := range n {
		sb.WriteString(scaleSection(i))
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		b.Fatal(err)
	}
	clock := newFakeClock()
	calls := &atomic.Int64{}
	a, err := New(Options{
		Config: cfg,
		Store:  NewMemoryStore(),
		Clock:  clock,
		Providers: map[string]providers.Factory{"x": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) {
			return instantProvider{clock: clock, calls: calls}, nil
		}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	waitIdle(a)
	return a, path
}

func scaleConfig(i int) *providers.ProfileConfig {
	return &providers.ProfileConfig{Provider: "x", Mode: "headers", KeyID: fmt.Sprintf("k%05d-%d", i%scaleProfiles, i),
		Hosts:   []string{fmt.Sprintf("h%05d.example.com", i), fmt.Sprintf("*.w%05d.example.org:8443", i)},
		Headers: map[string]string{"X-API-Key": "{secret}"}}
}

// BenchmarkPutProfile10k defines profiles in an agent that serves 10 000: replacing one
// in the middle of the file, and adding one. The config file lives in the test's
// temporary directory, so each edit pays for its write and fsync. Baselines in the same
// run: "whole-file" is the edit every PUT made before (read, scan and parse the whole
// file, then write it), and "write-only" writes and syncs a file of the same size, the
// floor an edit of that file cannot go below. "replace-tmpfs" is "replace" with the file
// in /dev/shm, where a sync costs nothing: the agent's own work.
func BenchmarkPutProfile10k(b *testing.B) {
	ctx := context.Background()
	b.Run("replace", func(b *testing.B) {
		a, _ := newScaleAgent(b, scaleProfiles, b.TempDir())
		i := 0
		for b.Loop() {
			n := (i * 7919) % scaleProfiles
			if err := a.PutProfile(ctx, fmt.Sprintf("p%05d", n), scaleConfig(n), nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("replace-tmpfs", func(b *testing.B) {
		dir, err := os.MkdirTemp("/dev/shm", "authagent-bench")
		if err != nil {
			b.Skipf("no /dev/shm to put the config file in: %v", err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		a, _ := newScaleAgent(b, scaleProfiles, dir)
		i := 0
		for b.Loop() {
			n := (i * 7919) % scaleProfiles
			if err := a.PutProfile(ctx, fmt.Sprintf("p%05d", n), scaleConfig(n), nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("add", func(b *testing.B) {
		a, _ := newScaleAgent(b, scaleProfiles, b.TempDir())
		i := 0
		for b.Loop() {
			if err := a.PutProfile(ctx, fmt.Sprintf("new%07d", i), scaleConfig(i), nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("whole-file", func(b *testing.B) {
		_, path := newScaleAgent(b, scaleProfiles, b.TempDir())
		i := 0
		for b.Loop() {
			n := (i * 7919) % scaleProfiles
			if err := WriteProfile(path, fmt.Sprintf("p%05d", n), scaleConfig(n)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("write-only", func(b *testing.B) {
		_, path := newScaleAgent(b, scaleProfiles, b.TempDir())
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := writeFileAtomic(path, data, 0o600); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(data))/(1<<20), "file-MiB") // after the loop, which drops metrics reported before it
	})
}

// scanProfileForURL is ProfileForURL as it was before the host index: a scan of every
// profile's hosts under the agent's lock.
func scanProfileForURL(a *Agent, target *url.URL) string {
	host, port := target.Hostname(), urlPort(target)
	best, bestScore := "", 0
	a.mu.Lock()
	for name, p := range a.profiles.byName {
		for _, h := range p.cfg.Hosts {
			s := hostMatch(h, host, port)
			if s > bestScore || (s == bestScore && s > 0 && name < best) {
				best, bestScore = name, s
			}
		}
	}
	a.mu.Unlock()
	return best
}

// BenchmarkProfileForURL10k finds the profile for URLs among 10 000 profiles with two
// hosts each (a name and a wildcard with a port): a mix of exact hits, wildcard hits and
// misses. "scan" is the baseline: what ProfileForURL did before.
func BenchmarkProfileForURL10k(b *testing.B) {
	a, _ := newScaleAgent(b, scaleProfiles, b.TempDir())
	var targets []*url.URL
	for i := range 1000 {
		var raw string
		switch i % 4 {
		case 0, 1:
			raw = fmt.Sprintf("https://h%05d.example.com/repo.git", (i*7919)%scaleProfiles)
		case 2:
			raw = fmt.Sprintf("https://api.w%05d.example.org:8443/v1", (i*7919)%scaleProfiles)
		case 3:
			raw = fmt.Sprintf("https://nobody%d.example.net/", i)
		}
		u, err := url.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		targets = append(targets, u)
	}
	for _, u := range targets {
		got, _ := a.ProfileForURL(u)
		if want := scanProfileForURL(a, u); got != want {
			b.Fatalf("%s: index picks %q, scan %q", u, got, want)
		}
	}
	b.Run("index", func(b *testing.B) {
		i := 0
		for b.Loop() {
			a.ProfileForURL(targets[i%len(targets)])
			i++
		}
	})
	b.Run("scan", func(b *testing.B) {
		i := 0
		for b.Loop() {
			scanProfileForURL(a, targets[i%len(targets)])
			i++
		}
	})
}
