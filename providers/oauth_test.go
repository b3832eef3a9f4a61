package providers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTransport(t *testing.T) {
	date := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		wantStatus  int
		wantRetry   time.Duration
	}{
		{name: "token answer passes", status: 200, contentType: "application/json", body: `{"access_token":"a","expires_in":60}`, wantStatus: 200},
		{name: "error object with 200", status: 200, contentType: "application/json; charset=utf-8", body: `{"error":"bad_refresh_token","error_description":"gone"}`, wantStatus: 400},
		{name: "error object without a content type", status: 200, body: `{"error":"invalid_grant"}`, wantStatus: 400},
		{name: "error object with 201", status: 201, contentType: "application/json", body: `{"error":"x"}`, wantStatus: 400},
		{name: "error that is not a string", status: 200, contentType: "application/json", body: `{"error":{"code":1},"access_token":"a"}`, wantStatus: 200},
		{name: "HTML page untouched", status: 200, contentType: "text/html", body: `<html>{"error":"x"}</html>`, wantStatus: 200},
		{name: "form-encoded untouched", status: 200, contentType: "application/x-www-form-urlencoded", body: `error=bad_refresh_token`, wantStatus: 200},
		{name: "503 with Retry-After seconds", status: 503, body: "busy", header: map[string]string{"Retry-After": "120"}, wantStatus: 503, wantRetry: 2 * time.Minute},
		{name: "429 with Retry-After date", status: 429, header: map[string]string{"Retry-After": date.Add(90 * time.Second).Format(http.TimeFormat)}, wantStatus: 429, wantRetry: 90 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", date.Format(http.TimeFormat))
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				} else {
					w.Header()["Content-Type"] = nil
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			local := date.Add(3*time.Minute + 700*time.Millisecond)
			hc := &http.Client{Transport: &Transport{Now: func() time.Time { return local }}}
			ctx, meta := WithResponseMeta(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL, nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || string(body) != tc.body {
				t.Errorf("got %d %q, want %d with the body unchanged", resp.StatusCode, body, tc.wantStatus)
			}
			if skew, ok := meta.ClockSkew(); !ok || skew.Round(time.Second) != 3*time.Minute {
				t.Errorf("clock skew %s, %v; want 3m0s (local 3m0.7s after a Date cut to the second)", skew, ok)
			}
			if got := meta.RetryAfter(); got != tc.wantRetry {
				t.Errorf("Retry-After %s, want %s", got, tc.wantRetry)
			}
		})
	}
}

func TestResponseMetaNil(t *testing.T) {
	var m *ResponseMeta
	if _, ok := m.ClockSkew(); ok || m.RetryAfter() != 0 {
		t.Error("a nil ResponseMeta reports something")
	}
}

func TestExpiryFrom(t *testing.T) {
	sent := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	jwtExp := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	jwt := testJWT(t, jwtExp.Unix())
	for _, tc := range []struct {
		name      string
		expiresIn any
		token     string
		want      time.Time
	}{
		{"number", float64(3600), "opaque", sent.Add(time.Hour)},
		{"fraction", 1.5, "opaque", sent.Add(1500 * time.Millisecond)},
		{"string, as PayPal sends", "60", "opaque", sent.Add(time.Minute)},
		{"json.Number", json.Number("90"), "opaque", sent.Add(90 * time.Second)},
		{"form-encoded int64", int64(30), "opaque", sent.Add(30 * time.Second)},
		{"missing: JWT exp", nil, jwt, jwtExp},
		{"zero: JWT exp", float64(0), jwt, jwtExp},
		{"negative: JWT exp", float64(-5), jwt, jwtExp},
		{"absurd: JWT exp", float64(1e12), jwt, jwtExp},
		{"garbage string: JWT exp", "soon", jwt, jwtExp},
		{"nothing known", nil, "opaque", time.Time{}},
	} {
		if got := ExpiryFrom(sent, tc.expiresIn, tc.token); !got.Equal(tc.want) {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestDeadGrant(t *testing.T) {
	for code, want := range map[string]bool{
		"invalid_grant": true, "bad_refresh_token": true, "invalid_refresh_token": true,
		"invalid_client": false, "slow_down": false, "temporarily_unavailable": false, "": false,
	} {
		if got := DeadGrant(code); got != want {
			t.Errorf("DeadGrant(%q) = %v, want %v", code, got, want)
		}
	}
}

func TestCheckArrival(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	meta := func(skew time.Duration) *ResponseMeta {
		return &ResponseMeta{serverDate: now.Add(-skew), localDate: now}
	}
	for _, tc := range []struct {
		name string
		exp  time.Time
		meta *ResponseMeta
		want []string // empty: accepted
	}{
		{"no expiry", time.Time{}, nil, nil},
		{"an hour left", now.Add(time.Hour), nil, nil},
		{"exactly MinLife left", now.Add(MinLife), nil, nil},
		{"expired two minutes ago", now.Add(-2 * time.Minute), nil, []string{"already expired when it arrived", "2m0s before"}},
		{"one second left", now.Add(time.Second), nil, []string{"expires 1s after it arrived", "too soon"}},
		{"clock ahead", now.Add(-time.Minute), meta(10*time.Minute + 500*time.Millisecond), []string{"10m0s ahead of the server's", "timedatectl"}},
		{"clock behind", now.Add(-time.Minute), meta(-5*time.Minute + 500*time.Millisecond), []string{"5m0s behind the server's"}},
		{"clocks agree", now.Add(-time.Minute), meta(500 * time.Millisecond), []string{"agrees with the server's", "token lifetime"}},
	} {
		err := CheckArrival(tc.exp, now, tc.meta)
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v, want accepted", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted, want refused", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.name, err, w)
			}
		}
	}
}

func testJWT(t *testing.T, exp int64) string {
	t.Helper()
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return seg(`{"alg":"none"}`) + "." + seg(fmt.Sprintf(`{"exp":%d}`, exp)) + ".sig"
}

func TestTransportLargeBodyIntact(t *testing.T) {
	big := `{"keys":"` + strings.Repeat("k", 3<<20) + `"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, big)
	}))
	defer srv.Close()
	resp, err := (&http.Client{Transport: &Transport{}}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || string(got) != big {
		t.Fatalf("read %d bytes (%v), want the %d-byte body intact", len(got), err, len(big))
	}
}
