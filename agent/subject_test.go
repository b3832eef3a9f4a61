package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

// pushedFake serves whatever token was pushed into it; with none it needs the user.
type pushedFake struct {
	name string
	mu   sync.Mutex
	tok  string
	exp  time.Time
}

func (f *pushedFake) Fetch(context.Context) (*providers.Credential, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tok == "" {
		return nil, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("no token yet; run `authagent login %s`", f.name))
	}
	return providers.TokenCredential("Bearer", f.tok, f.exp), nil
}

func (f *pushedFake) Push(_ context.Context, tok string, exp time.Time) (*providers.Credential, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tok, f.exp = tok, exp
	return providers.TokenCredential("Bearer", tok, exp), nil
}

// exchangeEndpoint is a fake token exchange endpoint that trades subject S for "ex-S",
// living an hour, and records the subject tokens it gets.
type exchangeEndpoint struct {
	tokenURL string
	mu       sync.Mutex
	subjects []string // what the endpoint was asked to trade
}

func newExchangeEndpoint(t *testing.T) *exchangeEndpoint {
	t.Helper()
	e := &exchangeEndpoint{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		sub := r.PostForm.Get("subject_token")
		e.mu.Lock()
		e.subjects = append(e.subjects, sub)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "ex-" + sub, "token_type": "Bearer", "expires_in": 3600,
			"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
	}))
	t.Cleanup(srv.Close)
	e.tokenURL = srv.URL + "/token"
	return e
}

func (e *exchangeEndpoint) traded() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.subjects...)
}

// subjectSetup is an agent with profiles of kind "pushed" (pushedFake) and apikey, and a
// fake token exchange endpoint.
type subjectSetup struct {
	*exchangeEndpoint
	a     *Agent
	fakes map[string]*pushedFake
}

func newSubjectSetup(t *testing.T, profiles map[string]*providers.ProfileConfig, tokens map[string]string, exp time.Time) *subjectSetup {
	t.Helper()
	s := &subjectSetup{exchangeEndpoint: newExchangeEndpoint(t), fakes: map[string]*pushedFake{}}
	for name, pc := range profiles {
		if pc.Provider == apikey.Name {
			pc.TokenURL = s.tokenURL
		} else {
			s.fakes[name] = &pushedFake{name: name, tok: tokens[name], exp: exp}
		}
	}
	a, err := New(Options{
		Config: &Config{Path: filepath.Join(t.TempDir(), "config.toml"), Profiles: profiles},
		Store:  NewMemoryStore(),
		Providers: map[string]providers.Factory{
			"pushed": func(_ *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
				return s.fakes[env.Name], nil
			},
			apikey.Name: apikey.New,
		},
		Jitter: func() float64 { return 0.5 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	s.a = a
	return s
}

func exchangeProfile(subject string) *providers.ProfileConfig {
	return &providers.ProfileConfig{Provider: apikey.Name, Mode: "token_exchange", SubjectProfile: subject}
}

// TestSubjectProfile: a token exchange trades the current token of its subject_profile,
// and its token expires no later than that one.
func TestSubjectProfile(t *testing.T) {
	exp := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	s := newSubjectSetup(t, map[string]*providers.ProfileConfig{
		"work":   {Provider: "pushed", Hosts: []string{"127.0.0.1"}},
		"orders": exchangeProfile("work"),
	}, map[string]string{"work": "work-1"}, exp)
	c, err := s.a.Credential(t.Context(), "orders", -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "ex-work-1" || !c.ExpiresAt.Equal(exp) {
		t.Errorf("orders: %q expiring %s; want ex-work-1 expiring with work's token at %s (the exchange said 1h)", c.Token, c.ExpiresAt, exp)
	}
	if got := s.traded(); len(got) != 1 || got[0] != "work-1" {
		t.Errorf("traded %q, want [work-1]", got)
	}
}

// TestSubjectProfileHosts: the subject's token goes to the token endpoint only if its
// hosts allow that host; otherwise the exchange needs the user, and says what to add.
func TestSubjectProfileHosts(t *testing.T) {
	s := newSubjectSetup(t, map[string]*providers.ProfileConfig{
		"work":   {Provider: "pushed", Hosts: []string{"api.example.com"}},
		"orders": exchangeProfile("work"),
	}, map[string]string{"work": "work-1"}, time.Now().Add(time.Hour))
	_, err := s.a.Credential(t.Context(), "orders", -1, nil)
	if !errors.Is(err, ErrNeedsLogin) || !strings.Contains(err.Error(), `add "127.0.0.1" to the hosts of work`) {
		t.Errorf("subject not allowed at the token endpoint: %v; want needs_login naming the host to add", err)
	}
	if got := s.traded(); len(got) != 0 {
		t.Errorf("work's token went to a host it may not go to: %q", got)
	}
}

// TestSubjectProfileCycle: profiles that trade each other's tokens need the user, and the
// message names the cycle; nobody waits on anybody and no token is traded.
func TestSubjectProfileCycle(t *testing.T) {
	profiles := map[string]*providers.ProfileConfig{"a": exchangeProfile("b"), "b": exchangeProfile("c"), "c": exchangeProfile("a")}
	for _, pc := range profiles {
		pc.Hosts = []string{"127.0.0.1"} // each may send its token to the others' token endpoint
	}
	s := newSubjectSetup(t, profiles, nil, time.Time{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := s.a.Credential(ctx, "a", -1, nil)
	if !errors.Is(err, ErrNeedsLogin) || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("a → b → c → a: %v; want needs_login naming the cycle", err)
	}
	for _, name := range []string{"a", "b", "c"} {
		info := waitState(t, s.a, name, StateNeedsLogin)
		if !strings.Contains(info.LastError, "cycle") || !strings.Contains(info.LastError, "→") {
			t.Errorf("profile %s: last_error %q does not name the cycle", name, info.LastError)
		}
	}
	if got := s.traded(); len(got) != 0 {
		t.Errorf("traded %q in a cycle", got)
	}
}

// TestSubjectProfileNeedsLogin: when the subject profile needs a login, so does the
// exchange, which says where to log in; once the subject has a token again, the exchange
// trades it by itself, without a request.
func TestSubjectProfileNeedsLogin(t *testing.T) {
	s := newSubjectSetup(t, map[string]*providers.ProfileConfig{
		"work":   {Provider: "pushed", Hosts: []string{"127.0.0.1"}},
		"orders": exchangeProfile("work"),
	}, nil, time.Time{})
	_, err := s.a.Credential(t.Context(), "orders", -1, nil)
	if !errors.Is(err, ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent login work") {
		t.Fatalf("subject needs login: %v; want needs_login saying to log in to work", err)
	}
	waitState(t, s.a, "orders", StateNeedsLogin)

	if err := s.a.PushToken(t.Context(), "work", "work-2", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitState(t, s.a, "orders", StateValid)
	if got := s.traded(); len(got) != 1 || got[0] != "work-2" {
		t.Errorf("traded %q, want [work-2]", got)
	}
	c, err := s.a.Credential(t.Context(), "orders", -1, nil)
	if err != nil || c.Token != "ex-work-2" {
		t.Errorf("orders after work's login: %+v, %v", c, err)
	}
}
