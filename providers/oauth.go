package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// deadGrantCodes are the OAuth error codes that mean "this grant is dead": no retry brings
// it back, only a new login (or a new secret) does. invalid_grant is RFC 6749 §5.2's; the
// others are what real providers send instead. This is the one list; DeadGrant reads it.
var deadGrantCodes = map[string]bool{
	"invalid_grant":         true, // RFC 6749 §5.2
	"bad_refresh_token":     true, // GitHub apps, sent with HTTP 200
	"invalid_refresh_token": true, // Slack and others
	"expired_refresh_token": true, // some OAuth servers built on Spring
	"refresh_token_expired": true,
	"token_revoked":         true, // Slack
}

// DeadGrant reports whether an OAuth error code from a token endpoint means the grant
// (refresh token, client credentials) is dead and the profile needs a login.
func DeadGrant(code string) bool { return deadGrantCodes[code] }

// ExpiryFrom is when an access token expires on the agent's clock: sent (when the request
// left, on the agent's clock) plus expires_in (RFC 6749 §5.1) where the answer has a
// positive one, else the token's JWT exp claim, else zero (unknown). expiresIn is the raw
// JSON value: a number, or a string of one as some servers send.
func ExpiryFrom(sent time.Time, expiresIn any, accessToken string) time.Time {
	var secs float64
	switch v := expiresIn.(type) {
	case float64:
		secs = v
	case int64:
		secs = float64(v)
	case json.Number:
		secs, _ = v.Float64()
	case string:
		secs, _ = strconv.ParseFloat(v, 64)
	}
	if secs > 0 && secs <= math.MaxInt32 {
		return sent.Add(time.Duration(secs * float64(time.Second)))
	}
	exp, _ := JWTExpiry(accessToken)
	return exp
}

// ResponseMeta records what the last HTTP answer of one operation said about the server's
// clock and load: its Date header (RFC 9110 §6.6.1) and Retry-After (§10.2.3). The agent
// puts one in the context of each fetch or login; Transport fills it in.
type ResponseMeta struct {
	mu         sync.Mutex
	serverDate time.Time     // the last answer's Date; zero when none had one
	localDate  time.Time     // the agent's clock when that answer arrived
	retryAfter time.Duration // the last answer's Retry-After; zero when none
}

type responseMetaKey struct{}

// WithResponseMeta returns ctx carrying a new ResponseMeta, and the ResponseMeta.
func WithResponseMeta(ctx context.Context) (context.Context, *ResponseMeta) {
	m := &ResponseMeta{}
	return context.WithValue(ctx, responseMetaKey{}, m), m
}

// ClockSkew is how far the agent's clock was ahead of the server's (negative: behind) by
// the last answer's Date header. The header has whole seconds, cut off, so the estimate
// takes half a second off; it is good to about ±0.5 s plus the answer's travel time. ok
// is false when no answer had a Date.
func (m *ResponseMeta) ClockSkew() (skew time.Duration, ok bool) {
	if m == nil {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.serverDate.IsZero() {
		return 0, false
	}
	return m.localDate.Sub(m.serverDate) - 500*time.Millisecond, true
}

// RetryAfter is the last answer's Retry-After, zero when it had none.
func (m *ResponseMeta) RetryAfter() time.Duration {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.retryAfter
}

// maxErrorBody caps how much of a 2xx JSON answer Transport reads to look for an error
// object; golang.org/x/oauth2 reads at most as much.
const maxErrorBody = 1 << 20

// Transport is the HTTP transport under every provider's calls to an identity provider.
// It fills in the request context's ResponseMeta, and it turns a 2xx JSON answer that is
// an OAuth error object ({"error": "…"}, RFC 6749 §5.2) into a 400 with the same body:
// some servers (GitHub among them) send errors with 200, and each client library would
// otherwise read them as an empty success.
type Transport struct {
	Base http.RoundTripper // nil: http.DefaultTransport
	Now  func() time.Time  // the agent's clock; nil: time.Now
}

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if m, _ := req.Context().Value(responseMetaKey{}).(*ResponseMeta); m != nil {
		now := time.Now
		if t.Now != nil {
			now = t.Now
		}
		m.record(resp, now())
	}
	if resp.StatusCode/100 != 2 {
		return resp, nil
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/json" && ct != "" {
		return resp, nil
	}
	orig := resp.Body
	body, err := io.ReadAll(io.LimitReader(orig, maxErrorBody))
	if err != nil {
		orig.Close()
		return nil, err
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), orig), orig}
	if len(body) == maxErrorBody {
		return resp, nil // too large to be an error object; the rest follows unread
	}
	var e struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		if code, ok := e.Error.(string); ok && code != "" {
			resp.Status = "400 Bad Request (an error object sent with " + resp.Status + ")"
			resp.StatusCode = http.StatusBadRequest
		}
	}
	return resp, nil
}

func (m *ResponseMeta) record(resp *http.Response, local time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		m.serverDate, m.localDate = d, local
	}
	m.retryAfter = 0
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil && secs > 0 {
			m.retryAfter = time.Duration(secs) * time.Second
		} else if at, err := http.ParseTime(ra); err == nil {
			if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil && at.After(d) {
				m.retryAfter = at.Sub(d) // both on the server's clock
			}
		}
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}
