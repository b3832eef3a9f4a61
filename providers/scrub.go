package providers

import (
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Scrub removes secrets from text that came from outside (an identity provider's
// error_description or status line, a command's stderr) before it goes into an error, a
// log line, last_error or an event: first each of the known values (the profile's own
// secrets: refresh token, client secret, stored or pushed token …), whatever its length,
// then whatever looks like a token. Each is replaced with "[redacted]".
func Scrub(s string, known ...string) string {
	return scrubShaped(scrubKnown(s, known))
}

const redacted = "[redacted]"

var (
	// jwtRE matches JWTs (JWS and JWE compact forms): their header is base64url JSON, so it
	// starts with "eyJ".
	jwtRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)+`) })
	// runRE matches long runs of base64, base64url or hex characters.
	runRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[A-Za-z0-9+/_-]{20,}=*`) })
)

// scrubShaped replaces what looks like a token in s with [redacted]: JWTs, and runs of 20 or more
// base64 or hex characters that mix letters and digits or cases (secrets do; words, paths
// and snake_case names mostly do not), or are all digits.
func scrubShaped(s string) string {
	s = jwtRE().ReplaceAllString(s, redacted)
	return runRE().ReplaceAllStringFunc(s, func(run string) string {
		var upper, lower, digit, other bool
		for _, c := range run {
			switch {
			case 'A' <= c && c <= 'Z':
				upper = true
			case 'a' <= c && c <= 'z':
				lower = true
			case '0' <= c && c <= '9':
				digit = true
			default:
				other = true
			}
		}
		classes := 0
		for _, b := range []bool{upper, lower, digit} {
			if b {
				classes++
			}
		}
		if classes >= 2 || (digit && !upper && !lower && !other) {
			return redacted
		}
		return run
	})
}

// minScrubLen is the length from which a known secret is scrubbed wherever it occurs. A
// shorter one is scrubbed only where it stands alone, with no letter or digit on either
// side: scrubbing "a" everywhere would turn "failed" into "f[redacted]iled".
const minScrubLen = 4

// scrubKnown replaces each of the known values in s with [redacted], longest first, in one
// pass (a replacement is never searched again). Empty values are ignored.
func scrubKnown(s string, known []string) string {
	vals := make([]string, 0, len(known))
	for _, v := range known {
		if v != "" && !slices.Contains(vals, v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return s
	}
	slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
	var b strings.Builder
	i := 0
next:
	for i < len(s) {
		for _, v := range vals {
			if !strings.HasPrefix(s[i:], v) {
				continue
			}
			if len(v) < minScrubLen && (i > 0 && isAlnum(s[i-1]) || i+len(v) < len(s) && isAlnum(s[i+len(v)])) {
				continue
			}
			b.WriteString(redacted)
			i += len(v)
			continue next
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
