package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
)

// instantProvider hands out a token that lives an hour, counting calls.
type instantProvider struct {
	clock *fakeClock
	calls *atomic.Int64
}

func (p instantProvider) Fetch(context.Context) (*providers.Credential, error) {
	p.calls.Add(1)
	tok := "access-token-0123456789abcdef0123456789abcdef"
	return &providers.Credential{TokenType: "Bearer", Token: tok, ExpiresAt: p.clock.Now().Add(time.Hour),
		Headers: map[string]string{"Authorization": "Bearer " + tok}}, nil
}

func newManyProfiles(b *testing.B, n int) (*Agent, *fakeClock, *atomic.Int64) {
	clock := newFakeClock()
	calls := &atomic.Int64{}
	profiles := make(map[string]*providers.ProfileConfig, n)
	for i := range n {
		profiles[fmt.Sprintf("p%05d", i)] = &providers.ProfileConfig{Provider: "x", Hosts: []string{fmt.Sprintf("h%d.example.com", i)}}
	}
	a, err := New(Options{
		Config: &Config{Path: filepath.Join(b.TempDir(), "c.toml"), Profiles: profiles},
		Store:  NewMemoryStore(),
		Clock:  clock,
		Providers: map[string]providers.Factory{"x": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) {
			return instantProvider{clock: clock, calls: calls}, nil
		}},
	})
	if err != nil {
		b.Fatal(err)
	}
	for calls.Load() < int64(n) {
		runtime.Gosched()
	}
	return a, clock, calls
}

// BenchmarkManyProfiles measures an agent holding 10 000 refreshing profiles: the heap it
// keeps per profile, and the CPU cost of one refresh round (every profile refreshed once
// as the clock moves through a token lifetime).
func BenchmarkManyProfiles(b *testing.B) {
	const n = 10000
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	a, clock, calls := newManyProfiles(b, n)
	defer a.Close()
	waitIdle(a)
	runtime.GC()
	runtime.ReadMemStats(&after)
	heapPerProfile := float64(after.HeapAlloc-before.HeapAlloc) / n
	b.ResetTimer()
	for range b.N {
		start := calls.Load()
		clock.Advance(time.Hour)
		for calls.Load() < start+n {
			runtime.Gosched()
		}
		waitIdle(a)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/refresh")
	b.ReportMetric(heapPerProfile, "heap-B/profile")
}

// waitIdle waits until no profile is refreshing.
func waitIdle(a *Agent) {
	for {
		busy := false
		for _, p := range a.Profiles() {
			if p.State == StateRefreshing {
				busy = true
				break
			}
		}
		if !busy {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkIdleWakeups runs an agent with 1 000 profiles holding hour-long tokens through
// simulated hours and counts timer wake-ups that were not a due refresh: the goal is none.
func BenchmarkIdleWakeups(b *testing.B) {
	a, clock, calls := newManyProfiles(b, 1000)
	defer a.Close()
	waitIdle(a)
	clock.mu.Lock()
	fired0 := clock.fired
	clock.mu.Unlock()
	start := calls.Load()
	b.ResetTimer()
	for range b.N {
		clock.Advance(time.Hour)
		waitIdle(a)
	}
	b.StopTimer()
	clock.mu.Lock()
	fired := clock.fired - fired0
	clock.mu.Unlock()
	refreshes := calls.Load() - start
	minutes := float64(b.N) * 60
	b.ReportMetric(float64(refreshes)/minutes, "refreshes/min")
	b.ReportMetric(float64(int64(fired)-refreshes)/minutes, "idle-wakeups/min")
}
