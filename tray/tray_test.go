package tray

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/assets"
	"github.com/authagent/authagent/ipc"
)

// running is a Tray under test with the menus it showed.
type running struct {
	*Tray
	notes  *fakeNotifier
	opener *fakeOpener

	mu    sync.Mutex
	menus []Menu
}

func runTray(t *testing.T, o Options) *running {
	t.Helper()
	r := &running{notes: &fakeNotifier{}, opener: &fakeOpener{}}
	o.Notifier, o.Opener = r.notes, r.opener
	if testing.Verbose() {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	}
	r.Tray = New(o)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, r.show) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(hangBound):
			t.Errorf("Run did not return within %s of its context's end", hangBound)
		}
	})
	return r
}

func (r *running) show(m Menu) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.menus = append(r.menus, m)
}

func (r *running) menu() Menu {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.menus) == 0 {
		return Menu{}
	}
	return r.menus[len(r.menus)-1]
}

// waitMenu waits until the menu shown satisfies cond.
func (r *running) waitMenu(t *testing.T, what string, cond func(Menu) bool) Menu {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for {
		m := r.menu()
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no menu %s within %s; last: %+v", what, hangBound, m)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func titles(m Menu) []string {
	var out []string
	for _, it := range m.Items {
		if !it.Separator {
			out = append(out, it.Title)
		}
	}
	return out
}

func hasTitle(prefix string) func(Menu) bool {
	return func(m Menu) bool {
		return slices.ContainsFunc(m.Items, func(it Item) bool { return strings.HasPrefix(it.Title, prefix) })
	}
}

// hangBound is how long waitMenu and waitFor poll: it only catches a hang, so it is far
// longer than anything takes on a loaded machine with the race detector.
const hangBound = 30 * time.Second

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, hangBound)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTrayFollowsTheAgent(t *testing.T) {
	valid := device("work", ipc.StateValid)
	valid.ExpiresAt = at(41*time.Minute + 30*time.Second)
	a := newFakeAgent(t, valid)
	a.start()
	fixed := func() time.Time { return now }
	r := runTray(t, Options{Client: a.client(), Now: fixed})

	m := r.waitMenu(t, "with work", hasTitle("work — valid, expires in 41 min"))
	if m.Status != assets.StatusOK {
		t.Errorf("status %s, want ok", m.Status)
	}

	a.set(device("ci", ipc.StateNeedsLogin))
	m = r.waitMenu(t, "with ci", hasTitle("ci — needs login"))
	if diff := cmp.Diff([]string{"ci — needs login", "work — valid, expires in 41 min", "Log in to all that need it", "Open configuration", "Quit"}, titles(m)); diff != "" {
		t.Errorf("menu (-want +got):\n%s", diff)
	}
	if m.Status != assets.StatusLogin {
		t.Errorf("status %s, want login", m.Status)
	}
	waitFor(t, "the \"log in\" notification", func() bool { return r.notes.count() == 1 })
	a.set(device("ci", ipc.StateNeedsLogin))
	a.set(device("ci", ipc.StateNeedsLogin))

	a.remove("ci")
	m = r.waitMenu(t, "without ci", func(m Menu) bool { return !hasTitle("ci")(m) })
	if m.Status != assets.StatusOK {
		t.Errorf("status %s, want ok", m.Status)
	}
	if n := r.notes.count(); n != 1 {
		t.Errorf("%d notifications for one need of a login: %+v", n, r.notes.shown)
	}
}

func TestTrayWithoutAgentOffersToStartOne(t *testing.T) {
	a := newFakeAgent(t, device("work", ipc.StateValid))
	started := make(chan struct{}, 1)
	r := runTray(t, Options{
		Client: a.client(),
		// Long waits: only the wake-up after "Start agent" can bring the agent back in time.
		MinBackoff: time.Hour, MaxBackoff: time.Hour,
		StartAgent: func(ctx context.Context) error {
			a.start()
			started <- struct{}{}
			return nil
		},
	})
	m := r.waitMenu(t, "saying no agent is running", hasTitle("No agent is running"))
	if m.Status != assets.StatusNoAgent {
		t.Errorf("status %s, want noagent", m.Status)
	}
	r.Do(t.Context(), ActStartAgent)
	<-started
	r.waitMenu(t, "with work", hasTitle("work — valid"))
}

func TestTrayStartAgentUnwired(t *testing.T) {
	a := newFakeAgent(t)
	r := runTray(t, Options{Client: a.client()})
	r.Do(t.Context(), ActStartAgent)
	if got := r.notes.last().Body; !strings.Contains(got, "authagent start") {
		t.Errorf("notification %q does not say how to start an agent", got)
	}
}

func TestTrayReconnectsWithBackoff(t *testing.T) {
	a := newFakeAgent(t, device("work", ipc.StateValid))
	var mu sync.Mutex
	var waits []time.Duration
	release := make(chan time.Time)
	o := Options{Client: a.client(), MinBackoff: time.Second, MaxBackoff: 8 * time.Second}
	r := &running{notes: &fakeNotifier{}, opener: &fakeOpener{}}
	o.Notifier, o.Opener = r.notes, r.opener
	r.Tray = New(o)
	r.after = func(d time.Duration) <-chan time.Time {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return release
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.Run(ctx, r.show)
	waited := func(n int) []time.Duration {
		t.Helper()
		waitFor(t, "a wait", func() bool { mu.Lock(); defer mu.Unlock(); return len(waits) >= n })
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(waits)
	}

	// No agent: the waits double up to the maximum.
	for i := 1; i <= 5; i++ {
		waited(i)
		if i < 5 {
			release <- time.Time{}
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	if diff := cmp.Diff(want, waited(5)); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}

	// The agent is back: the tray follows it, and after it goes away again the waits
	// start over from the minimum.
	a.start()
	release <- time.Time{}
	r.waitMenu(t, "with work", hasTitle("work — valid"))
	a.stop()
	r.waitMenu(t, "without the agent", hasTitle("No agent is running"))
	if got := waited(6)[5]; got != time.Second {
		t.Errorf("first wait after a connection: %v, want %v", got, time.Second)
	}
}

func TestTrayRestartedAgent(t *testing.T) {
	a := newFakeAgent(t, device("work", ipc.StateValid), device("old", ipc.StateValid))
	a.start()
	r := runTray(t, Options{Client: a.client()})
	r.waitMenu(t, "with old", hasTitle("old — valid"))
	a.stop()
	r.waitMenu(t, "without the agent", hasTitle("No agent is running"))
	a.mu.Lock()
	delete(a.profiles, "old") // the new agent has a new config
	a.mu.Unlock()
	a.start()
	m := r.waitMenu(t, "with work", hasTitle("work — valid"))
	if hasTitle("old")(m) {
		t.Errorf("a profile of the old agent is still shown: %v", titles(m))
	}
}

func TestTrayLogin(t *testing.T) {
	a := newFakeAgent(t, device("work", ipc.StateNeedsLogin))
	a.start()
	r := runTray(t, Options{Client: a.client()})
	r.waitMenu(t, "with work", hasTitle("work — needs login"))
	waitFor(t, "the \"log in\" notification", func() bool { return r.notes.count() == 1 })

	r.Do(t.Context(), ActLogin+"work")
	if diff := cmp.Diff([]string{"login work"}, a.recorded()); diff != "" {
		t.Errorf("agent calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"https://idp.example/device?user_code=WDJB-MJHT"}, r.opener.all()); diff != "" {
		t.Errorf("opened (-want +got):\n%s", diff)
	}
	if got := r.notes.last(); !strings.Contains(got.Summary, "WDJB-MJHT") {
		t.Errorf("notification %+v does not show the code", got)
	}
	m := r.waitMenu(t, "with the code", hasTitle("work — waiting for login, code WDJB-MJHT"))
	if m.Items[0].Children[0].Title != "Code: WDJB-MJHT" {
		t.Errorf("submenu: %+v", m.Items[0].Children)
	}

	// "Log in" again while the login waits joins it: the page opens again.
	a.mu.Lock()
	a.loginErr = &ipc.Error{Status: 409, Code: ipc.CodeLoginPending, Message: "a login is in progress"}
	a.mu.Unlock()
	r.Do(t.Context(), ActLogin+"work")
	if got := r.opener.all(); len(got) != 2 || got[1] != got[0] {
		t.Errorf("opened: %v", got)
	}
	r.Do(t.Context(), ActOpenLogin+"work")
	if got := r.opener.all(); len(got) != 3 {
		t.Errorf("opened: %v", got)
	}

	// The user logs in: the code goes away, from the menu and the screen.
	a.set(device("work", ipc.StateValid))
	r.waitMenu(t, "with work valid", hasTitle("work — valid"))
	waitFor(t, "no notification on screen", func() bool { return len(r.notes.onScreen()) == 0 })
}

// The tray is on the desktop: its Log in says so (display), and a profile whose login
// picks the browser gets its authorization page opened; the menu and the notification say
// the login goes on in the browser, and the page can be opened again.
func TestTrayBrowserLogin(t *testing.T) {
	a := newFakeAgent(t, device("work", ipc.StateNeedsLogin))
	a.browser = true
	a.start()
	r := runTray(t, Options{Client: a.client()})
	r.waitMenu(t, "with work", hasTitle("work — needs login"))
	// The menu is drawn before the event's notification is decided: wait for that too, or
	// the "log in" notification can come after the login's own.
	waitFor(t, "the \"log in\" notification", func() bool { return r.notes.count() == 1 })
	r.Do(t.Context(), ActLogin+"work")
	a.mu.Lock()
	reqs := slices.Clone(a.loginReq)
	a.mu.Unlock()
	if diff := cmp.Diff([]ipc.LoginRequest{{Display: true}}, reqs); diff != "" {
		t.Errorf("login requests (-want +got):\n%s", diff)
	}
	auth := "https://idp.example/authorize?client_id=cli&state=s1"
	if diff := cmp.Diff([]string{auth}, r.opener.all()); diff != "" {
		t.Errorf("opened (-want +got):\n%s", diff)
	}
	if got := r.notes.last(); got.Summary != "Log in to work in your browser" || strings.Contains(got.Body, "code") {
		t.Errorf("notification %+v", got)
	}
	m := r.waitMenu(t, "waiting for the browser", hasTitle("work — waiting for login in the browser"))
	if got := m.Items[0].Children[0]; got.Title != "Open the login page" || got.Action != ActOpenLogin+"work" || !got.Enabled {
		t.Errorf("submenu: %+v", m.Items[0].Children)
	}
	r.Do(t.Context(), ActOpenLogin+"work")
	if got := r.opener.all(); len(got) != 2 || got[1] != auth {
		t.Errorf("opened: %v", got)
	}
	a.set(device("work", ipc.StateValid))
	r.waitMenu(t, "with work valid", hasTitle("work — valid"))
	waitFor(t, "no notification on screen", func() bool { return len(r.notes.onScreen()) == 0 })
}

func TestTrayLoginFails(t *testing.T) {
	a := newFakeAgent(t, device("work", ipc.StateNeedsLogin))
	a.loginErr = &ipc.Error{Status: 502, Code: ipc.CodeProviderError, Message: "device authorization: the IdP answered 500"}
	a.start()
	r := runTray(t, Options{Client: a.client()})
	r.waitMenu(t, "with work", hasTitle("work"))
	// As in TestTrayBrowserLogin: the "log in" notification first, or it can come last.
	waitFor(t, "the \"log in\" notification", func() bool { return r.notes.count() == 1 })
	r.Do(t.Context(), ActLogin+"work")
	if got := r.notes.last().Body; !strings.Contains(got, "the IdP answered 500") {
		t.Errorf("notification %q does not say what went wrong", got)
	}
	if got := r.opener.all(); len(got) != 0 {
		t.Errorf("opened %v for a login that did not start", got)
	}
}

func TestTrayLoginAll(t *testing.T) {
	a := newFakeAgent(t, device("a", ipc.StateNeedsLogin), device("b", ipc.StateValid), device("c", ipc.StateNeedsLogin),
		ipc.Profile{Name: "hub", Provider: "apikey", State: ipc.StateNeedsLogin})
	a.start()
	r := runTray(t, Options{Client: a.client()})
	r.waitMenu(t, "with all", func(m Menu) bool { return len(m.Items) >= 4+5 })
	r.Do(t.Context(), ActLoginAll)
	if diff := cmp.Diff([]string{"login a", "login c"}, a.recorded()); diff != "" {
		t.Errorf("agent calls (-want +got):\n%s", diff)
	}
}

func TestTrayLogoutAndCancel(t *testing.T) {
	a := newFakeAgent(t, device("work", ipc.StateValid))
	a.start()
	r := runTray(t, Options{Client: a.client()})
	r.waitMenu(t, "with work", hasTitle("work"))
	r.Do(t.Context(), ActLogout+"work")
	r.Do(t.Context(), ActCancelLogin+"work")
	if diff := cmp.Diff([]string{"logout work", "cancel-login work"}, a.recorded()); diff != "" {
		t.Errorf("agent calls (-want +got):\n%s", diff)
	}
}

func TestTrayOpenConfiguration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg", "authagent", "config.toml")
	r := runTray(t, Options{Client: newFakeAgent(t).client(), ConfigPath: path})
	r.Do(t.Context(), ActOpenConfig)
	if diff := cmp.Diff([]string{path}, r.opener.all()); diff != "" {
		t.Errorf("opened (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the config file to open was not created: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("created the config file with mode %v", fi.Mode().Perm())
	}
	// An existing file is opened as it is.
	if err := os.WriteFile(path, []byte("secret_store = \"memory\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Do(t.Context(), ActOpenConfig)
	if b, _ := os.ReadFile(path); string(b) != "secret_store = \"memory\"\n" {
		t.Errorf("the config file was changed: %q", b)
	}
}

func TestTrayRedrawsExpiry(t *testing.T) {
	valid := device("work", ipc.StateValid)
	valid.ExpiresAt = at(10 * time.Minute)
	a := newFakeAgent(t, valid)
	a.start()
	var mu sync.Mutex
	clock := now
	r := runTray(t, Options{Client: a.client(), Redraw: time.Millisecond, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}})
	r.waitMenu(t, "with 10 min left", hasTitle("work — valid, expires in 10 min"))
	mu.Lock()
	clock = clock.Add(3 * time.Minute)
	mu.Unlock()
	r.waitMenu(t, "with 7 min left", hasTitle("work — valid, expires in 7 min"))
}
