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

func TestNormalizeExpiresIn(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"access_token":"a","expires_in":3600}`, ""},
		{`{"access_token":"a","expires_in":"3600"}`, ""},
		{`{"access_token":"a","expires_in":null}`, ""},
		{`{"access_token":"a"}`, ""},
		{`{"access_token":"a","expires_in":3600.0}`, "3600"},
		{`{"access_token":"a","expires_in":"3599.5"}`, "3599"},
		{`{"access_token":"a","expires_in":1e3}`, "1000"},
		{`{"access_token":"a","expires_in":0.4}`, "1"},
		{`{"access_token":"a","expires_in":""}`, "gone"},
		{`{"access_token":"a","expires_in":"soon"}`, "gone"},
		{`{"access_token":"a","expires_in":-5.5}`, "gone"},
		{`{"access_token":"a","expires_in":1e300}`, "gone"},
	} {
		out, changed := normalizeExpiresIn([]byte(tc.in))
		if tc.want == "" {
			if changed {
				t.Errorf("%s: changed to %s, want it left alone", tc.in, out)
			}
			continue
		}
		var m map[string]json.RawMessage
		if !changed || json.Unmarshal(out, &m) != nil || string(m["access_token"]) != `"a"` {
			t.Errorf("%s: got %s (changed %v)", tc.in, out, changed)
			continue
		}
		got, ok := m["expires_in"]
		if tc.want == "gone" && ok || tc.want != "gone" && string(got) != tc.want {
			t.Errorf("%s: expires_in %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestRetryAfterBounded(t *testing.T) {
	local := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header map[string]string
		want   time.Duration
	}{
		{map[string]string{"Retry-After": "9223372037"}, 24 * time.Hour},
		{map[string]string{"Retry-After": "18446744073709551615"}, 24 * time.Hour},
		{map[string]string{"Retry-After": "-5"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": local.Add(2 * time.Minute).Format(http.TimeFormat)}, 2 * time.Minute}, // no Date: from the agent's clock
	} {
		resp := &http.Response{Header: http.Header{}}
		for k, v := range tc.header {
			resp.Header.Set(k, v)
		}
		m := &ResponseMeta{}
		m.record(resp, local)
		if got := m.RetryAfter(); got != tc.want {
			t.Errorf("%v: Retry-After %s, want %s", tc.header, got, tc.want)
		}
	}
}

func TestCheckRedirect(t *testing.T) {
	var hits []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hits = append(hits, r.Method+" "+r.URL.Path+" "+string(body))
		switch r.URL.Path {
		case "/token", "/loop":
			http.Redirect(w, r, srv.URL+r.URL.Path, http.StatusTemporaryRedirect)
		case "/keys":
			http.Redirect(w, r, srv.URL+"/keys2", http.StatusFound)
		case "/plain":
			http.Redirect(w, r, "http://example.com/keys", http.StatusFound)
		default:
			io.WriteString(w, "{}")
		}
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &Transport{}, CheckRedirect: CheckRedirect}

	resp, err := hc.Post(srv.URL+"/token", "application/x-www-form-urlencoded", strings.NewReader("refresh_token=rt-secret"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("a POST followed a redirect")
	}
	if !strings.Contains(err.Error(), "configure") || strings.Contains(err.Error(), "rt-secret") {
		t.Errorf("POST redirect: %v; want a message that says what to configure, without the body", err)
	}
	if len(hits) != 1 {
		t.Errorf("the redirected POST reached the server %d times, want 1: %q", len(hits), hits)
	}

	hits = nil
	resp, err = hc.Get(srv.URL + "/keys")
	if err != nil {
		t.Fatalf("GET with one redirect: %v", err)
	}
	resp.Body.Close()
	if _, err := hc.Get(srv.URL + "/loop"); err == nil || len(hits) > 2+maxRedirects+1 {
		t.Errorf("a redirect loop: %v after %d requests; want an error after %d", err, len(hits)-2, maxRedirects+1)
	}
	if _, err := hc.Get(srv.URL + "/plain"); err == nil || !strings.Contains(err.Error(), "use https") {
		t.Errorf("a redirect to plain http elsewhere: %v, want refused", err)
	}
}
