package agent

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// hostMatch reports how well a hosts entry matches a URL host and port: 0 for no match,
// higher for more specific matches (an entry with a port beats one without, an exact name
// beats a wildcard, a longer wildcard beats a shorter one).
func hostMatch(entry, host, port string) int {
	entry = strings.ToLower(strings.TrimSpace(entry))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	eh, ep := entry, ""
	if h, p, err := net.SplitHostPort(entry); err == nil {
		eh, ep = h, p
	}
	eh = strings.Trim(eh, "[]")
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
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("refusing to send a token over plain http to %s: use https (http is allowed only for loopback hosts)", u.Hostname())
	default:
		return fmt.Errorf("unsupported URL scheme %q: want https", u.Scheme)
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validHostEntry checks one hosts entry from the config.
func validHostEntry(e string) error {
	if e == "" || strings.ContainsAny(e, "/ \t@?#") {
		return fmt.Errorf("%q is not a host name: want \"api.example.com\", \"api.example.com:8443\" or \"*.example.com\"", e)
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
