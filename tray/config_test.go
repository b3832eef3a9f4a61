package tray

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/assets"
	"github.com/authagent/authagent/ipc"
)

const brokenReload = "/home/u/.config/authagent/config.toml:10: profile.work.scopess: unknown key; did you mean \"scopes\"?"

// TestBuildMenuConfigProblems: a failed reload and a change waiting for a restart each get
// a line at the top of the menu; the failed reload turns the icon to error and opens the
// file when clicked.
func TestBuildMenuConfigProblems(t *testing.T) {
	valid := device("work", ipc.StateValid)
	st := &ipc.Status{ConfigError: brokenReload,
		ConfigWarning: `secret_store in /x/config.toml is now "memory", but this agent keeps secrets in "keyring" until it restarts: run ` + "`authagent stop`"}
	m := BuildMenu([]ipc.Profile{valid}, now, true, st)
	want := []Item{
		{Title: "Config not reloaded: " + clip(brokenReload, 60),
			Tooltip: brokenReload + "\nThe agent keeps the config it had. Fix the file, then run `authagent reload`.",
			Action:  ActOpenConfig, Enabled: true},
		{Title: "Restart needed: " + clip(st.ConfigWarning, 60), Tooltip: st.ConfigWarning},
		{Separator: true},
	}
	if diff := cmp.Diff(want, m.Items[:3]); diff != "" {
		t.Errorf("top of the menu (-want +got):\n%s", diff)
	}
	if m.Status != assets.StatusError {
		t.Errorf("icon %s with a failed reload, want error", m.Status)
	}
	if !strings.HasSuffix(m.Tooltip, "config not reloaded") {
		t.Errorf("tooltip %q does not mention the failed reload", m.Tooltip)
	}
	// Without problems, the status changes nothing.
	if diff := cmp.Diff(BuildMenu([]ipc.Profile{valid}, now, true), BuildMenu([]ipc.Profile{valid}, now, true, &ipc.Status{})); diff != "" {
		t.Errorf("a status without problems changed the menu (-without +with):\n%s", diff)
	}
	// A warning alone leaves the icon as the profiles have it.
	if got := BuildMenu([]ipc.Profile{valid}, now, true, &ipc.Status{ConfigWarning: "restart"}).Status; got != assets.StatusOK {
		t.Errorf("icon %s with only a restart warning, want ok", got)
	}
}

// TestTrayShowsConfigError: a failed reload sends no event; the tray finds it in the
// agent's status (on connect and on its redraw tick) and shows it, and drops the line once
// a reload works.
func TestTrayShowsConfigError(t *testing.T) {
	a := newFakeAgent(t, device("work", ipc.StateValid))
	a.setStatus(ipc.Status{Version: "test"})
	a.start()
	r := runTray(t, Options{Client: a.client(), Now: func() time.Time { return now }, Redraw: 10 * time.Millisecond})
	r.waitMenu(t, "with work", hasTitle("work — valid"))

	a.setStatus(ipc.Status{Version: "test", ConfigError: brokenReload})
	m := r.waitMenu(t, "with the config error", hasTitle("Config not reloaded: "))
	if m.Status != assets.StatusError {
		t.Errorf("icon %s, want error", m.Status)
	}
	a.setStatus(ipc.Status{Version: "test"})
	r.waitMenu(t, "without the config error", func(m Menu) bool { return hasTitle("work — valid")(m) && !hasTitle("Config not reloaded")(m) })
}
