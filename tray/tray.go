package tray

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/login"
	"github.com/authagent/authagent/opener"
)

// Opener opens a URL in the browser, or a file in its application; opener.Browser is the
// real one.
type Opener interface {
	Open(ctx context.Context, target string) error
}

// Options wire a Tray. Client is required; the rest have working defaults.
type Options struct {
	Client   *ipc.Client
	Notifier Notifier // nil: no desktop notifications
	Opener   Opener   // nil: opener.Browser ($BROWSER for URLs, then the desktop's handler)

	// StartAgent starts an agent in the background and returns once it answers; nil
	// leaves "Start agent" to say how to start one.
	StartAgent func(ctx context.Context) error
	ConfigPath string // what "Open configuration" opens

	Log *slog.Logger // nil: discard

	// Reconnect waits MinBackoff after the agent went away, doubling up to MaxBackoff
	// while it stays away. Defaults: 1 s and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// Redraw is how often the menu is redrawn so "expires in" stays true. Default: 30 s.
	Redraw time.Duration
	Now    func() time.Time // default: time.Now
}

// Tray follows the agent and runs the menu's actions. Create it with New.
type Tray struct {
	o      Options
	alerts *alerts
	wake   chan struct{} // reconnect now: an agent was just started
	after  func(time.Duration) <-chan time.Time

	mu       sync.Mutex
	up       bool
	profiles map[string]ipc.Profile
	status   *ipc.Status               // the agent's, for its config_error and config_warning; nil when unknown
	lastUse  map[string]ipc.AuditEntry // each profile's last use, from the audit log (LastUses)
	show     func(Menu)                // called with mu held, so menus arrive in order
}

// New returns a Tray; nothing happens until Run.
func New(o Options) *Tray {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Opener == nil {
		o.Opener = opener.Browser{}
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.Redraw <= 0 {
		o.Redraw = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Tray{
		o:        o,
		alerts:   newAlerts(o.Notifier, o.Log),
		wake:     make(chan struct{}, 1),
		after:    time.After,
		profiles: map[string]ipc.Profile{},
	}
}

// Run follows the agent's events until ctx ends, handing show a new Menu on every change.
// When the agent goes away it shows that, and reconnects with backoff.
func (t *Tray) Run(ctx context.Context, show func(Menu)) error {
	t.mu.Lock()
	t.show = show
	t.mu.Unlock()
	go t.redraw(ctx)

	backoff := t.o.MinBackoff
	for {
		connected, err := t.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = t.o.MinBackoff
		}
		t.agentGone(ctx)
		switch {
		case errors.Is(err, ipc.ErrNoAgent):
			t.o.Log.Debug("no agent answers", "retry_in", backoff)
		default:
			t.o.Log.Info("lost the agent", "error", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.wake:
		case <-t.after(backoff):
			backoff = min(2*backoff, t.o.MaxBackoff)
		}
	}
}

// follow subscribes to the agent's events and applies them until the stream ends. It
// reports whether it got through to the agent at all.
func (t *Tray) follow(ctx context.Context) (connected bool, err error) {
	w, err := t.o.Client.Watch(ctx, true)
	if err != nil {
		return false, err
	}
	defer w.Close()
	t.o.Log.Info("following the agent")
	t.mu.Lock()
	t.up = true
	clear(t.profiles) // the initial events list every profile there is
	t.render()
	t.mu.Unlock()
	t.refreshStatus(ctx)
	for {
		ev, err := w.Next()
		if err != nil {
			return true, err
		}
		t.apply(ctx, ev)
		if ev.Type == "added" || ev.Type == "removed" {
			t.refreshStatus(ctx) // a reload may have ended an error (or a change hit a new one)
		}
	}
}

// refreshStatus asks the agent for its status, for what it says of its config file. A
// failed reload changes no profile and sends no event: redraw asks too, now and then.
func (t *Tray) refreshStatus(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t.refreshUses(ctx)
	st, err := t.o.Client.Status(ctx)
	if err != nil {
		t.o.Log.Debug("cannot read the agent's status", "error", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.up {
		return
	}
	changed := t.status == nil || t.status.ConfigError != st.ConfigError || t.status.ConfigWarning != st.ConfigWarning
	t.status = st
	if changed {
		t.render()
	}
}

// refreshUses reads the newest entries of the agent's audit log for each profile's last
// use; it runs with refreshStatus (at connect, on added and removed profiles, and every
// Redraw), so the line is at most one redraw old. An agent without an audit log leaves the
// lines out.
func (t *Tray) refreshUses(ctx context.Context) {
	entries, err := t.o.Client.Audit(ctx, ipc.AuditQuery{Limit: 1000})
	if err != nil {
		t.o.Log.Debug("cannot read the agent's audit log", "error", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.up {
		return
	}
	uses := LastUses(maps.Clone(t.lastUse), entries)
	if !maps.Equal(uses, t.lastUse) {
		t.lastUse = uses
		t.render()
	}
}

// apply takes in one event: the menu follows, and so do the notifications.
func (t *Tray) apply(ctx context.Context, ev ipc.Event) {
	p := ev.Profile
	t.mu.Lock()
	if ev.Type == "removed" {
		delete(t.profiles, p.Name)
	} else {
		t.profiles[p.Name] = p
	}
	t.render()
	t.mu.Unlock()
	if ev.Type == "removed" {
		t.alerts.observe(ctx, p.Name, nil)
	} else {
		t.alerts.observe(ctx, p.Name, &p)
	}
}

func (t *Tray) agentGone(ctx context.Context) {
	t.mu.Lock()
	t.up = false
	t.status = nil
	t.lastUse = nil
	clear(t.profiles)
	t.render()
	t.mu.Unlock()
	t.alerts.agentGone(ctx)
}

// redraw shows the menu again now and then: "expires in 41 min" is true for a minute.
func (t *Tray) redraw(ctx context.Context) {
	tick := time.NewTicker(t.o.Redraw)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.mu.Lock()
			t.render()
			up := t.up
			t.mu.Unlock()
			if up {
				t.refreshStatus(ctx)
			}
		}
	}
}

// render shows the menu for the current state; t.mu must be held.
func (t *Tray) render() {
	if t.show != nil {
		t.show(BuildMenuWithUses(slices.Collect(maps.Values(t.profiles)), t.lastUse, t.o.Now(), t.up, t.status))
	}
}

func (t *Tray) profile(name string) (ipc.Profile, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.profiles[name]
	return p, ok
}

// Do runs a menu action (an Item's Action); it returns when the action is done. Quit is
// the caller's business: Do ignores it.
func (t *Tray) Do(ctx context.Context, action string) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t.o.Log.Debug("menu action", "action", action)
	// A profile's actions are a prefix and the profile's name.
	kind, name := action, ""
	if i := strings.IndexByte(action, ':'); i >= 0 {
		kind, name = action[:i+1], action[i+1:]
	}
	var err error
	switch kind {
	case ActLogin:
		err = t.login(ctx, name)
	case ActOpenLogin:
		err = t.openLogin(ctx, name)
	case ActCancelLogin:
		err = t.o.Client.CancelLogin(ctx, name)
	case ActLogout:
		t.alerts.loggingOut(name) // the user knows: no "log in" notification for this
		err = t.o.Client.Logout(ctx, name)
	case ActLoginAll:
		err = t.loginAll(ctx)
	case ActOpenConfig:
		err = t.openConfig(ctx)
	case ActStartAgent:
		err = t.startAgent(ctx)
	case ActQuit:
	default:
		t.o.Log.Warn("unknown menu action", "action", action)
	}
	if err != nil {
		t.o.Log.Error("menu action failed", "action", action, "error", err)
		t.alerts.failed(ctx, err)
	}
}

// login starts a login in the agent, or joins the one that waits, and shows the user what
// to do: the browser on the login page (the device flow's verification page, with the
// code in a notification, or the browser flow's authorization page). The tray is on the
// desktop, so the profile's login = "auto" takes the browser flow.
func (t *Tray) login(ctx context.Context, name string) error {
	l := &login.Login{Client: t.o.Client, Opener: t.o.Opener, UI: &loginUI{t: t, ctx: ctx}}
	if err := l.Do(ctx, login.Input{Profile: name, Display: true}); err != nil {
		return fmt.Errorf("log in to %s: %w", name, err)
	}
	return nil
}

// loginUI shows a login on the desktop: the code in a notification that stays up until
// the login ends.
type loginUI struct {
	t   *Tray
	ctx context.Context
}

func (u *loginUI) Challenge(name string, ch *ipc.LoginChallenge, joined, opening bool) {
	u.t.alerts.loginStarted(u.ctx, name, ch)
}

func (u *loginUI) OpenFailed(name string, ch *ipc.LoginChallenge, err error) {
	u.t.o.Log.Error("menu action failed", "action", ActLogin+name, "error", err)
	u.t.alerts.failed(u.ctx, err)
}

func (u *loginUI) Waiting(string, *ipc.LoginChallenge) {}

func (t *Tray) loginAll(ctx context.Context) error {
	t.mu.Lock()
	var names []string
	for _, p := range t.profiles {
		if p.Can(capLogin) && p.State == ipc.StateNeedsLogin {
			names = append(names, p.Name)
		}
	}
	t.mu.Unlock()
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		errs = append(errs, t.login(ctx, name))
	}
	return errors.Join(errs...)
}

func (t *Tray) openLogin(ctx context.Context, name string) error {
	p, ok := t.profile(name)
	if !ok || p.Login == nil {
		return fmt.Errorf("no login of %s waits for you; choose Log in", name)
	}
	return t.o.Opener.Open(ctx, login.Page(p.Login))
}

// openConfig opens the config file in the user's editor, creating an empty one first so
// there is something to open.
func (t *Tray) openConfig(ctx context.Context) error {
	path := t.o.ConfigPath
	if path == "" {
		return errors.New("no config path: set AUTHAGENT_CONFIG or XDG_CONFIG_HOME")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.WriteString("# authagent configuration: profiles, hosts and scopes; never secrets.\n# `authagent add --help` describes the keys.\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return t.o.Opener.Open(ctx, path)
}

func (t *Tray) startAgent(ctx context.Context) error {
	if t.o.StartAgent == nil {
		return errors.New("start an agent with `eval \"$(authagent start)\"` or `systemctl --user start authagent.socket`")
	}
	if err := t.o.StartAgent(ctx); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return nil
}
