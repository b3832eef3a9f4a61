package tray

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/assets"
	"github.com/authagent/authagent/ipc"
)

var now = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time {
	t := now.Add(d)
	return &t
}

func device(name, state string) ipc.Profile {
	return ipc.Profile{Name: name, Provider: "devicecode", State: state, Hosts: []string{"api.example.com"},
		Capabilities: []string{capLogin, capLogout}}
}

// The tail every menu ends with while an agent answers.
func tail(loginAll Item) []Item {
	return []Item{
		{Separator: true},
		loginAll,
		{Title: "Open configuration", Tooltip: "Edit config.toml, then run `authagent reload`", Action: ActOpenConfig, Enabled: true},
		{Separator: true},
		{Title: "Quit", Tooltip: "Close the tray icon; the agent keeps running", Action: ActQuit, Enabled: true},
	}
}

func TestBuildMenuWholeMenus(t *testing.T) {
	valid := device("work", ipc.StateValid)
	valid.ExpiresAt = at(41*time.Minute + 30*time.Second)
	pending := device("work", ipc.StateLoginPending)
	pending.Login = &ipc.LoginChallenge{UserCode: "WDJB-MJHT", VerificationURI: "https://idp.example/device",
		VerificationURIComplete: "https://idp.example/device?user_code=WDJB-MJHT"}

	noneNeedIt := Item{Title: "Log in to all that need it", Tooltip: "No profile needs a login", Action: ActLoginAll}
	hosts := Item{Title: "Hosts: api.example.com", Tooltip: "Where this profile's token may be sent"}
	logout := Item{Title: "Log out", Tooltip: "Revoke the login at the identity provider and forget it", Action: "logout:work", Enabled: true}

	tests := []struct {
		name    string
		ps      []ipc.Profile
		agentUp bool
		want    Menu
	}{{
		name: "no agent",
		want: Menu{Status: assets.StatusNoAgent, Tooltip: "authagent: no agent is running", Items: []Item{
			{Title: "No agent is running", Tooltip: "Nothing answers on the agent's socket"},
			{Title: "Start agent", Tooltip: "Run `authagent start`", Action: ActStartAgent, Enabled: true},
			{Separator: true},
			{Title: "Log in to all that need it", Tooltip: "No agent is running", Action: ActLoginAll},
			{Title: "Open configuration", Tooltip: "Edit config.toml, then run `authagent reload`", Action: ActOpenConfig, Enabled: true},
			{Separator: true},
			{Title: "Quit", Tooltip: "Close the tray icon; the agent keeps running", Action: ActQuit, Enabled: true},
		}},
	}, {
		name:    "no profiles",
		agentUp: true,
		want: Menu{Status: assets.StatusOK, Tooltip: "authagent: no profiles", Items: append([]Item{
			{Title: "No profiles", Tooltip: "Add one with `authagent add NAME --provider KIND`"},
		}, tail(noneNeedIt)...)},
	}, {
		name:    "valid",
		ps:      []ipc.Profile{valid},
		agentUp: true,
		want: Menu{Status: assets.StatusOK, Tooltip: "authagent: work valid, expires in 41 min", Items: append([]Item{{
			Title: "work — valid, expires in 41 min", Tooltip: "devicecode profile for api.example.com", Enabled: true,
			Children: []Item{
				{Title: "Log in", Tooltip: "Log in with your browser", Action: "login:work", Enabled: true},
				logout,
				hosts,
			},
		}}, tail(noneNeedIt)...)},
	}, {
		name:    "login pending shows the code",
		ps:      []ipc.Profile{pending},
		agentUp: true,
		want: Menu{Status: assets.StatusLogin, Tooltip: "authagent: work waiting for login, code WDJB-MJHT", Items: append([]Item{{
			Title: "work — waiting for login, code WDJB-MJHT", Tooltip: "devicecode profile for api.example.com", Enabled: true,
			Children: []Item{
				{Title: "Code: WDJB-MJHT", Tooltip: "Enter this code at https://idp.example/device; click to open the page again", Action: "open-login:work", Enabled: true},
				{Title: "Cancel login", Action: "cancel-login:work", Enabled: true},
				{Title: "Log out", Tooltip: "Not logged in", Action: "logout:work"},
				hosts,
			},
		}}, tail(noneNeedIt)...)},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := BuildMenu(tc.ps, now, tc.agentUp)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("BuildMenu (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildMenuProfileTitles(t *testing.T) {
	withExpiry := func(p ipc.Profile, d time.Duration) ipc.Profile { p.ExpiresAt = at(d); return p }
	failed := device("work", ipc.StateError)
	failed.LastError = "refresh work: token endpoint answered 503"
	tests := []struct {
		p    ipc.Profile
		want string
	}{
		{withExpiry(device("work", ipc.StateValid), 41*time.Minute), "work — valid, expires in 41 min"},
		{withExpiry(device("work", ipc.StateValid), 41*time.Minute+59*time.Second), "work — valid, expires in 41 min"},
		{withExpiry(device("work", ipc.StateValid), 30*time.Second), "work — valid, expires in less than a minute"},
		{withExpiry(device("work", ipc.StateValid), 2*time.Hour), "work — valid, expires in 2 h"},
		{withExpiry(device("work", ipc.StateValid), 2*time.Hour+5*time.Minute), "work — valid, expires in 2 h 5 min"},
		{withExpiry(device("work", ipc.StateValid), 30*time.Hour), "work — valid, expires in 1 day"},
		{withExpiry(device("work", ipc.StateValid), 80*time.Hour), "work — valid, expires in 3 days"},
		{withExpiry(device("work", ipc.StateValid), -time.Second), "work — valid, expired"},
		{withExpiry(device("work", ipc.StateRefreshing), 3*time.Minute), "work — refreshing, expires in 3 min"},
		{device("work", ipc.StateRefreshing), "work — refreshing"},
		{ipc.Profile{Name: "hub", Provider: "apikey", State: ipc.StateValid}, "hub — valid"},
		{device("work", ipc.StateExpired), "work — expired"},
		{device("work", ipc.StateNeedsLogin), "work — needs login"},
		{device("work", ipc.StateLoginPending), "work — waiting for login"},
		{failed, "work — error"},
		{device("work", "sleepy"), "work — sleepy"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			m := BuildMenu([]ipc.Profile{tc.p}, now, true)
			if got := m.Items[0].Title; got != tc.want {
				t.Errorf("title = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBuildMenuProfileActions(t *testing.T) {
	failed := device("work", ipc.StateError)
	failed.LastError = "refresh work: " + strings.Repeat("x", 100)
	tests := []struct {
		name string
		p    ipc.Profile
		want []string // "title action enabled" of each child
	}{
		{"needs login", device("work", ipc.StateNeedsLogin), []string{"Log in login:work on", "Log out logout:work off", "Hosts: api.example.com  off"}},
		{"valid", device("work", ipc.StateValid), []string{"Log in login:work on", "Log out logout:work on", "Hosts: api.example.com  off"}},
		{"error shows it", failed, []string{"Log in login:work on", "Log out logout:work on",
			"Error: refresh work: " + strings.Repeat("x", 55) + "…  off", "Hosts: api.example.com  off"}},
		{"apikey has no login", ipc.Profile{Name: "hub", Provider: "apikey", State: ipc.StateValid}, []string{"Log in login:hub off", "Log out logout:hub off"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range BuildMenu([]ipc.Profile{tc.p}, now, true).Items[0].Children {
				onOff := "off"
				if c.Enabled {
					onOff = "on"
				}
				got = append(got, c.Title+" "+c.Action+" "+onOff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("children (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildMenuLoginAll(t *testing.T) {
	apikeyNeeds := ipc.Profile{Name: "hub", Provider: "apikey", State: ipc.StateNeedsLogin} // a secret is missing: no login helps
	tests := []struct {
		name        string
		ps          []ipc.Profile
		wantEnabled bool
		wantTooltip string
	}{
		{"all valid", []ipc.Profile{device("a", ipc.StateValid), device("b", ipc.StateValid)}, false, "No profile needs a login"},
		{"one needs it", []ipc.Profile{device("a", ipc.StateValid), device("b", ipc.StateNeedsLogin)}, true, "Log in to b"},
		{"two need it", []ipc.Profile{device("b", ipc.StateNeedsLogin), device("a", ipc.StateNeedsLogin)}, true, "Log in to a, b"},
		{"pending is under way", []ipc.Profile{device("a", ipc.StateLoginPending)}, false, "No profile needs a login"},
		{"only devicecode logs in", []ipc.Profile{apikeyNeeds}, false, "No profile needs a login"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := BuildMenu(tc.ps, now, true)
			var got *Item
			for i := range m.Items {
				if m.Items[i].Action == ActLoginAll {
					got = &m.Items[i]
				}
			}
			if got == nil {
				t.Fatal("no \"Log in to all that need it\" item")
			}
			if got.Enabled != tc.wantEnabled || got.Tooltip != tc.wantTooltip {
				t.Errorf("login-all: enabled %v, tooltip %q; want %v, %q", got.Enabled, got.Tooltip, tc.wantEnabled, tc.wantTooltip)
			}
		})
	}
}

func TestBuildMenuWorstStatus(t *testing.T) {
	tests := []struct {
		name   string
		states []string
		want   assets.Status
	}{
		{"all valid", []string{ipc.StateValid, ipc.StateValid}, assets.StatusOK},
		{"expired is fetched on use", []string{ipc.StateValid, ipc.StateExpired}, assets.StatusOK},
		{"something refreshing", []string{ipc.StateValid, ipc.StateRefreshing}, assets.StatusRefreshing},
		{"a login needed", []string{ipc.StateRefreshing, ipc.StateNeedsLogin, ipc.StateValid}, assets.StatusLogin},
		{"a login waits", []string{ipc.StateValid, ipc.StateLoginPending}, assets.StatusLogin},
		{"an error", []string{ipc.StateNeedsLogin, ipc.StateError, ipc.StateRefreshing}, assets.StatusError},
		{"no profiles", nil, assets.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ps []ipc.Profile
			for i, s := range tc.states {
				ps = append(ps, device(string(rune('a'+i)), s))
			}
			if got := BuildMenu(ps, now, true).Status; got != tc.want {
				t.Errorf("status = %s, want %s", got, tc.want)
			}
		})
	}
	if got := BuildMenu([]ipc.Profile{device("a", ipc.StateValid)}, now, false).Status; got != assets.StatusNoAgent {
		t.Errorf("without an agent: status = %s, want %s", got, assets.StatusNoAgent)
	}
}

func TestBuildMenuTooltip(t *testing.T) {
	valid := device("work", ipc.StateValid)
	valid.ExpiresAt = at(2 * time.Hour)
	tests := []struct {
		name string
		ps   []ipc.Profile
		want string
	}{
		{"one profile says its state", []ipc.Profile{valid}, "authagent: work valid, expires in 2 h"},
		{"counts, worst first", []ipc.Profile{valid, device("b", ipc.StateValid), device("c", ipc.StateNeedsLogin), device("d", ipc.StateError)},
			"authagent: 4 profiles: 1 error, 1 needs login, 2 valid"},
		{"unknown states last", []ipc.Profile{valid, device("b", "sleepy")}, "authagent: 2 profiles: 1 valid, 1 sleepy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := BuildMenu(tc.ps, now, true).Tooltip; got != tc.want {
				t.Errorf("tooltip = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBuildMenuSortsProfilesAndKeepsInputIntact(t *testing.T) {
	ps := []ipc.Profile{device("zeta", ipc.StateValid), device("alpha", ipc.StateValid), device("mid", ipc.StateValid)}
	m := BuildMenu(ps, now, true)
	var got []string
	for _, it := range m.Items[:3] {
		got = append(got, strings.Fields(it.Title)[0])
	}
	if diff := cmp.Diff([]string{"alpha", "mid", "zeta"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if ps[0].Name != "zeta" {
		t.Errorf("BuildMenu reordered its input: %v", ps)
	}
}
