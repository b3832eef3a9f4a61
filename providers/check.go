package providers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
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
	if u.Scheme == "http" && IsLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%q: use https (http is allowed only for loopback hosts)", raw)
}

// IsLoopback reports whether host (a name or an IP address, without a port; brackets
// around an IPv6 address are allowed) is this machine's loopback: "localhost" in any case,
// 127.0.0.0/8 or ::1. It is the one rule for where plain http may go: tokens and IdP
// calls go over https, or over http to a loopback host.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

// CheckSendable returns a *ConfigError for key when value holds what no HTTP header or gRPC
// metadata value can carry (see HasControl), and nil when it holds none. The message names
// the character, never the value.
func CheckSendable(key, value string) error {
	for i := 0; i < len(value); i++ {
		if !HasControl(value[i : i+1]) {
			continue
		}
		c := value[i]
		what := fmt.Sprintf("the control character U+%04X", c)
		switch c {
		case '\r', '\n':
			what = "a line break"
		case 0:
			what = "a NUL byte"
		}
		return &ConfigError{Key: key, Message: "contains " + what + ", which can never be sent; remove it"}
	}
	return nil
}

// ExplainTransport words a failure to reach an endpoint (who: "the identity provider",
// "the token endpoint"): a timeout, a refused connection, a context deadline. It reports
// false for any other error.
func ExplainTransport(doing, who string, err error) (error, bool) {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("%s: %s at %s did not answer in time; will retry", doing, who, HostOf(ue.URL)), true
		}
		return fmt.Errorf("%s: cannot reach %s at %s: %v", doing, who, HostOf(ue.URL), ue.Err), true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %s did not answer in time; will retry", doing, who), true
	}
	return nil, false
}

// HostOf is the host of a URL, for messages.
func HostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return "?"
}
