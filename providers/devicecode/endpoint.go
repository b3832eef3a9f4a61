package devicecode

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/authagent/authagent/providers"
)

// errNoEndpoint says that the identity provider has no endpoint for a login flow.
var errNoEndpoint = errors.New("the identity provider has none")

// checkURL allows an endpoint URL (CheckEndpoint: https, or http to a loopback host) only
// as RFC 3986 writes URLs: no space, quote, backtick, bracket outside the host, control or
// non-ASCII character, all of which must be percent-encoded, and no fragment. Such a URL
// goes unchanged into the authorization request, a browser's command line and printed
// instructions; a character that is not escaped could split an argument or a line.
func checkURL(raw string) error {
	if err := checkURIChars(raw); err != nil {
		return err
	}
	if err := providers.CheckEndpoint(raw); err != nil {
		return err
	}
	if u, _ := url.Parse(raw); u.Fragment != "" || u.RawFragment != "" || len(raw) > 0 && raw[len(raw)-1] == '#' {
		return fmt.Errorf("%q has a fragment (#…), which an endpoint URL may not have (RFC 6749 §3.1)", raw)
	}
	return nil
}

// checkURIChars refuses a URL with a character RFC 3986 §2 does not allow unescaped.
func checkURIChars(raw string) error {
	for i := 0; i < len(raw); i++ {
		if !uriChar(raw[i]) {
			return fmt.Errorf("%q is not a well-formed URL: it holds %q at byte %d, which must be percent-encoded (RFC 3986)", clip(raw), raw[i:i+1], i)
		}
	}
	return nil
}

// uriChar reports whether c may appear unescaped in a URI: unreserved, reserved, or the
// % of an escape (RFC 3986 §2.1–2.3).
func uriChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', // unreserved
		':', '/', '?', '#', '[', ']', '@', // gen-delims
		'!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', // sub-delims
		'%':
		return true
	}
	return false
}

// discovered checks an endpoint from the discovery document (what: its name there): nil
// when it can be used, errNoEndpoint when there is none, else why not.
func discovered(what, raw string) error {
	if raw == "" {
		return errNoEndpoint
	}
	if err := checkURL(raw); err != nil {
		return fmt.Errorf("the discovered %s %w", what, err)
	}
	return nil
}
