package tray

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/ipc"
)

func pendingProfile(name, code string) *ipc.Profile {
	p := device(name, ipc.StateLoginPending)
	p.Login = &ipc.LoginChallenge{UserCode: code, VerificationURI: "https://idp.example/device"}
	return &p
}

func state(name, s string) *ipc.Profile {
	p := device(name, s)
	return &p
}

func TestNeedsLoginIsAnnouncedOnce(t *testing.T) {
	tests := []struct {
		name       string
		states     []string // the profile's states, event after event; "" removes it
		wantShown  int
		wantScreen []string
	}{
		{"repeated events", []string{ipc.StateNeedsLogin, ipc.StateNeedsLogin, ipc.StateNeedsLogin}, 1, []string{"Log in to work"}},
		{"retries in between", []string{ipc.StateNeedsLogin, ipc.StateRefreshing, ipc.StateError, ipc.StateNeedsLogin}, 1, nil},
		{"a new need after a good login", []string{ipc.StateNeedsLogin, ipc.StateValid, ipc.StateNeedsLogin}, 2, []string{"Log in to work"}},
		{"gone and back", []string{ipc.StateNeedsLogin, "", ipc.StateNeedsLogin}, 2, []string{"Log in to work"}},
		{"never needed", []string{ipc.StateExpired, ipc.StateRefreshing, ipc.StateValid}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &fakeNotifier{}
			a := newAlerts(n, slog.New(slog.DiscardHandler))
			for _, s := range tc.states {
				if s == "" {
					a.observe(t.Context(), "work", nil)
				} else {
					a.observe(t.Context(), "work", state("work", s))
				}
			}
			if got := n.count(); got != tc.wantShown {
				t.Errorf("%d notifications, want %d: %+v", got, tc.wantShown, n.shown)
			}
			if diff := cmp.Diff(tc.wantScreen, n.onScreen()); diff != "" {
				t.Errorf("on screen (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNeedsLoginOnlyForDeviceLogins(t *testing.T) {
	n := &fakeNotifier{}
	a := newAlerts(n, slog.New(slog.DiscardHandler))
	a.observe(t.Context(), "hub", &ipc.Profile{Name: "hub", Provider: "apikey", State: ipc.StateNeedsLogin})
	if n.count() != 0 {
		t.Errorf("an apikey profile without its secret raised %+v; no login helps it", n.shown)
	}
}

func TestLoginCodeShownUntilTheLoginEnds(t *testing.T) {
	ctx := t.Context()
	n := &fakeNotifier{}
	a := newAlerts(n, slog.New(slog.DiscardHandler))
	a.observe(ctx, "work", state("work", ipc.StateNeedsLogin))
	ch := pendingProfile("work", "WDJB-MJHT").Login

	a.loginStarted(ctx, "work", ch)
	got := n.last()
	if !strings.Contains(got.Summary+got.Body, "WDJB-MJHT") || !strings.Contains(got.Body, "https://idp.example/device") {
		t.Errorf("code notification %+v lacks the code or the page", got)
	}
	if !got.Sticky {
		t.Error("the code notification may expire before the user typed the code")
	}
	if diff := cmp.Diff([]string{"Log in to work: WDJB-MJHT"}, n.onScreen()); diff != "" {
		t.Errorf("the code takes the place of the \"log in\" notification (-want +got):\n%s", diff)
	}

	// An event from before the login started says nothing about it.
	a.observe(ctx, "work", state("work", ipc.StateNeedsLogin))
	a.observe(ctx, "work", pendingProfile("work", "WDJB-MJHT"))
	if len(n.onScreen()) != 1 {
		t.Fatalf("while the login waits: %v", n.onScreen())
	}
	a.observe(ctx, "work", state("work", ipc.StateValid))
	if s := n.onScreen(); len(s) != 0 {
		t.Errorf("after the login: %v still on screen", s)
	}
	if n.count() != 2 {
		t.Errorf("%d notifications, want the \"log in\" one and the code: %+v", n.count(), n.shown)
	}
}

// The agent's event for a login may come in before the tray's login call returns.
func TestLoginCodeClosedWhenTheEventCameFirst(t *testing.T) {
	ctx := t.Context()
	n := &fakeNotifier{}
	a := newAlerts(n, slog.New(slog.DiscardHandler))
	p := pendingProfile("work", "WDJB-MJHT")
	a.observe(ctx, "work", p)
	a.loginStarted(ctx, "work", p.Login)
	a.observe(ctx, "work", state("work", ipc.StateNeedsLogin)) // the code expired unused
	if diff := cmp.Diff([]string{"Log in to work"}, n.onScreen()); diff != "" {
		t.Errorf("after the login ended, the code is gone and a login is asked for (-want +got):\n%s", diff)
	}
}

func TestLoginCodeClosedWhenReplacedRemovedOrAgentGone(t *testing.T) {
	ctx := t.Context()
	for _, end := range []struct {
		name string
		do   func(a *alerts)
	}{
		{"another login", func(a *alerts) { a.observe(ctx, "work", pendingProfile("work", "OTHR-CODE")) }},
		{"profile removed", func(a *alerts) { a.observe(ctx, "work", nil) }},
		{"agent gone", func(a *alerts) { a.agentGone(ctx) }},
	} {
		t.Run(end.name, func(t *testing.T) {
			n := &fakeNotifier{}
			a := newAlerts(n, slog.New(slog.DiscardHandler))
			p := pendingProfile("work", "WDJB-MJHT")
			a.loginStarted(ctx, "work", p.Login)
			end.do(a)
			if s := n.onScreen(); len(s) != 0 {
				t.Errorf("%v still on screen", s)
			}
		})
	}
}

func TestAlertsWithoutANotifier(t *testing.T) {
	a := newAlerts(nil, slog.New(slog.DiscardHandler))
	a.observe(t.Context(), "work", state("work", ipc.StateNeedsLogin))
	a.loginStarted(t.Context(), "work", pendingProfile("work", "WDJB-MJHT").Login)
	a.observe(t.Context(), "work", state("work", ipc.StateValid))
	a.failed(t.Context(), errTest)
}

func TestLogoutFromTheMenuIsNotAnnounced(t *testing.T) {
	n := &fakeNotifier{}
	a := newAlerts(n, slog.New(slog.DiscardHandler))
	a.observe(t.Context(), "work", state("work", ipc.StateValid))
	a.loggingOut("work")
	a.observe(t.Context(), "work", state("work", ipc.StateNeedsLogin))
	if n.count() != 0 {
		t.Errorf("logging out raised %+v", n.shown)
	}
	// Logged in again, a later need is news.
	a.observe(t.Context(), "work", state("work", ipc.StateValid))
	a.observe(t.Context(), "work", state("work", ipc.StateNeedsLogin))
	if n.count() != 1 {
		t.Errorf("%d notifications after a later need, want 1", n.count())
	}
}
