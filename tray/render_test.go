package tray

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/ipc"
)

// fakeMenu is a menuBackend that keeps its entries as a tree.
type fakeMenu struct {
	mu      sync.Mutex
	top     []*fakeEntry
	resets  int
	created int
}

type fakeEntry struct {
	m        *fakeMenu
	id       int
	sep      bool
	title    string
	tooltip  string
	disabled bool
	hidden   bool
	children []*fakeEntry
	ch       chan struct{}
}

func (m *fakeMenu) add(parent menuEntry, title, tooltip string) menuEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.created++
	e := &fakeEntry{m: m, id: m.created, title: title, tooltip: tooltip, ch: make(chan struct{})}
	m.attach(parent, e)
	return e
}

func (m *fakeMenu) addSeparator(parent menuEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attach(parent, &fakeEntry{sep: true})
}

func (m *fakeMenu) attach(parent menuEntry, e *fakeEntry) {
	if parent == nil {
		m.top = append(m.top, e)
	} else {
		p := parent.(*fakeEntry)
		p.children = append(p.children, e)
	}
}

func (m *fakeMenu) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resets++
	var closeAll func([]*fakeEntry)
	closeAll = func(es []*fakeEntry) {
		for _, e := range es {
			if !e.sep {
				close(e.ch)
			}
			closeAll(e.children)
		}
	}
	closeAll(m.top)
	m.top = nil
}

func (e *fakeEntry) set(f func()) {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	f()
}
func (e *fakeEntry) SetTitle(s string)       { e.set(func() { e.title = s }) }
func (e *fakeEntry) SetTooltip(s string)     { e.set(func() { e.tooltip = s }) }
func (e *fakeEntry) Enable()                 { e.set(func() { e.disabled = false }) }
func (e *fakeEntry) Disable()                { e.set(func() { e.disabled = true }) }
func (e *fakeEntry) Show()                   { e.set(func() { e.hidden = false }) }
func (e *fakeEntry) Hide()                   { e.set(func() { e.hidden = true }) }
func (e *fakeEntry) clicks() <-chan struct{} { return e.ch }

// visible is what a user sees: "title" per entry, "-" for a separator, "(off)" when
// disabled, children indented.
func (m *fakeMenu) visible() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	var walk func([]*fakeEntry, string)
	walk = func(es []*fakeEntry, indent string) {
		for _, e := range es {
			switch {
			case e.sep:
				out = append(out, indent+"-")
			case e.hidden:
			default:
				s := indent + e.title
				if e.disabled {
					s += " (off)"
				}
				out = append(out, s)
				walk(e.children, indent+"  ")
			}
		}
	}
	walk(m.top, "")
	return out
}

// find returns the visible entry with title, searching submenus too.
func (m *fakeMenu) find(t *testing.T, title string) *fakeEntry {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var found *fakeEntry
	var walk func([]*fakeEntry)
	walk = func(es []*fakeEntry) {
		for _, e := range es {
			if !e.sep && !e.hidden && e.title == title {
				found = e
			}
			if !e.hidden {
				walk(e.children)
			}
		}
	}
	walk(m.top)
	if found == nil {
		t.Fatalf("no visible entry %q", title)
	}
	return found
}

// want is what visible should show for m: the same walk over the model.
func want(m Menu) []string {
	var out []string
	var walk func([]Item, string)
	walk = func(items []Item, indent string) {
		for _, it := range items {
			if it.Separator {
				out = append(out, indent+"-")
				continue
			}
			s := indent + it.Title
			if !it.Enabled {
				s += " (off)"
			}
			out = append(out, s)
			walk(it.Children, indent+"  ")
		}
	}
	walk(m.Items, "")
	return out
}

type clickLog struct {
	mu      sync.Mutex
	actions []string
}

func (c *clickLog) click(a string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.actions = append(c.actions, a)
}

func (c *clickLog) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.actions...)
}

func TestRendererShowsMenusInPlace(t *testing.T) {
	fm := &fakeMenu{}
	r := newRenderer(fm, func(string) {})
	pending := device("work", ipc.StateLoginPending)
	pending.Login = &ipc.LoginChallenge{UserCode: "WDJB-MJHT", VerificationURI: "https://idp.example/device"}
	failed := device("work", ipc.StateError)
	failed.LastError = "refresh work: the IdP answered 503"

	// Each step is rendered after the one before; rebuild says whether it may start over.
	steps := []struct {
		name    string
		menu    Menu
		rebuild bool
	}{
		{"first menu", BuildMenu(nil, now, false), true},
		{"the agent answers", BuildMenu([]ipc.Profile{device("work", ipc.StateNeedsLogin)}, now, true), true},
		{"the agent is gone again", BuildMenu(nil, now, false), false},
		{"and back", BuildMenu([]ipc.Profile{device("work", ipc.StateNeedsLogin)}, now, true), false},
		{"a login waits", BuildMenu([]ipc.Profile{pending}, now, true), false},
		{"logged in", BuildMenu([]ipc.Profile{device("work", ipc.StateValid)}, now, true), false},
		{"an error", BuildMenu([]ipc.Profile{failed}, now, true), false},
		{"two profiles more", BuildMenu([]ipc.Profile{device("a", ipc.StateValid), device("work", ipc.StateValid), device("z", ipc.StateValid)}, now, true), false},
		{"one less", BuildMenu([]ipc.Profile{device("a", ipc.StateValid), device("work", ipc.StateValid)}, now, true), false},
		{"more than the spares", BuildMenu([]ipc.Profile{device("a", ipc.StateValid), device("b", ipc.StateValid), device("c", ipc.StateValid), device("d", ipc.StateValid)}, now, true), true},
		{"no profiles", BuildMenu(nil, now, true), false},
		{"the agent is gone", BuildMenu(nil, now, false), false},
	}
	for _, s := range steps {
		before := fm.resets
		r.render(s.menu.Items)
		if diff := cmp.Diff(want(s.menu), fm.visible()); diff != "" {
			t.Errorf("%s: shown (-want +got):\n%s", s.name, diff)
		}
		if rebuilt := fm.resets > before; rebuilt && !s.rebuild {
			t.Errorf("%s: the menu was built anew; its entries should have stayed", s.name)
		}
	}
}

func TestRendererKeepsEntriesAcrossStateChanges(t *testing.T) {
	fm := &fakeMenu{}
	r := newRenderer(fm, func(string) {})
	r.render(BuildMenu([]ipc.Profile{device("work", ipc.StateNeedsLogin)}, now, true).Items)
	entry := fm.find(t, "work — needs login")
	created := fm.created
	r.render(BuildMenu([]ipc.Profile{device("work", ipc.StateValid)}, now, true).Items)
	if got := fm.find(t, "work — valid"); got != entry {
		t.Errorf("the profile's entry was replaced (id %d → %d)", entry.id, got.id)
	}
	if fm.created != created {
		t.Errorf("%d entries created for a change of state", fm.created-created)
	}
}

func TestRendererClicks(t *testing.T) {
	fm := &fakeMenu{}
	var clicks clickLog
	r := newRenderer(fm, clicks.click)
	r.render(BuildMenu([]ipc.Profile{device("work", ipc.StateNeedsLogin)}, now, true).Items)

	// One at a time: each entry has its own listener.
	for i, title := range []string{"Log in", "Log in to all that need it", "Log out", "Quit"} {
		fm.find(t, title).ch <- struct{}{}
		if title == "Log out" {
			continue // disabled: nothing happens
		}
		waitFor(t, "click on "+title, func() bool { return len(clicks.all()) == min(i+1, 3) })
	}
	time.Sleep(10 * time.Millisecond) // room for a wrong fourth
	if diff := cmp.Diff([]string{"login:work", ActLoginAll, ActQuit}, clicks.all()); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}

	// An entry that shows something else now does that.
	slot := fm.find(t, "work — needs login")
	r.render(BuildMenu([]ipc.Profile{device("other", ipc.StateNeedsLogin)}, now, true).Items)
	if fm.find(t, "other — needs login") != slot {
		t.Fatal("the profile entry was not reused")
	}
	fm.find(t, "Log in").ch <- struct{}{}
	waitFor(t, "the click", func() bool { return len(clicks.all()) == 4 })
	if got := clicks.all()[3]; got != "login:other" {
		t.Errorf("action %q, want login:other", got)
	}
}
