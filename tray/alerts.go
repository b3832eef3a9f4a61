package tray

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/authagent/authagent/ipc"
)

// alerts decides which desktop notifications to raise and close as profiles change: a
// profile that comes to need a login is announced once, not on every event or retry, and
// a login code stays up until its login ends.
type alerts struct {
	n   Notifier
	log *slog.Logger

	mu sync.Mutex // held across Notifier calls, so they happen in order
	// needsLogin has the profiles whose need of a login was announced, with the
	// notification's id while it is up (0 once closed). Cleared when the profile is valid
	// again or goes away, so the next need is announced again.
	needsLogin map[string]uint32
	codes      map[string]*codeNote // login codes on screen
	pending    map[string]string    // the code of each login the agent last reported pending
}

type codeNote struct {
	id   uint32
	code string
	seen bool // the agent reported this login as pending
}

func newAlerts(n Notifier, log *slog.Logger) *alerts {
	return &alerts{n: n, log: log, needsLogin: map[string]uint32{}, codes: map[string]*codeNote{}, pending: map[string]string{}}
}

// notifyTimeout bounds one call to the notification server.
const notifyTimeout = 5 * time.Second

func (a *alerts) notify(ctx context.Context, n Notification) uint32 {
	if a.n == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	id, err := a.n.Notify(ctx, n)
	if err != nil {
		a.log.Warn("desktop notification failed", "summary", n.Summary, "error", err)
		return 0
	}
	return id
}

func (a *alerts) close(ctx context.Context, id uint32) {
	if a.n == nil || id == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	if err := a.n.CloseNotification(ctx, id); err != nil {
		a.log.Warn("closing a desktop notification failed", "id", id, "error", err)
	}
}

// observe takes in a profile as the agent reports it; nil: it was removed.
func (a *alerts) observe(ctx context.Context, name string, p *ipc.Profile) {
	a.mu.Lock()
	defer a.mu.Unlock()

	if p != nil && p.Login != nil {
		a.pending[name] = loginKey(p.Login)
	} else {
		delete(a.pending, name)
	}
	if c, ok := a.codes[name]; ok {
		switch {
		case p != nil && p.Login != nil && loginKey(p.Login) == c.code:
			c.seen = true
		case p == nil, p.Login != nil, c.seen:
			// Gone, replaced by another login, or this login ended: its code is no use.
			a.close(ctx, c.id)
			delete(a.codes, name)
		}
	}

	id, announced := a.needsLogin[name]
	switch {
	case p == nil || p.State == ipc.StateValid:
		a.close(ctx, id)
		delete(a.needsLogin, name)
	case p.State == ipc.StateNeedsLogin && p.Can(capLogin):
		if !announced {
			a.needsLogin[name] = a.notify(ctx, Notification{
				Summary: "Log in to " + name,
				Body:    name + " needs you to log in: choose Log in under " + name + " in the authagent menu, or run `authagent login " + name + "`.",
			})
		}
	case announced && id != 0:
		// Still announced, so no new notification, but one on screen would be stale.
		a.close(ctx, id)
		a.needsLogin[name] = 0
	}
}

// loginKey tells one login from another: its user code, or a browser login's page.
func loginKey(ch *ipc.LoginChallenge) string {
	if ch.Flow == ipc.FlowBrowser {
		return ch.AuthURL
	}
	return ch.UserCode
}

// loginStarted shows what to do for a login the user started from the menu: the code of
// a device login, or where a browser login goes on.
func (a *alerts) loginStarted(ctx context.Context, name string, ch *ipc.LoginChallenge) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := Notification{
		Summary: "Log in to " + name + ": " + ch.UserCode,
		Body:    "Enter the code " + ch.UserCode + " at " + ch.VerificationURI + " (your browser opens it).",
		Sticky:  true,
	}
	if ch.Flow == ipc.FlowBrowser {
		n.Summary = "Log in to " + name + " in your browser"
		n.Body = "Your browser opens the identity provider's login page; sign in there. If it does not open, choose \"Open the login page\" under " + name + " in the authagent menu."
	}
	if c, ok := a.codes[name]; ok {
		n.Replaces = c.id
	} else if id := a.needsLogin[name]; id != 0 {
		// The code answers the "log in" notification: take its place.
		n.Replaces = id
		a.needsLogin[name] = 0
	}
	id := a.notify(ctx, n)
	// The agent's event for this login may have come in before the login call returned.
	key := loginKey(ch)
	_, pending := a.pending[name]
	a.codes[name] = &codeNote{id: id, code: key, seen: pending && a.pending[name] == key}
}

// loggingOut marks name's coming need of a login as known: the user is logging out.
func (a *alerts) loggingOut(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.needsLogin[name]; !ok {
		a.needsLogin[name] = 0
	}
}

// agentGone closes the codes: a login dies with the agent that ran it.
func (a *alerts) agentGone(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, c := range a.codes {
		a.close(ctx, c.id)
		delete(a.codes, name)
	}
	clear(a.pending)
}

// failed tells the user that something they asked for from the menu went wrong.
func (a *alerts) failed(ctx context.Context, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notify(ctx, Notification{Summary: "authagent", Body: err.Error()})
}
