package tests

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// faultIdP is a hand-written OAuth server (device authorization and token endpoints) whose
// answers each test chooses, to inject the faults real identity providers send: tokens
// that arrive expired, errors inside a 200, device answers without expires_in. It is a
// fake only for that; the device flow and refresh rotation themselves are tested against
// tests/idp. It records every request it gets.
type faultIdP struct {
	srv *httptest.Server

	// Set before the agent uses the server; read under mu.
	mu       sync.Mutex
	device   func(base string, n int) map[string]any // the n-th device authorization answer
	token    func(req faultTokenRequest) faultAnswer
	requests []faultTokenRequest
	devices  []time.Time    // when each device authorization request came
	polls    map[string]int // device_code polls so far, by device code
	perGrant map[string]int // token requests so far, by grant_type
}

const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// faultTokenRequest is one request to the token endpoint.
type faultTokenRequest struct {
	At           time.Time
	GrantType    string
	Form         url.Values
	ClientID     string // from HTTP Basic, else the form
	ClientSecret string // from HTTP Basic, else the form
	N            int    // 1-based: the n-th request of this grant type
	Poll         int    // device_code grant: the n-th poll of this device code
}

// faultAnswer is what the token endpoint sends: Body as JSON with Status.
type faultAnswer struct {
	Status int
	Body   any
}

// oauthError is an RFC 6749 §5.2 error answer.
func oauthError(status int, code, description string) faultAnswer {
	body := map[string]string{"error": code}
	if description != "" {
		body["error_description"] = description
	}
	return faultAnswer{Status: status, Body: body}
}

// startFaultIdP starts the server on 127.0.0.1; device nil answers every device
// authorization request with standardDeviceAnswer.
func startFaultIdP(t testing.TB, device func(base string, n int) map[string]any, token func(faultTokenRequest) faultAnswer) *faultIdP {
	t.Helper()
	if device == nil {
		device = standardDeviceAnswer
	}
	f := &faultIdP{device: device, token: token, polls: map[string]int{}, perGrant: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device/code", f.serveDevice)
	mux.HandleFunc("POST /token", f.serveToken)
	mux.HandleFunc("GET /verify", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "this fake approves every code by itself")
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *faultIdP) DeviceAuthURL() string   { return f.srv.URL + "/device/code" }
func (f *faultIdP) TokenURL() string        { return f.srv.URL + "/token" }
func (f *faultIdP) VerificationURI() string { return f.srv.URL + "/verify" }

// standardDeviceAnswer is an RFC 8628 §3.2 answer: code n, valid 10 minutes, poll every
// second.
func standardDeviceAnswer(base string, n int) map[string]any {
	code := fmt.Sprintf("FAKE-%04d", n)
	return map[string]any{
		"device_code":               fmt.Sprintf("dc-%d", n),
		"user_code":                 code,
		"verification_uri":          base + "/verify",
		"verification_uri_complete": base + "/verify?user_code=" + code,
		"expires_in":                600,
		"interval":                  1,
	}
}

func (f *faultIdP) serveDevice(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.devices = append(f.devices, time.Now())
	body := f.device(f.srv.URL, len(f.devices))
	f.mu.Unlock()
	writeJSONAnswer(w, http.StatusOK, body)
}

func (f *faultIdP) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := faultTokenRequest{At: time.Now(), GrantType: r.PostForm.Get("grant_type"), Form: r.PostForm}
	if id, secret, ok := r.BasicAuth(); ok {
		req.ClientID, req.ClientSecret = id, secret
	} else {
		req.ClientID, req.ClientSecret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	f.mu.Lock()
	f.perGrant[req.GrantType]++
	req.N = f.perGrant[req.GrantType]
	if req.GrantType == deviceCodeGrant {
		dc := r.PostForm.Get("device_code")
		f.polls[dc]++
		req.Poll = f.polls[dc]
	}
	f.requests = append(f.requests, req)
	answer := f.token
	f.mu.Unlock()
	a := oauthError(http.StatusBadRequest, "unsupported_grant_type", "")
	if answer != nil {
		a = answer(req)
	}
	writeJSONAnswer(w, a.Status, a.Body)
}

func writeJSONAnswer(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// Requests returns the token requests of grantType so far ("" for all), in order.
func (f *faultIdP) Requests(grantType string) []faultTokenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []faultTokenRequest
	for _, r := range f.requests {
		if grantType == "" || r.GrantType == grantType {
			out = append(out, r)
		}
	}
	return out
}

// Count is how many token requests of grantType came so far.
func (f *faultIdP) Count(grantType string) int { return len(f.Requests(grantType)) }

// DeviceRequests is how many device authorization requests came so far.
func (f *faultIdP) DeviceRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.devices)
}

// unsignedJWT is a JWT (alg none) with the given claims: enough for a client that reads
// exp, which is all the agent does with an access token.
func unsignedJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(claims) + ".c2lnbmF0dXJl"
}

// expiredJWT is an access token whose exp lies age in the past.
func expiredJWT(sub string, age time.Duration) string {
	now := time.Now()
	return unsignedJWT(map[string]any{"sub": sub, "iat": now.Add(-age - time.Hour).Unix(), "exp": now.Add(-age).Unix()})
}

// checkCallBudget fails the test when the provider calls at times (in order) exceed the
// agent's per-profile bucket: at most burst calls at once, one more per every.
func checkCallBudget(t testing.TB, what string, times []time.Time, burst int, every time.Duration) {
	t.Helper()
	for i := range times {
		for j := i; j < len(times); j++ {
			span := times[j].Sub(times[i])
			allowed := burst + int((span+250*time.Millisecond)/every)
			if n := j - i + 1; n > allowed {
				t.Errorf("%s: %d calls within %s (calls %d to %d), more than the bucket allows (%d)", what, n, span.Round(time.Millisecond), i+1, j+1, allowed)
				return
			}
		}
	}
}
