package tray

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/ipc"
)

// TestLastUses: the newest credential or signature served per profile wins; failures,
// changes and entries without a profile do not count; older entries kept from before stay
// when the new batch has none for their profile.
func TestLastUses(t *testing.T) {
	e := func(profile, op, result string, ago time.Duration) ipc.AuditEntry {
		return ipc.AuditEntry{Time: now.Add(-ago), Profile: profile, Op: op, Result: result, Exe: "/usr/bin/authagent", PID: 7}
	}
	old := map[string]ipc.AuditEntry{"kept": e("kept", "credential", "ok", time.Hour), "work": e("work", "credential", "ok", time.Hour)}
	got := LastUses(old, []ipc.AuditEntry{
		e("work", "credential", "ok", 5*time.Minute),
		e("work", "sign", "ok", 2*time.Minute),
		e("work", "credential", "denied", time.Minute),
		e("work", "set_secret", "ok", 30*time.Second),
		e("", "credential", "no_profile", 0),
		e("hub", "id_token", "ok", 10*time.Minute),
		e("hub", "credential", "ok", 20*time.Minute),
	})
	want := map[string]ipc.AuditEntry{
		"kept": e("kept", "credential", "ok", time.Hour),
		"work": e("work", "sign", "ok", 2*time.Minute),
		"hub":  e("hub", "id_token", "ok", 10*time.Minute),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("LastUses (-want +got):\n%s", d)
	}
}

// TestBuildMenuLastUse: a profile's submenu ends with who used it last and when; for
// authagent's own helpers, the program that ran them. Without a use there is no line.
func TestBuildMenuLastUse(t *testing.T) {
	uses := map[string]ipc.AuditEntry{
		"git": {Time: now.Add(-2 * time.Minute), Profile: "git", Op: "credential", Result: "ok", Host: "git.example.com",
			Exe: "/usr/bin/authagent", PID: 42, ParentExe: "/usr/lib/git-core/git", ParentPID: 41},
		"py": {Time: now.Add(-3 * time.Hour), Profile: "py", Op: "credential", Result: "ok", Exe: "/usr/bin/python3", PID: 9},
	}
	m := BuildMenuWithUses([]ipc.Profile{device("git", ipc.StateValid), device("none", ipc.StateValid), device("py", ipc.StateValid)}, uses, now, true)
	last := func(i int) string {
		c := m.Items[i].Children
		return c[len(c)-1].Title
	}
	if got, want := last(0), "Last used by git (via authagent) 2 min ago"; got != want {
		t.Errorf("git's last line %q, want %q", got, want)
	}
	if got, want := last(2), "Last used by python3 3 h ago"; got != want {
		t.Errorf("py's last line %q, want %q", got, want)
	}
	plain := BuildMenu([]ipc.Profile{device("none", ipc.StateValid)}, now, true).Items[0]
	if d := cmp.Diff(plain, m.Items[1]); d != "" {
		t.Errorf("a profile without a use differs from BuildMenu's (-want +got):\n%s", d)
	}
	c := m.Items[0].Children[len(m.Items[0].Children)-1]
	if c.Enabled || c.Action != "" {
		t.Errorf("the last-use line is clickable: %+v", c)
	}
}

// TestTrayShowsLastUse: the tray reads the agent's audit log and puts each profile's last
// use in its submenu, and follows a newer use at the next redraw; an agent without an
// audit log leaves the line out.
func TestTrayShowsLastUse(t *testing.T) {
	a := newFakeAgent(t, device("work", ipc.StateValid), device("hub", ipc.StateValid))
	a.audit = []ipc.AuditEntry{{Time: now.Add(-2 * time.Minute), Profile: "work", Op: "credential", Result: "ok",
		Exe: "/usr/bin/authagent", PID: 42, ParentExe: "/usr/bin/git", ParentPID: 41}}
	a.start()
	r := runTray(t, Options{Client: a.client(), Now: func() time.Time { return now }, Redraw: 10 * time.Millisecond})
	lastOf := func(m Menu, prefix string) string {
		for _, it := range m.Items {
			if strings.HasPrefix(it.Title, prefix+" — ") && len(it.Children) > 0 {
				return it.Children[len(it.Children)-1].Title
			}
		}
		return ""
	}
	m := r.waitMenu(t, "with work's last use", func(m Menu) bool { return lastOf(m, "work") == "Last used by git (via authagent) 2 min ago" })
	if got := lastOf(m, "hub"); strings.HasPrefix(got, "Last used") {
		t.Errorf("hub, never used, shows %q", got)
	}
	a.mu.Lock()
	a.audit = append(a.audit, ipc.AuditEntry{Time: now, Profile: "hub", Op: "sign", Result: "ok", Exe: "/usr/bin/python3", PID: 7})
	a.mu.Unlock()
	r.waitMenu(t, "with hub's last use", func(m Menu) bool { return lastOf(m, "hub") == "Last used by python3 just now" })
}
