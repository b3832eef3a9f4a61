package wire

import (
	"net/url"
	"strconv"
	"time"
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
