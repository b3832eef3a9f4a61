package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/authagent/authagent/providers"
)

// scanBest is how ProfileForURL picked a profile before the host index: every entry of
// every profile matched against the host. The index must pick the same.
func scanBest(hosts map[string][]string, host, port string) string {
	best, bestScore := "", 0
	for name, entries := range hosts {
		for _, h := range entries {
			s := hostMatch(h, host, port)
			if s > bestScore || (s == bestScore && s > 0 && name < best) {
				best, bestScore = name, s
			}
		}
	}
	return best
}

// TestHostIndexPrefersAsScanDid: port-qualified beats plain, exact beats wildcard, a
// longer wildcard beats a shorter one, and ties go to the name that sorts first.
func TestHostIndexPrefersAsScanDid(t *testing.T) {
	hosts := map[string][]string{
		"wild":       {"*.example.com"},
		"wild-long":  {"*.api.example.com"},
		"exact":      {"api.example.com"},
		"exact-port": {"API.example.com:8443"},
		"wild-port":  {"*.example.com:8443"},
		"b-tie":      {"git.example.org"},
		"a-tie":      {"Git.Example.org", "git.example.org."}, // an entry keeps its trailing dot: no match
		"c-tie":      {" GIT.example.org "},
		"v6":         {"[::1]:8080", "::2"},
		"any-port":   {"odd.example.net:"},
	}
	for _, tt := range []struct{ host, port, want string }{
		{"api.example.com", "443", "exact"},
		{"api.example.com", "8443", "exact-port"},
		{"x.api.example.com", "443", "wild-long"},
		{"x.example.com", "443", "wild"},
		{"x.example.com", "8443", "wild-port"},
		{"x.api.example.com", "8443", "wild-port"}, // a port beats a longer wildcard
		{"example.com", "443", ""},
		{"git.example.org", "443", "a-tie"},
		{"GIT.example.org.", "443", "a-tie"},
		{"::1", "8080", "v6"},
		{"::1", "443", ""},
		{"::2", "443", "v6"},
		{"odd.example.net", "443", "any-port"},
		{"other.org", "443", ""},
	} {
		var x hostIndex
		for name, entries := range hosts {
			x.add(name, entries)
		}
		if scan := scanBest(hosts, tt.host, tt.port); scan != tt.want {
			t.Fatalf("the scan picks %q for %s port %s, the table says %q: fix the table", scan, tt.host, tt.port, tt.want)
		}
		if got := x.best(tt.host, tt.port); got != tt.want {
			t.Errorf("best(%q, %q) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}
}

// TestHostIndexMatchesScan compares the index with the scan on random profiles and hosts
// drawn from a small alphabet, so that collisions, ties, wildcards at every depth, ports,
// case, brackets and trailing dots all come up; and keeps comparing while profiles are
// replaced and removed.
func TestHostIndexMatchesScan(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	labels := []string{"a", "b", "c", "A", "xn--d", "1"}
	name := func() string { return fmt.Sprintf("p%d", r.IntN(40)) }
	hostName := func() string {
		parts := make([]string, 1+r.IntN(4))
		for i := range parts {
			parts[i] = labels[r.IntN(len(labels))]
		}
		h := strings.Join(parts, ".")
		if r.IntN(10) == 0 {
			h += "."
		}
		return h
	}
	ports := []string{"", "443", "8443", "80"}
	entry := func() string {
		var e string
		switch r.IntN(10) {
		case 0, 1, 2:
			e = "*." + hostName()
		case 3:
			e = "[::1]"
		case 4:
			e = "*."
		default:
			e = hostName()
		}
		if p := ports[r.IntN(len(ports))]; p != "" {
			if strings.Contains(e, ":") && !strings.HasPrefix(e, "[") {
				e = "[" + e + "]"
			}
			e += ":" + p
		}
		if r.IntN(15) == 0 {
			e = " " + strings.ToUpper(e) + " "
		}
		return e
	}
	hosts := map[string][]string{}
	var x hostIndex
	for round := range 3000 {
		switch n := name(); r.IntN(4) {
		case 0:
			x.remove(n, hosts[n])
			delete(hosts, n)
		default:
			es := make([]string, r.IntN(4))
			for i := range es {
				es[i] = entry()
			}
			x.remove(n, hosts[n])
			hosts[n] = es
			x.add(n, es)
		}
		for range 5 {
			host, port := hostName(), ports[1+r.IntN(len(ports)-1)]
			if r.IntN(8) == 0 {
				host = "::1"
			}
			if got, want := x.best(host, port), scanBest(hosts, host, port); got != want {
				t.Fatalf("round %d: best(%q, %q) = %q, the scan picks %q; profiles %q", round, host, port, got, want, hosts)
			}
		}
	}
	for n, es := range hosts {
		x.remove(n, es)
	}
	if len(x.exact)+len(x.wild) != 0 {
		t.Errorf("after removing every profile the index holds %d names and %d suffixes", len(x.exact), len(x.wild))
	}
}

// TestProfileForURLFollowsChanges: the agent's index follows PutProfile, DeleteProfile
// and Reload, and picks what the scan of the served profiles picks.
func TestProfileForURLFollowsChanges(t *testing.T) {
	h := newHarness(t, &providers.ProfileConfig{Hosts: []string{"*.example.com"}}, 0.5,
		func(*fakeClock, int) (*providers.Credential, error) { return &providers.Credential{Token: "t"}, nil })
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		h.a.mu.Lock()
		hosts := map[string][]string{}
		for name, p := range h.a.profiles.byName {
			hosts[name] = p.cfg.Hosts
		}
		h.a.mu.Unlock()
		for _, raw := range []string{"https://api.example.com/", "https://git.example.com/", "https://x.y.example.com:8443/", "https://git.example.org/", "http://localhost:8080/"} {
			u, _ := url.Parse(raw)
			got, err := h.a.ProfileForURL(u)
			want := scanBest(hosts, u.Hostname(), urlPort(u))
			if got != want || (err == nil) != (want != "") {
				t.Errorf("%s: ProfileForURL(%s) = %q, %v; the scan picks %q", when, raw, got, err, want)
			}
		}
	}
	check("start")
	put := func(name string, hosts ...string) {
		t.Helper()
		if err := h.a.PutProfile(ctx, name, &providers.ProfileConfig{Provider: "fake", Hosts: hosts}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("git", "git.example.com", "git.example.org")
	check("after adding git")
	put("api", "api.example.com", "*.y.example.com:8443")
	check("after adding api")
	put("git", "localhost:8080")
	check("after replacing git")
	if err := h.a.DeleteProfile(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	check("after removing api")
	if err := os.WriteFile(h.path, []byte("[profile.p]\nprovider = \"fake\"\nhosts = [\"git.example.org\"]\n\n[profile.q]\nprovider = \"fake\"\nhosts = [\"*.example.com\", \"api.example.com\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	check("after a reload")
	h.a.mu.Lock()
	var names []string
	for _, m := range []map[string][]hostRef{h.a.profiles.hosts.exact, h.a.profiles.hosts.wild} {
		for _, refs := range m {
			for _, r := range refs {
				if !slices.Contains(names, r.profile) {
					names = append(names, r.profile)
				}
			}
		}
	}
	slices.Sort(names)
	h.a.mu.Unlock()
	if want := []string{"p", "q"}; !slices.Equal(names, want) {
		t.Errorf("after the reload the index holds hosts of %q, want %q", names, want)
	}
}

func TestValidHostEntry(t *testing.T) {
	for e, ok := range map[string]bool{
		"api.example.com": true, "api.example.com:8443": true, "*.example.com": true, "[::1]:8080": true,
		"":                               false,
		"a b":                            false,
		"\x1b]0;pwned\x07\x1b[31mRED":    false, // would write escapes to a terminal (list, git setup)
		"evil.example\rgood.example.com": false,
		"a.com\x00b":                     false,
		"api.example.com.":               false, // never matches; say so
		"a.*.example.com":                false,
		"\xff.example.com":               false,
	} {
		if err := validHostEntry(e); (err == nil) != ok {
			t.Errorf("validHostEntry(%q) = %v, want ok=%v", e, err, ok)
		}
	}
}
