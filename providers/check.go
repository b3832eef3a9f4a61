package providers

import (
	"fmt"
	"net"
	"net/url"
)

// CheckEndpoint allows an IdP or token endpoint URL on https, and on http only for a
// loopback host.
func CheckEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	if u.Scheme == "http" {
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("%q: use https (http is allowed only for loopback hosts)", raw)
}

// HasControl reports whether s holds an ASCII control character other than tab: such a
// value in a header would inject more headers.
func HasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}
