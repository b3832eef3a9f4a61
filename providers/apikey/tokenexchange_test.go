package apikey

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/providertest"
)

var teNow = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

// exchangeRequest is what the fake STS saw.
type exchangeRequest struct {
	form           url.Values
	basicID        string
	basicSecret    string
	basic          bool
	subjectToken   string
	requestedType  string
	subjectType    string
	grantType      string
	audience, res  string
	scope          string
	clientIDInForm string
}

// sts is a fake RFC 8693 token endpoint that records each request and answers as answer
// says.
type sts struct {
	srv    *httptest.Server
	mu     sync.Mutex
	seen   []exchangeRequest
	answer func(w http.ResponseWriter, r exchangeRequest)
}

func newSTS(t *testing.T, answer func(w http.ResponseWriter, r exchangeRequest)) *sts {
	t.Helper()
	s := &sts{answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			t.Errorf("not a form POST: %s %v", r.Method, err)
		}
		er := exchangeRequest{form: r.PostForm}
		er.basicID, er.basicSecret, er.basic = r.BasicAuth()
		if er.basic {
			er.basicID, _ = url.QueryUnescape(er.basicID)
			er.basicSecret, _ = url.QueryUnescape(er.basicSecret)
		}
		f := r.PostForm
		er.grantType, er.subjectToken, er.subjectType = f.Get("grant_type"), f.Get("subject_token"), f.Get("subject_token_type")
		er.requestedType, er.audience, er.res, er.scope, er.clientIDInForm = f.Get("requested_token_type"), f.Get("audience"), f.Get("resource"), f.Get("scope"), f.Get("client_id")
		s.mu.Lock()
		s.seen = append(s.seen, er)
		s.mu.Unlock()
		s.answer(w, er)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sts) requests() []exchangeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]exchangeRequest(nil), s.seen...)
}

func (s *sts) url() string { return s.srv.URL + "/oauth/token" }

// issue answers with an access token named after the subject, living life.
func issue(life int) func(http.ResponseWriter, exchangeRequest) {
	return func(w http.ResponseWriter, r exchangeRequest) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token":      "ex-" + r.subjectToken,
			"issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
			"token_type":        "Bearer",
			"expires_in":        life,
		})
	}
}

func oauthError(status int, code, desc string) func(http.ResponseWriter, exchangeRequest) {
	return func(w http.ResponseWriter, r exchangeRequest) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
}

// unsignedJWT is a JWT with only an exp claim: the agent reads exp without verifying.
func unsignedJWT(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":"alice","exp":%d}`, exp.Unix()))) + ".sig"
}

func newExchange(t *testing.T, cfg providers.ProfileConfig, env providers.Env) providers.Provider {
	t.Helper()
	cfg.Provider, cfg.Mode = Name, "token_exchange"
	if env.Name == "" {
		env.Name = "orders"
	}
	if env.Now == nil {
		env.Now = func() time.Time { return teNow }
	}
	p, err := New(&cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTokenExchangeStoredSecret: the stored secret is the subject token; the request is
// RFC 8693's, with the profile's audience, resource, scopes and token types, and a public
// client's client_id in the form (it has no secret to authenticate with: the secret is the
// subject). The token that comes back expires with the subject when that is sooner.
func TestTokenExchangeStoredSecret(t *testing.T) {
	s := newSTS(t, issue(3600))
	subject := unsignedJWT(teNow.Add(30 * time.Minute))
	p := newExchange(t, providers.ProfileConfig{
		TokenURL: s.url(), KeyID: "orders-client", Audience: "https://orders.example.com", Resource: "https://orders.example.com/v1",
		Scopes: []string{"read", "write"}, SubjectTokenType: "id_token",
	}, providers.Env{Secrets: &providertest.Secrets{M: map[string]string{providers.SecretKey: subject}}})
	cred, err := p.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cred.Token != "ex-"+subject || cred.Headers["Authorization"] != "Bearer ex-"+subject {
		t.Errorf("credential %+v", cred)
	}
	if want := teNow.Add(30 * time.Minute).Truncate(time.Second); !cred.ExpiresAt.Equal(want) {
		t.Errorf("expires at %s, want the subject's expiry %s (the server said 1h)", cred.ExpiresAt, want)
	}
	got := s.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	r := got[0]
	for name, pair := range map[string][2]string{
		"grant_type":           {r.grantType, "urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":        {r.subjectToken, subject},
		"subject_token_type":   {r.subjectType, "urn:ietf:params:oauth:token-type:id_token"},
		"requested_token_type": {r.requestedType, "urn:ietf:params:oauth:token-type:access_token"},
		"audience":             {r.audience, "https://orders.example.com"},
		"resource":             {r.res, "https://orders.example.com/v1"},
		"scope":                {r.scope, "read write"},
		"client_id":            {r.clientIDInForm, "orders-client"},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s = %q, want %q", name, pair[0], pair[1])
		}
	}
	if r.basic || r.form.Has("client_secret") {
		t.Errorf("client authentication with a secret, but the only secret is the subject token: basic=%v form=%v", r.basic, r.form)
	}
}

// TestTokenExchangeClientAuth: with another subject, key_id and a stored secret
// authenticate with HTTP Basic; key_id alone is a public client; no key_id sends neither.
func TestTokenExchangeClientAuth(t *testing.T) {
	for _, tt := range []struct {
		name             string
		keyID, secret    string
		basic            bool
		formID           string
		wantBasicID, sec string
	}{
		{name: "confidential", keyID: "orders-client", secret: "s3cr3t/+&=%", basic: true, wantBasicID: "orders-client", sec: "s3cr3t/+&=%"},
		{name: "public", keyID: "orders-client", formID: "orders-client"},
		{name: "none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSTS(t, issue(60))
			secrets := &providertest.Secrets{M: map[string]string{}}
			if tt.secret != "" {
				secrets.M[providers.SecretKey] = tt.secret
			}
			p := newExchange(t, providers.ProfileConfig{TokenURL: s.url(), KeyID: tt.keyID, SubjectProfile: "work"}, providers.Env{
				Secrets: secrets,
				ProfileToken: func(context.Context, string, bool, *url.URL) (string, time.Time, error) {
					return "work-token", time.Time{}, nil
				},
			})
			cred, err := p.Fetch(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if want := teNow.Add(time.Minute); !cred.ExpiresAt.Equal(want) {
				t.Errorf("expires at %s, want %s from expires_in (the subject has no known expiry)", cred.ExpiresAt, want)
			}
			r := s.requests()[0]
			if r.basic != tt.basic || r.basicID != tt.wantBasicID || r.basicSecret != tt.sec || r.clientIDInForm != tt.formID || r.form.Has("client_secret") {
				t.Errorf("basic=%v %q %q, client_id in form %q, form %v", r.basic, r.basicID, r.basicSecret, r.clientIDInForm, r.form)
			}
		})
	}
}

// TestTokenExchangeSubjectProfile: the subject is the other profile's token, asked for
// with the token endpoint as where it goes, its ID token for subject_token_type =
// "id_token"; the result expires with it. A subject profile that needs the user makes
// this one need the user, and Watch tries again, once, when that profile has a new
// token.
func TestTokenExchangeSubjectProfile(t *testing.T) {
	s := newSTS(t, issue(3600))
	type ask struct {
		profile string
		idToken bool
		sendTo  string
	}
	var mu sync.Mutex
	var asked []ask
	subjectErr := providers.Mark(providers.ErrNeedsLogin, errors.New("profile work: run `authagent login work`"))
	var watch func()
	p := newExchange(t, providers.ProfileConfig{TokenURL: s.url(), SubjectProfile: "work", SubjectTokenType: "id_token"}, providers.Env{
		Secrets: &providertest.Secrets{},
		ProfileToken: func(_ context.Context, profile string, idToken bool, sendTo *url.URL) (string, time.Time, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, ask{profile, idToken, sendTo.String()})
			if subjectErr != nil {
				return "", time.Time{}, subjectErr
			}
			return "work-id-token", teNow.Add(10 * time.Minute), nil
		},
		ProfileChanged: func(ctx context.Context, profile string, changed func()) {
			if profile != "work" {
				t.Errorf("ProfileChanged for %q, want work", profile)
			}
			mu.Lock()
			watch = changed
			mu.Unlock()
			<-ctx.Done()
		},
	})
	w, ok := p.(providers.Watcher)
	if !ok {
		t.Fatal("a subject_profile exchange is not a Watcher")
	}
	if _, ok := p.(providers.Pusher); ok {
		t.Error("a subject_profile exchange takes pushed tokens")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var changes int
	go w.Watch(ctx, func() {
		mu.Lock()
		changes++
		mu.Unlock()
	})
	fire := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			f := watch
			mu.Unlock()
			if f != nil {
				f()
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("Watch did not subscribe")
			}
			time.Sleep(time.Millisecond)
		}
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return changes
	}

	fire()
	if n := count(); n != 0 {
		t.Errorf("a change of work made this profile fetch %d times while it waits for nothing", n)
	}
	_, err := p.Fetch(t.Context())
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent login work") || !strings.Contains(err.Error(), "by itself") {
		t.Errorf("subject needs login: %v, want ErrNeedsLogin that says to log in to work", err)
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("%d exchanges without a subject", n)
	}
	mu.Lock()
	subjectErr = nil
	mu.Unlock()
	fire()
	fire()
	if n := count(); n != 1 {
		t.Errorf("work got a token while this profile waited: %d fetches, want 1", n)
	}
	cred, err := p.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cred.Token != "ex-work-id-token" || !cred.ExpiresAt.Equal(teNow.Add(10*time.Minute)) {
		t.Errorf("credential %q expiring %s, want ex-work-id-token expiring with the subject", cred.Token, cred.ExpiresAt)
	}
	mu.Lock()
	for _, a := range asked {
		if a != (ask{"work", true, s.url()}) {
			t.Errorf("asked %+v, want work's ID token for %s", a, s.url())
		}
	}
	mu.Unlock()
}

// TestTokenExchangeRefusals: an expired subject needs the user without a request; a
// refused subject (invalid_grant, invalid_request) and a request the server will never
// grant need the user, with a message that says what to do and holds no secret; a server
// error is retried.
func TestTokenExchangeRefusals(t *testing.T) {
	subject := "opaque-subject-canary-0123456789"
	for _, tt := range []struct {
		name      string
		answer    func(http.ResponseWriter, exchangeRequest)
		secret    string
		needs     bool
		want      string
		noRequest bool
	}{
		{name: "expired JWT subject", secret: unsignedJWT(teNow.Add(-time.Minute)), needs: true, want: "expired at 2030-05-06T07:07:09Z; store a new one with `authagent set-secret orders`", noRequest: true},
		{name: "invalid_grant", answer: oauthError(400, "invalid_grant", "subject "+subject+" revoked"), needs: true, want: "refused the subject token (invalid_grant: subject [redacted] revoked); store a new one with `authagent set-secret orders`"},
		{name: "invalid_request", answer: oauthError(400, "invalid_request", "subject_token is invalid"), needs: true, want: "invalid_request: subject_token is invalid"},
		{name: "invalid_target", answer: oauthError(400, "invalid_target", ""), needs: true, want: `audience "https://orders.example.com"`},
		{name: "invalid_client", answer: oauthError(401, "invalid_client", ""), needs: true, want: `subject_token = "pushed"`},
		{name: "unsupported_grant_type", answer: oauthError(400, "unsupported_grant_type", ""), needs: true, want: "check token_url"},
		{name: "error in a 200", answer: oauthError(200, "invalid_grant", ""), needs: true, want: "invalid_grant"},
		{name: "server error", answer: oauthError(503, "temporarily_unavailable", ""), want: "temporarily_unavailable"},
		{name: "HTML", answer: func(w http.ResponseWriter, _ exchangeRequest) {
			w.WriteHeader(502)
			w.Write([]byte("<html>bad gateway</html>"))
		}, want: "502"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answer := tt.answer
			if answer == nil {
				answer = issue(60)
			}
			s := newSTS(t, answer)
			secret := tt.secret
			if secret == "" {
				secret = subject
			}
			p := newExchange(t, providers.ProfileConfig{TokenURL: s.url(), KeyID: "orders-client", Audience: "https://orders.example.com"},
				providers.Env{Secrets: &providertest.Secrets{M: map[string]string{providers.SecretKey: secret}}})
			_, err := p.Fetch(t.Context())
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			if got := errors.Is(err, providers.ErrNeedsLogin); got != tt.needs {
				t.Errorf("ErrNeedsLogin = %v, want %v: %v", got, tt.needs, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), subject) || strings.Contains(err.Error(), "canary") {
				t.Errorf("error %q holds the subject token", err)
			}
			if n := len(s.requests()); tt.noRequest && n != 0 {
				t.Errorf("%d requests for an expired subject", n)
			}
		})
	}
}

// TestTokenExchangePushed: nothing pushed needs a push; a push is traded at once and kept;
// a push the server refuses is not kept and the one before stays; a kept push that
// expired needs a new push.
func TestTokenExchangePushed(t *testing.T) {
	now := teNow
	refuse := false
	s := newSTS(t, func(w http.ResponseWriter, r exchangeRequest) {
		if refuse {
			oauthError(400, "invalid_request", "subject_token is invalid")(w, r)
			return
		}
		issue(300)(w, r)
	})
	secrets := &providertest.Secrets{M: map[string]string{providers.SecretKey: "client-secret"}}
	p := newExchange(t, providers.ProfileConfig{TokenURL: s.url(), KeyID: "orders-client", SubjectToken: "pushed"},
		providers.Env{Secrets: secrets, Now: func() time.Time { return now }})
	pu, ok := p.(providers.Pusher)
	if !ok {
		t.Fatal("a pushed exchange is not a Pusher")
	}
	if _, ok := p.(providers.Watcher); ok {
		t.Error("a pushed exchange is a Watcher")
	}
	_, err := p.Fetch(t.Context())
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent set-token orders") {
		t.Errorf("nothing pushed: %v", err)
	}

	cred, err := pu.Push(t.Context(), "day-token\n", now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if cred.Token != "ex-day-token" || !cred.ExpiresAt.Equal(now.Add(300*time.Second)) {
		t.Errorf("pushed: %q expiring %s", cred.Token, cred.ExpiresAt)
	}
	if r := s.requests()[0]; !r.basic || r.basicID != "orders-client" || r.basicSecret != "client-secret" {
		t.Errorf("the stored secret is the client secret with a pushed subject: %+v", r)
	}
	refuse = true
	if _, err := pu.Push(t.Context(), "bad-token", time.Time{}); err == nil || !strings.Contains(err.Error(), "not kept") {
		t.Errorf("refused push: %v, want an error saying it was not kept", err)
	}
	refuse = false
	cred, err = p.Fetch(t.Context())
	if err != nil || cred.Token != "ex-day-token" {
		t.Errorf("Fetch after a refused push: %+v, %v; want the token pushed before", cred, err)
	}
	if _, err := pu.Push(t.Context(), "late-token", now.Add(-time.Second)); err == nil {
		t.Error("an expired push was taken")
	}

	now = now.Add(25 * time.Hour)
	n := len(s.requests())
	_, err = p.Fetch(t.Context())
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "authagent set-token orders") {
		t.Errorf("expired pushed subject: %v, want ErrNeedsLogin saying to push a new one", err)
	}
	if len(s.requests()) != n {
		t.Error("an expired pushed subject was sent to the server")
	}
}

// TestTokenExchangeConfig: what can never work is refused with the key named.
func TestTokenExchangeConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  providers.ProfileConfig
		key  string
	}{
		{"no token_url", providers.ProfileConfig{}, "token_url"},
		{"http token_url", providers.ProfileConfig{TokenURL: "http://sts.example.com/token"}, "token_url"},
		{"unknown subject_token", providers.ProfileConfig{TokenURL: "https://sts.example.com", SubjectToken: "file"}, "subject_token"},
		{"both subjects", providers.ProfileConfig{TokenURL: "https://sts.example.com", SubjectToken: "pushed", SubjectProfile: "work"}, "subject_token"},
		{"itself", providers.ProfileConfig{TokenURL: "https://sts.example.com", SubjectProfile: "orders"}, "subject_profile"},
		{"bad profile name", providers.ProfileConfig{TokenURL: "https://sts.example.com", SubjectProfile: "a b"}, "subject_profile"},
		{"bad token type", providers.ProfileConfig{TokenURL: "https://sts.example.com", SubjectTokenType: "access token"}, "subject_token_type"},
		{"bad requested type", providers.ProfileConfig{TokenURL: "https://sts.example.com", RequestedTokenType: "idtoken"}, "requested_token_type"},
		{"headers", providers.ProfileConfig{TokenURL: "https://sts.example.com", Headers: map[string]string{"X": "{secret}"}}, "headers"},
		{"audience with a line break", providers.ProfileConfig{TokenURL: "https://sts.example.com", Audience: "a\nb"}, "audience"},
	} {
		tt.cfg.Provider, tt.cfg.Mode = Name, "token_exchange"
		_, err := New(&tt.cfg, providers.Env{Name: "orders"})
		var ce *providers.ConfigError
		if !errors.As(err, &ce) || ce.Key != tt.key {
			t.Errorf("%s: %v, want a ConfigError for %s", tt.name, err, tt.key)
		}
	}
}
