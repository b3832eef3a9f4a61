package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
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

// clientConfigCodes are the OAuth error codes (RFC 6749 §5.2) that say the client's own
// configuration is wrong: no retry helps until the user fixes the profile or the client's
// registration at the server.
var clientConfigCodes = map[string]bool{
	"invalid_client":         true,
	"unauthorized_client":    true,
	"unsupported_grant_type": true,
	"invalid_scope":          true,
}

// ClientConfigError reports whether an OAuth error code from a token endpoint means the
// profile's client configuration is wrong (client id or secret, scopes, allowed grants).
func ClientConfigError(code string) bool { return clientConfigCodes[code] }

// maxRedirects bounds the redirects a GET to an identity provider may follow.
const maxRedirects = 3

// CheckRedirect is the redirect policy of every provider call (http.Client.CheckRedirect).
// A POST is never redirected: following it would send its body, which holds a refresh
// token or a client secret, again, perhaps elsewhere; the error says to configure the URL
// it redirects to. A GET (discovery, keys) may follow up to maxRedirects redirects, each to
// an endpoint CheckEndpoint allows.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	first := via[0]
	target := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	if first.Method != http.MethodGet && first.Method != http.MethodHead {
		return fmt.Errorf("%s redirects to %s; authagent does not follow a redirect that would send a secret again: configure %s instead", first.URL.Host, target, target)
	}
	if len(via) > maxRedirects {
		return fmt.Errorf("%s redirects more than %d times", first.URL.Host, maxRedirects)
	}
	if err := CheckEndpoint(req.URL.String()); err != nil {
		return fmt.Errorf("%s redirects to %w", first.URL.Host, err)
	}
	return nil
}

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
		// Round(0): a wall-clock time, so that time asleep (a suspended laptop) counts.
		return sent.Round(0).Add(time.Duration(secs * float64(time.Second)))
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

// ResponseMetaFrom is the ResponseMeta ctx carries, nil when none (its methods take nil).
func ResponseMetaFrom(ctx context.Context) *ResponseMeta {
	m, _ := ctx.Value(responseMetaKey{}).(*ResponseMeta)
	return m
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
	if fixed, ok := normalizeExpiresIn(body); ok {
		orig.Close()
		body = fixed
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
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
	date, dateErr := http.ParseTime(resp.Header.Get("Date"))
	if dateErr == nil {
		m.serverDate, m.localDate = date, local
	}
	m.retryAfter = 0
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		const limit = 24 * time.Hour // no more is needed to say "much later"; larger overflows
		if secs, err := strconv.ParseUint(ra, 10, 64); err == nil {
			m.retryAfter = time.Duration(min(secs, uint64(limit/time.Second))) * time.Second
		} else if at, err := http.ParseTime(ra); err == nil {
			now := local // without a Date, the date counts from the agent's clock
			if dateErr == nil {
				now = date // both on the server's clock
			}
			if at.After(now) {
				m.retryAfter = min(at.Sub(now), limit)
			}
		}
	}
}

// normalizeExpiresIn rewrites an expires_in that is not a whole number (3600.0, "3599.5",
// 1e3, "") into one, or removes it when it is no number at all: x/oauth2 rejects the whole
// answer otherwise, and with it a rotated refresh token the server already issued. A
// fraction is cut off (the token is taken to expire a little early), and a positive value
// below one second becomes 1. It reports whether the body changed.
func normalizeExpiresIn(body []byte) ([]byte, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return body, false
	}
	raw, ok := obj["expires_in"]
	if !ok {
		return body, false
	}
	v := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if _, err := strconv.ParseInt(v, 10, 64); err == nil || string(raw) == "null" {
		return body, false // x/oauth2 reads these
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && f <= math.MaxInt32 {
		obj["expires_in"] = json.RawMessage(strconv.FormatInt(max(int64(f), 1), 10))
	} else {
		delete(obj, "expires_in")
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return body, false
	}
	return out, true
}

type readCloser struct {
	io.Reader
	io.Closer
}
