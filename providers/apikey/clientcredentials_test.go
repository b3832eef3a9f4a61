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
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/providers"
)

// ccSecret has characters that must be escaped in HTTP Basic auth (RFC 6749 §2.3.1).
const ccSecret = "s3cr3t/+&=%"

var ccNow = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

// tokenEndpoint is a fake token endpoint: it checks the client credentials request and then
// answers as answer says.
func tokenEndpoint(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		id, secret, ok := r.BasicAuth()
		if ok {
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
		}
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "client_credentials" ||
			!ok || id != "svc" || secret != ccSecret {
			t.Errorf("not a client credentials request for svc: %s %v basic=%v %q", r.Method, r.PostForm, ok, id)
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func jsonAnswer(status int, body any) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}
}

func newCC(t *testing.T, cfg providers.ProfileConfig, env providers.Env) providers.Provider {
	t.Helper()
	cfg.Provider, cfg.Mode = Name, "client_credentials"
	if cfg.KeyID == "" {
		cfg.KeyID = "svc"
	}
	if env.Name == "" {
		env.Name = "svc"
	}
	if env.Secrets == nil {
		env.Secrets = secrets{"secret": ccSecret}
	}
	if env.Now == nil {
		env.Now = func() time.Time { return ccNow }
	}
	p, err := New(&cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeJWT is an unsigned JWT with the given exp.
func fakeJWT(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(fmt.Appendf(nil, `{"exp":%d}`, exp.Unix())) + ".sig"
}

func TestClientCredentialsFetch(t *testing.T) {
	jwtExp := time.Date(2030, 5, 6, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		answer  func(http.ResponseWriter, *http.Request)
		want    *providers.Credential
		checkRq func(*testing.T, *http.Request)
	}{
		{
			name:   "expires_in counts from the agent's clock",
			answer: jsonAnswer(200, map[string]any{"access_token": "AT", "token_type": "bearer", "expires_in": 300}),
			want: &providers.Credential{TokenType: "Bearer", Token: "AT", ExpiresAt: ccNow.Add(300 * time.Second),
				Headers: map[string]string{"Authorization": "Bearer AT"}, Metadata: map[string]string{"authorization": "Bearer AT"}},
		},
		{
			name: "form-encoded answer",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
				fmt.Fprint(w, "access_token=AT&token_type=bearer&expires_in=60")
			},
			want: &providers.Credential{TokenType: "Bearer", Token: "AT", ExpiresAt: ccNow.Add(time.Minute),
				Headers: map[string]string{"Authorization": "Bearer AT"}, Metadata: map[string]string{"authorization": "Bearer AT"}},
		},
		{
			name:   "no expires_in: the JWT's exp",
			answer: jsonAnswer(200, map[string]any{"access_token": fakeJWT(jwtExp), "token_type": "Bearer"}),
			want: &providers.Credential{TokenType: "Bearer", Token: fakeJWT(jwtExp), ExpiresAt: jwtExp,
				Headers: map[string]string{"Authorization": "Bearer " + fakeJWT(jwtExp)}, Metadata: map[string]string{"authorization": "Bearer " + fakeJWT(jwtExp)}},
		},
		{
			name:   "neither: no expiry",
			answer: jsonAnswer(200, map[string]any{"access_token": "opaque"}),
			want: &providers.Credential{TokenType: "Bearer", Token: "opaque",
				Headers: map[string]string{"Authorization": "Bearer opaque"}, Metadata: map[string]string{"authorization": "Bearer opaque"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var form url.Values
			srv, _ := tokenEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
				form = r.PostForm
				tc.answer(w, r)
			})
			p := newCC(t, providers.ProfileConfig{TokenURL: srv.URL + "/oauth/token", Scopes: []string{"api", "read"}, Audience: "https://api.example.com"},
				providers.Env{HTTPClient: srv.Client()})
			got, err := p.Fetch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("credential (-want +got):\n%s", diff)
			}
			if form.Get("scope") != "api read" || form.Get("audience") != "https://api.example.com" || form.Has("client_secret") {
				t.Errorf("token request form %v: want scope, audience and no client_secret in the body", form)
			}
		})
	}
}

func TestClientCredentialsErrors(t *testing.T) {
	html := func(status int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			fmt.Fprint(w, "<html><body>Proxy error: upstream sent "+ccSecret+"</body></html>")
		}
	}
	for _, tc := range []struct {
		name       string
		answer     func(http.ResponseWriter, *http.Request)
		needsLogin bool
		want       string // in the message
	}{
		{"invalid_client", jsonAnswer(401, map[string]string{"error": "invalid_client", "error_description": "bad secret " + ccSecret}), true, "authagent set-secret svc"},
		{"unauthorized_client", jsonAnswer(400, map[string]string{"error": "unauthorized_client"}), true, "may not use the client credentials grant"},
		{"invalid_scope", jsonAnswer(400, map[string]string{"error": "invalid_scope"}), true, "fix scopes"},
		{"unsupported_grant_type", jsonAnswer(400, map[string]string{"error": "unsupported_grant_type"}), true, "check token_url"},
		{"5xx", jsonAnswer(503, map[string]string{}), false, "503"},
		{"5xx HTML", html(502), false, "502 Bad Gateway without an OAuth error"},
		{"HTML with 200", html(200), false, "not a token response"},
		{"broken JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token": `)
		}, false, "not a token response"},
		{"no access token", jsonAnswer(200, map[string]any{"token_type": "bearer"}), false, "not a token response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := tokenEndpoint(t, tc.answer)
			p := newCC(t, providers.ProfileConfig{TokenURL: srv.URL}, providers.Env{HTTPClient: srv.Client()})
			_, err := p.Fetch(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, providers.ErrNeedsLogin); got != tc.needsLogin {
				t.Errorf("needs login = %v, want %v: %v", got, tc.needsLogin, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), ccSecret) || strings.Contains(err.Error(), "<html>") {
				t.Errorf("error %q shows the secret or the response body", err)
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		srv, _ := tokenEndpoint(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		hc := srv.Client()
		hc.Timeout = 50 * time.Millisecond
		p := newCC(t, providers.ProfileConfig{TokenURL: srv.URL}, providers.Env{HTTPClient: hc})
		_, err := p.Fetch(context.Background())
		if err == nil || errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "did not answer in time") {
			t.Errorf("got %v, want a retryable timeout", err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		p := newCC(t, providers.ProfileConfig{TokenURL: srv.URL}, providers.Env{HTTPClient: srv.Client()})
		_, err := p.Fetch(context.Background())
		if err == nil || errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "cannot reach the token endpoint") {
			t.Errorf("got %v, want a retryable connection error", err)
		}
	})

	t.Run("no secret stored", func(t *testing.T) {
		srv, calls := tokenEndpoint(t, jsonAnswer(200, map[string]any{"access_token": "AT"}))
		p := newCC(t, providers.ProfileConfig{TokenURL: srv.URL}, providers.Env{HTTPClient: srv.Client(), Secrets: secrets{}})
		_, err := p.Fetch(context.Background())
		if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent set-secret svc") {
			t.Errorf("got %v, want ErrNeedsLogin that says how to store the secret", err)
		}
		if calls.Load() != 0 {
			t.Errorf("%d token requests without a secret", calls.Load())
		}
	})
}
