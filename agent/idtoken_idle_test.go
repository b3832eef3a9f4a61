package agent

import (
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
)

// idleHour lets an hour pass in 5 s steps with nobody asking (ask: an ID token request
// each step instead) and returns the provider's fetches.
func idleHour(t *testing.T, h *harness, ask bool) int {
	t.Helper()
	for range 720 {
		h.clock.Advance(5 * time.Second)
		h.settle(t)
		if ask {
			h.idToken(t, -1)
		}
	}
	return h.prov.Calls()
}

// The idle floor holds for the ID token's expiry as for the access token's: a profile
// nobody asks for whose ID tokens live less than idleFloor is refreshed on its own no
// more often than one whose access tokens do, whatever drives its refresh. A single
// request for an ID token drives refresh for that ID token's lifetime only.
func TestIDTokenIdleFloor(t *testing.T) {
	plain := newHarness(t, nil, 0.5, tokenFor(20*time.Second))
	plain.settle(t)
	want := idleHour(t, plain, false) // an access token of 20 s: one fetch per idleFloor
	if limit := int(time.Hour/idleFloor) + 1; want > limit {
		t.Fatalf("idle profile with 20 s access tokens: %d fetches in an hour, want at most %d", want, limit)
	}
	for _, tc := range []struct {
		name   string
		cfg    *providers.ProfileConfig
		idLife time.Duration
		asked  bool // one ID token request after the first fetch
	}{
		{"kube_token id_token, ID token 20 s", &providers.ProfileConfig{KubeToken: "id_token"}, 20 * time.Second, false},
		{"kube_token id_token, ID token 3 s", &providers.ProfileConfig{KubeToken: "id_token"}, 3 * time.Second, false},
		{"one request for an ID token of 20 s", nil, 20 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newIDHarness(t, tc.cfg, nil, idTokens(time.Hour, tc.idLife, 0))
			if tc.asked {
				if _, err := h.idToken(t, -1); err != nil {
					t.Fatal(err)
				}
			}
			if got := idleHour(t, h, false); got > want+1 {
				t.Errorf("%d fetches in an idle hour, want at most %d (as with a 20 s access token)", got, want+1)
			}
		})
	}
	// One request, then idle: its ID token's expiry drove one refresh, then the access
	// token's (an hour) drives them again.
	h := newIDHarness(t, nil, nil, idTokens(time.Hour, 20*time.Second, 0))
	if _, err := h.idToken(t, -1); err != nil {
		t.Fatal(err)
	}
	if got := idleHour(t, h, false); got > 3 {
		t.Errorf("one ID token request, then an idle hour: %d fetches, want at most 3", got)
	}
	// In use, the ID token's expiry still drives refresh ahead of it.
	busy := newIDHarness(t, &providers.ProfileConfig{KubeToken: "id_token"}, nil, idTokens(time.Hour, time.Minute, 0))
	if got := idleHour(t, busy, true); got < 60 {
		t.Errorf("ID tokens of a minute asked for every 5 s: %d fetches in an hour, want at least 60 (each refreshed ahead of expiry)", got)
	}
}
