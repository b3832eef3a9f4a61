package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// FuzzJWTExpiry: no token makes the exp reader panic, and an expiry it reports is after
// the epoch.
func FuzzJWTExpiry(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9.sig")
	f.Add("a.b.c")
	f.Add("opaque-token")
	f.Add("eyJhbGciOiJub25lIn0.eyJleHAiOjFlMzAwfQ.x")
	f.Fuzz(func(t *testing.T, token string) {
		if exp, ok := JWTExpiry(token); ok && !exp.After(time.Unix(0, 0)) {
			t.Fatalf("exp %s reported for %q", exp, token)
		}
	})
}

// FuzzTokenAnswer: whatever a token endpoint answers, Transport passes on a body that is
// the answer, or a well-formed rewrite of it, and what ExpiryFrom makes of expires_in is
// either unknown or in the future.
func FuzzTokenAnswer(f *testing.F) {
	f.Add(200, "application/json", `{"access_token":"a","token_type":"Bearer","expires_in":3600,"refresh_token":"r"}`)
	f.Add(200, "application/json", `{"error":"bad_refresh_token"}`)
	f.Add(200, "application/json", `{"access_token":"a","expires_in":"3599.5"}`)
	f.Add(400, "application/json", `{"error":"invalid_grant","error_description":"x"}`)
	f.Add(200, "text/html", `<html>`)
	f.Add(200, "", `{"expires_in":1e400}`)
	f.Fuzz(func(t *testing.T, status int, contentType, body string) {
		if status < 100 || status > 999 {
			return
		}
		tr := &Transport{Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			if contentType != "" {
				h.Set("Content-Type", contentType)
			}
			return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h,
				Body: io.NopCloser(bytes.NewReader([]byte(body))), Request: r}, nil
		})}
		ctx, _ := WithResponseMeta(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://idp.test/token", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != body {
			var m map[string]any
			if !json.Valid(got) || json.Unmarshal(got, &m) != nil {
				t.Fatalf("rewrote %q into %q, which is not a JSON object", body, got)
			}
		}
		var m map[string]any
		if json.Unmarshal(got, &m) == nil {
			sent := time.Unix(1700000000, 0)
			if exp := ExpiryFrom(sent, m["expires_in"], "opaque"); !exp.IsZero() && !exp.After(sent) {
				t.Fatalf("expires_in %v gave an expiry %s not after the request", m["expires_in"], exp)
			}
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
