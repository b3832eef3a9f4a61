package agent

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/authagent/authagent/providers"
)

// hostMatch reports how well a hosts entry matches a URL host and port: 0 for no match,
// higher for more specific matches (an entry with a port beats one without, an exact name
// beats a wildcard, a longer wildcard beats a shorter one).
func hostMatch(entry, host, port string) int {
	eh, ep := splitHostEntry(entry)
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	score := 0
	switch {
	case strings.HasPrefix(eh, "*."):
		suffix := eh[1:] // ".example.com"
		if !strings.HasSuffix(host, suffix) || len(host) == len(suffix) {
			return 0
		}
		score = 1 + len(suffix)
	case eh == host:
		score = 1 << 16
	default:
		return 0
	}
	if ep != "" {
		if ep != port {
			return 0
		}
		score += 1 << 20
	}
	return score
}

// splitHostEntry is a hosts entry as hostMatch reads it: the host name, lowercased and
// without brackets ("*.example.com" for a wildcard), and the port ("" for any).
func splitHostEntry(entry string) (host, port string) {
	entry = strings.ToLower(strings.TrimSpace(entry))
	host = entry
	if h, p, err := net.SplitHostPort(entry); err == nil {
		host, port = h, p
	}
	return strings.Trim(host, "[]"), port
}

// hostIndex files the hosts entries of every profile under the one host name, or the
// one wildcard suffix, that they can match, so that finding the profile for a URL looks
// up the URL's host and its suffixes instead of matching every profile's entries. The
// caller passes the same entries to remove that it passed to add.
type hostIndex struct {
	exact map[string][]hostRef // "api.example.com" and "api.example.com:8443" under "api.example.com"
	wild  map[string][]hostRef // "*.example.com" under ".example.com"
}

// hostRef is one hosts entry of one profile.
type hostRef struct{ profile, entry string }

// file is the map and key an entry is filed under: its host name, or for a wildcard its
// suffix.
func (x *hostIndex) file(entry string) (map[string][]hostRef, string) {
	h, _ := splitHostEntry(entry)
	if strings.HasPrefix(h, "*.") {
		return x.wild, h[1:]
	}
	return x.exact, h
}

// add files the entries of profile name.
func (x *hostIndex) add(name string, hosts []string) {
	if x.exact == nil {
		x.exact, x.wild = map[string][]hostRef{}, map[string][]hostRef{}
	}
	for _, e := range hosts {
		m, key := x.file(e)
		m[key] = append(m[key], hostRef{profile: name, entry: e})
	}
}

// remove takes out entries of profile name that add filed.
func (x *hostIndex) remove(name string, hosts []string) {
	for _, e := range hosts {
		m, key := x.file(e)
		refs := m[key]
		if i := slices.Index(refs, hostRef{profile: name, entry: e}); i >= 0 {
			refs = slices.Delete(refs, i, i+1)
		}
		if len(refs) == 0 {
			delete(m, key)
		} else {
			m[key] = refs
		}
	}
}

// best is the profile with the entry that matches host and port best (hostMatch), ties
// going to the name that sorts first; "" when no entry matches. An entry can match only
// when filed under the host itself or under one of its suffixes that starts with a dot.
func (x *hostIndex) best(host, port string) string {
	best, bestScore := "", 0
	consider := func(refs []hostRef) {
		for _, r := range refs {
			s := hostMatch(r.entry, host, port)
			if s > bestScore || (s == bestScore && s > 0 && r.profile < best) {
				best, bestScore = r.profile, s
			}
		}
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	consider(x.exact[h])
	for i := 1; i < len(h); i++ {
		if h[i] == '.' {
			consider(x.wild[h[i:]])
		}
	}
	return best
}

// urlPort is the URL's explicit port, or the scheme's default.
func urlPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch u.Scheme {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// checkScheme refuses to send a token anywhere but https, or http on a loopback host.
func checkScheme(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if providers.IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("refusing to send a token over plain http to %s: use https (http is allowed only for loopback hosts)", u.Hostname())
	default:
		return fmt.Errorf("unsupported URL scheme %q: want https", u.Scheme)
	}
}

// validHostEntry checks one hosts entry from the config.
func validHostEntry(e string) error {
	if e == "" || strings.ContainsAny(e, "/ \t@?#") || providers.HasControl(e) || !utf8.ValidString(e) {
		return fmt.Errorf("%q is not a host name: want \"api.example.com\", \"api.example.com:8443\" or \"*.example.com\"", e)
	}
	if strings.HasSuffix(e, ".") {
		return fmt.Errorf("%q ends in a dot; write it without (%q)", e, strings.TrimSuffix(e, "."))
	}
	h := e
	if hh, _, err := net.SplitHostPort(e); err == nil {
		h = hh
	}
	if strings.Contains(strings.TrimPrefix(h, "*."), "*") {
		return fmt.Errorf("%q: a wildcard is allowed only as the first label (\"*.example.com\")", e)
	}
	return nil
}
