package wire

import (
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits of GET /v1/audit's limit parameter.
const (
	AuditDefaultLimit = 100
	AuditMaxLimit     = 10000
)

// AuditQuery selects audit entries; its zero value asks for the newest AuditDefaultLimit
// of every profile.
type AuditQuery struct {
	Profile string    // one profile's only; "" for all
	Since   time.Time // at or after this time; zero for all
	Limit   int       // at most this many, the newest (1…AuditMaxLimit); 0 for AuditDefaultLimit
}

// Values is q as GET /v1/audit's query parameters.
func (q AuditQuery) Values() url.Values {
	v := url.Values{}
	if q.Profile != "" {
		v.Set("profile", q.Profile)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Printable is s as it may be shown to the user in a terminal or a menu: s itself, or s
// quoted with Go escapes (strconv.QuoteToGraphic) when it holds a rune that is not
// graphic — a control character (ESC, a tab or newline that would break a table row), a
// format character such as U+202E (which turns the text after it around), or invalid
// UTF-8. An audit entry's program names and hosts are the caller's to choose; shown raw
// they could restyle the terminal or forge a row or a menu item.
func Printable(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}
