package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
)

// idProvider is a fakeProvider whose credentials carry ID tokens (an oidc profile).
type idProvider struct {
	*fakeProvider
	why error // what IDTokens says
}

func (p idProvider) IDTokens() error { return p.why }

// newIDHarness is newHarness with an idProvider: profile "p", no jitter.
func newIDHarness(t *testing.T, pc *providers.ProfileConfig, why error, fetch func(c *fakeClock, n int) (*providers.Credential, error)) *harness {
	t.Helper()
	clock := newFakeClock()
	h := &harness{clock: clock, prov: &fakeProvider{clock: clock, fetch: fetch}, store: NewMemoryStore()}
	h.path = filepath.Join(t.TempDir(), "config.toml")
	if pc == nil {
		pc = &providers.ProfileConfig{}
	}
	pc.Provider = "fake"
	a, err := New(Options{
		Config: &Config{Path: h.path, Profiles: map[string]*providers.ProfileConfig{"p": pc}},
		Store:  h.store,
		Providers: map[string]providers.Factory{
			"fake": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) {
				return idProvider{h.prov, why}, nil
			},
		},
		Clock:  clock,
		Jitter: func() float64 { return 0.5 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	h.a = a
	h.settle(t)
	return h
}

// idTokens answers each fetch with a new access token living access and, while n <= renew
// (0: always), a new ID token living idLife; later fetches carry the last ID token, as the
// devicecode provider does when a refresh brings none.
func idTokens(access, idLife time.Duration, renew int) func(c *fakeClock, n int) (*providers.Credential, error) {
	var lastID string
	var lastExp time.Time
	return func(c *fakeClock, n int) (*providers.Credential, error) {
		cred := providers.TokenCredential("Bearer", fmt.Sprint("at", n), c.Now().Add(access))
		if renew == 0 || n <= renew {
			lastID, lastExp = fmt.Sprint("id", n), c.Now().Add(idLife)
		}
		cred.IDToken, cred.IDTokenExpiresAt = lastID, lastExp
		return cred, nil
	}
}

func (h *harness) idToken(t *testing.T, minValid time.Duration) (*CredentialInfo, error) {
	t.Helper()
	return h.a.IDToken(context.Background(), "p", minValid, nil)
}

// The ID token is served as a credential of its own, with its own expiry; for a profile
// that serves ID tokens (kube_token = "id_token"), its expiry drives the proactive refresh
// when it comes before the access token's.
func TestIDTokenDrivesRefresh(t *testing.T) {
	const idLife = 20 * time.Second
	h := newIDHarness(t, &providers.ProfileConfig{KubeToken: "id_token"}, nil, idTokens(time.Hour, idLife, 0))
	start := h.clock.Now()
	c, err := h.idToken(t, -1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "id1" || !c.ExpiresAt.Equal(start.Add(idLife)) || c.Headers["Authorization"] != "Bearer id1" || c.TokenType != "Bearer" {
		t.Fatalf("ID token credential %+v", c)
	}
	info, _ := h.a.Profile("p")
	if info.KubeToken != "id_token" || !slices.Contains(info.Capabilities, "id_token") {
		t.Errorf("profile info: kube_token %q, capabilities %q", info.KubeToken, info.Capabilities)
	}
	// The access token lives an hour; the refresh comes at 75 % of the ID token's life.
	h.clock.Advance(time.Duration(0.75*float64(idLife)) - time.Millisecond)
	h.settle(t)
	if got := h.prov.Calls(); got != 1 {
		t.Fatalf("%d fetches before 75 %% of the ID token's life, want 1", got)
	}
	h.clock.Advance(2 * time.Millisecond)
	h.settle(t)
	if got := h.prov.Calls(); got != 2 {
		t.Fatalf("%d fetches at 75 %% of the ID token's life, want 2", got)
	}
	if c, err := h.idToken(t, -1); err != nil || c.Token != "id2" {
		t.Fatalf("after the refresh: %+v, %v", c, err)
	}
	if c, err := h.a.Credential(context.Background(), "p", -1, nil); err != nil || c.Token != "at2" {
		t.Fatalf("access token after the refresh: %+v, %v", c, err)
	}
}

// A profile that never asked for an ID token refreshes by its access token alone; the
// first request for one brings the refresh forward to the ID token's expiry.
func TestIDTokenFirstRequestReschedules(t *testing.T) {
	const idLife = 20 * time.Second
	h := newIDHarness(t, nil, nil, idTokens(time.Hour, idLife, 0))
	h.clock.Advance(idLife + time.Second)
	h.settle(t)
	if got := h.prov.Calls(); got != 1 {
		t.Fatalf("%d fetches of a profile whose ID token nobody wants, want 1 (the access token lives an hour)", got)
	}
	// The ID token expired: the request refreshes (and the refresh renews it).
	c, err := h.idToken(t, -1)
	if err != nil || c.Token != "id2" {
		t.Fatalf("ID token after its expiry: %+v, %v", c, err)
	}
	h.clock.Advance(time.Second)
	if _, err := h.idToken(t, -1); err != nil { // in use: not idle
		t.Fatal(err)
	}
	h.clock.Advance(time.Duration(0.75*float64(idLife)) - time.Second + time.Millisecond)
	h.settle(t)
	if got := h.prov.Calls(); got != 3 {
		t.Errorf("%d fetches, want 3: once asked for, the ID token's expiry drives the refresh", got)
	}

	// The same in a profile that asks for it before it expires: the planned refresh moves.
	h2 := newIDHarness(t, nil, nil, idTokens(time.Hour, idLife, 0))
	h2.clock.Advance(time.Second)
	if c, err := h2.idToken(t, -1); err != nil || c.Token != "id1" {
		t.Fatalf("fresh ID token: %+v, %v", c, err)
	}
	h2.clock.Advance(time.Duration(0.75*float64(idLife)) - time.Second + time.Millisecond)
	h2.settle(t)
	if got := h2.prov.Calls(); got != 2 {
		t.Errorf("%d fetches at 75 %% of the ID token's life after the first request for it, want 2", got)
	}
}

// An identity provider that sends no new ID token on refresh: the old one is served until
// it expires, requests for it force no refreshes that would not renew it, and then the
// answer is needs_login, and last_error says to log in again. The access token goes on,
// but the profile says needs_login from the moment the ID token expires (an event, with
// nobody asking), so that logging in to every profile that needs it includes this one.
func TestIDTokenNotRenewed(t *testing.T) {
	const idLife = 30 * time.Second
	h := newIDHarness(t, &providers.ProfileConfig{KubeToken: "id_token"}, nil, idTokens(10*time.Second, idLife, 1))
	sub := h.a.Subscribe()
	defer sub.Close()
	if c, err := h.idToken(t, -1); err != nil || c.Token != "id1" { // in use: not idle
		t.Fatalf("first ID token: %+v, %v", c, err)
	}
	// The first refresh (by the access token's expiry, the earlier) brings no new ID token.
	h.clock.Advance(8 * time.Second)
	h.settle(t)
	if got := h.prov.Calls(); got != 2 {
		t.Fatalf("%d fetches at 75 %% of the access token's life, want 2", got)
	}
	h.clock.Advance(refreshFloor + time.Second) // past the floor and the freshest share
	h.settle(t)
	calls := h.prov.Calls()
	for range 20 { // a min_valid the old ID token does not meet forces nothing
		c, err := h.idToken(t, 20*time.Second)
		if err != nil || c.Token != "id1" {
			t.Fatalf("the kept ID token: %+v, %v", c, err)
		}
	}
	if got := h.prov.Calls() - calls; got != 0 {
		t.Errorf("%d refreshes forced for an ID token refreshes do not renew, want 0", got)
	}
	if info, _ := h.a.Profile("p"); info.State != StateValid {
		t.Errorf("profile before the ID token expired: %+v, want valid", info)
	}
	for len(sub.C) > 0 {
		<-sub.C
	}
	// simulate, not Advance: the access token's refreshes on the way must each see the
	// clock they started at, or a jump past them makes their tokens arrive expired.
	simulate(t, h.a, h.clock, idLife)
	var seen *ProfileInfo
	for len(sub.C) > 0 {
		if e := <-sub.C; e.Profile.State == StateNeedsLogin {
			seen = &e.Profile
		}
	}
	if seen == nil || !strings.Contains(seen.LastError, "ID token expired") || !strings.Contains(seen.LastError, "authagent login p") {
		t.Errorf("no needs_login event with last_error about the ID token when it expired, before anyone asked (%+v)", seen)
	}
	if info, _ := h.a.Profile("p"); info.State != StateNeedsLogin || !strings.Contains(info.LastError, "ID token expired") {
		t.Errorf("profile %+v; want needs_login with last_error about the ID token", info)
	}
	_, err := h.idToken(t, -1)
	if !errors.Is(err, ErrNeedsLogin) || !strings.Contains(err.Error(), "sends no new one") || !strings.Contains(err.Error(), "authagent login p") {
		t.Fatalf("expired ID token: %v; want needs_login saying to log in again", err)
	}
	if c, err := h.a.Credential(context.Background(), "p", -1, nil); err != nil || !strings.HasPrefix(c.Token, "at") {
		t.Errorf("the access token: %+v, %v", c, err)
	}
}

// A refresh forced by a request's min_valid renews the ID token, and a burst of such
// requests shares one refresh.
func TestIDTokenForcedRefresh(t *testing.T) {
	const idLife = 20 * time.Second
	h := newIDHarness(t, nil, nil, idTokens(time.Hour, idLife, 0))
	h.clock.Advance(10 * time.Second) // 10 s left, past the freshest share
	for range 5 {
		c, err := h.idToken(t, 15*time.Second)
		if err != nil || c.Token != "id2" {
			t.Fatalf("forced: %+v, %v", c, err)
		}
	}
	if got := h.prov.Calls(); got != 2 {
		t.Errorf("%d fetches for 5 requests that needed a fresher ID token, want 2", got)
	}
}

// A profile that can have no ID token says so (400), and one with no ID token from its
// provider says that only a login fixes it.
func TestIDTokenRefused(t *testing.T) {
	h := newHarness(t, nil, 0.5, tokenFor(time.Hour))
	h.settle(t)
	if _, err := h.a.IDToken(context.Background(), "p", -1, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a kind without ID tokens: %v, want bad request", err)
	}
	why := errors.New("profile p has no issuer, so it has no ID tokens")
	h2 := newIDHarness(t, nil, why, idTokens(time.Hour, time.Hour, 0))
	if _, err := h2.a.IDToken(context.Background(), "p", -1, nil); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "no issuer") {
		t.Errorf("a profile without issuer: %v", err)
	}
	if info, _ := h2.a.Profile("p"); slices.Contains(info.Capabilities, "id_token") {
		t.Errorf("capabilities %q of a profile that can have no ID token", info.Capabilities)
	}
	h3 := newIDHarness(t, nil, nil, func(c *fakeClock, n int) (*providers.Credential, error) {
		cred := providers.TokenCredential("", "at", c.Now().Add(time.Hour))
		cred.IDTokenError = "the identity provider issued no ID token with this login"
		return cred, nil
	})
	_, err := h3.a.IDToken(context.Background(), "p", -1, nil)
	if !errors.Is(err, ErrNeedsLogin) || !strings.Contains(err.Error(), "issued no ID token") {
		t.Errorf("no ID token from the provider: %v", err)
	}
	if got := h3.prov.Calls(); got != 1 {
		t.Errorf("%d fetches, want 1: a refresh would not bring an ID token either", got)
	}
}
