package tray

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/authagent/authagent/assets"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/wire"
)

// Menu is what the tray shows: its icon's status, its tooltip and its menu.
type Menu struct {
	Status  assets.Status
	Tooltip string
	Items   []Item
}

// Item is one menu entry: a separator, or a title that runs Action when clicked, or
// opens its Children.
type Item struct {
	Title     string
	Tooltip   string
	Action    string // what a click does (see the Act… constants); "" for none
	Enabled   bool
	Separator bool
	Children  []Item
}

// Actions of menu items. Those for one profile are the prefix followed by its name.
const (
	ActLoginAll    = "login-all"
	ActOpenConfig  = "open-config"
	ActStartAgent  = "start-agent"
	ActQuit        = "quit"
	ActLogin       = "login:"        // start a device login and open the browser
	ActLogout      = "logout:"       // revoke and forget the login
	ActOpenLogin   = "open-login:"   // open the browser on the login that waits
	ActCancelLogin = "cancel-login:" // stop the login that waits
)

// Capabilities of a profile (ipc.Profile.Capabilities) that the menu offers.
const (
	capLogin  = "login"
	capLogout = "logout"
)

// BuildMenu is the tray's menu for the agent's profiles at now; agentUp says whether an
// agent answers at all. st, when given, is the agent's status: a failed reload of the
// config file (config_error) and a change that waits for a restart (config_warning) each
// get a line at the top; a failed reload also turns the icon to error.
func BuildMenu(ps []ipc.Profile, now time.Time, agentUp bool, st ...*ipc.Status) Menu {
	return BuildMenuWithUses(ps, nil, now, agentUp, st...)
}

// BuildMenuWithUses is BuildMenu with each profile's last use in its submenu: uses holds,
// by profile name, the newest audit entry of a credential or signature the agent served
// (LastUses picks them); a profile without one gets no such line.
func BuildMenuWithUses(ps []ipc.Profile, uses map[string]ipc.AuditEntry, now time.Time, agentUp bool, st ...*ipc.Status) Menu {
	sep := Item{Separator: true}
	quit := Item{Title: "Quit", Tooltip: "Close the tray icon; the agent keeps running", Action: ActQuit, Enabled: true}
	config := Item{Title: "Open configuration", Tooltip: "Edit config.toml, then run `authagent reload`", Action: ActOpenConfig, Enabled: true}
	loginAll := Item{Title: "Log in to all that need it", Action: ActLoginAll}
	if !agentUp {
		loginAll.Tooltip = "No agent is running"
		return Menu{
			Status:  assets.StatusNoAgent,
			Tooltip: "authagent: no agent is running",
			Items: []Item{
				{Title: "No agent is running", Tooltip: "Nothing answers on the agent's socket"},
				{Title: "Start agent", Tooltip: "Run `authagent start`", Action: ActStartAgent, Enabled: true},
				sep, loginAll, config, sep, quit,
			},
		}
	}

	ps = slices.SortedFunc(slices.Values(ps), func(a, b ipc.Profile) int { return cmp.Compare(a.Name, b.Name) })
	m := Menu{Status: assets.StatusOK}
	var configNote string
	for _, s := range st {
		if s == nil {
			continue
		}
		if e := s.ConfigError; e != "" {
			m.Items = append(m.Items, Item{Title: "Config not reloaded: " + clip(firstLine(e), 60),
				Tooltip: e + "\nThe agent keeps the config it had. Fix the file, then run `authagent reload`.",
				Action:  ActOpenConfig, Enabled: true})
			m.Status = worse(m.Status, assets.StatusError)
			configNote = "; config not reloaded"
		}
		if w := s.ConfigWarning; w != "" {
			m.Items = append(m.Items, Item{Title: "Restart needed: " + clip(firstLine(w), 60), Tooltip: w})
		}
	}
	if len(m.Items) > 0 {
		m.Items = append(m.Items, sep)
	}
	var needLogin []string
	for _, p := range ps {
		it := profileItem(p, now)
		if u, ok := uses[p.Name]; ok {
			it.Children = append(it.Children, lastUseItem(u, now))
		}
		m.Items = append(m.Items, it)
		m.Status = worse(m.Status, status(p.State))
		if p.Can(capLogin) && p.State == ipc.StateNeedsLogin {
			needLogin = append(needLogin, p.Name)
		}
	}
	if len(ps) == 0 {
		m.Items = append(m.Items, Item{Title: "No profiles", Tooltip: "Add one with `authagent add NAME --provider KIND`"})
	}
	if len(needLogin) > 0 {
		loginAll.Enabled = true
		loginAll.Tooltip = "Log in to " + strings.Join(needLogin, ", ")
	} else {
		loginAll.Tooltip = "No profile needs a login"
	}
	m.Items = append(m.Items, sep, loginAll, config, sep, quit)
	m.Tooltip = tooltip(ps, now) + configNote
	return m
}

// firstLine is s up to its first line break.
func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// profileItem is a profile's entry: its state in the title, what to do in its submenu.
func profileItem(p ipc.Profile, now time.Time) Item {
	it := Item{Title: p.Name + " — " + describe(p, now), Enabled: true}
	if p.LastError != "" {
		it.Tooltip = p.LastError
	} else if len(p.Hosts) > 0 {
		it.Tooltip = p.Provider + " profile for " + strings.Join(p.Hosts, ", ")
	} else {
		it.Tooltip = p.Provider + " profile"
	}

	noLogin := p.Provider + " profiles have no login"
	switch {
	case p.Login != nil && p.Login.Flow == ipc.FlowBrowser:
		it.Children = append(it.Children,
			Item{Title: "Open the login page", Tooltip: "The login waits for you in the browser; click to open its page again",
				Action: ActOpenLogin + p.Name, Enabled: true},
			Item{Title: "Cancel login", Action: ActCancelLogin + p.Name, Enabled: true})
	case p.Login != nil:
		it.Children = append(it.Children,
			Item{Title: "Code: " + p.Login.UserCode, Tooltip: "Enter this code at " + p.Login.VerificationURI + "; click to open the page again",
				Action: ActOpenLogin + p.Name, Enabled: true},
			Item{Title: "Cancel login", Action: ActCancelLogin + p.Name, Enabled: true})
	case p.Can(capLogin):
		it.Children = append(it.Children, Item{Title: "Log in", Tooltip: "Log in with your browser", Action: ActLogin + p.Name, Enabled: true})
	default:
		it.Children = append(it.Children, Item{Title: "Log in", Tooltip: noLogin, Action: ActLogin + p.Name})
	}
	logout := Item{Title: "Log out", Tooltip: "Revoke the login at the identity provider and forget it", Action: ActLogout + p.Name}
	switch {
	case !p.Can(capLogout):
		logout.Tooltip = noLogin
	case p.State == ipc.StateNeedsLogin || p.State == ipc.StateLoginPending:
		logout.Tooltip = "Not logged in"
	default:
		logout.Enabled = true
	}
	it.Children = append(it.Children, logout)
	if p.LastError != "" {
		it.Children = append(it.Children, Item{Title: "Error: " + clip(p.LastError, 70), Tooltip: p.LastError})
	}
	if len(p.Hosts) > 0 {
		it.Children = append(it.Children, Item{Title: "Hosts: " + clip(strings.Join(p.Hosts, ", "), 70), Tooltip: "Where this profile's token may be sent"})
	}
	return it
}

// describe says a profile's state in words: "valid, expires in 41 min".
func describe(p ipc.Profile, now time.Time) string {
	var s string
	switch p.State {
	case ipc.StateValid:
		s = "valid"
	case ipc.StateRefreshing:
		s = "refreshing"
	case ipc.StateExpired:
		return "expired"
	case ipc.StateNeedsLogin:
		return "needs login"
	case ipc.StateLoginPending:
		if p.Login != nil && p.Login.Flow == ipc.FlowBrowser {
			return "waiting for login in the browser"
		}
		if p.Login != nil {
			return "waiting for login, code " + p.Login.UserCode
		}
		return "waiting for login"
	case ipc.StateError:
		return "error"
	default:
		return p.State
	}
	if p.ExpiresAt != nil {
		s += ", " + expiresIn(p.ExpiresAt.Sub(now))
	}
	return s
}

// expiresIn says how long a token has left, to the minute.
func expiresIn(d time.Duration) string {
	switch {
	case d <= 0:
		return "expired"
	case d < time.Minute:
		return "expires in less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("expires in %d min", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("expires in %d h", h)
		}
		return fmt.Sprintf("expires in %d h %d min", h, m)
	case d < 48*time.Hour:
		return "expires in 1 day"
	}
	return fmt.Sprintf("expires in %d days", int(d/(24*time.Hour)))
}

// status is the icon a profile in state alone would give.
func status(state string) assets.Status {
	switch state {
	case ipc.StateError:
		return assets.StatusError
	case ipc.StateNeedsLogin, ipc.StateLoginPending:
		return assets.StatusLogin
	case ipc.StateRefreshing:
		return assets.StatusRefreshing
	}
	// valid, and expired: the next request fetches a token, nobody needs to act.
	return assets.StatusOK
}

// severity orders statuses from all well to worst.
var severity = map[assets.Status]int{
	assets.StatusOK:         0,
	assets.StatusRefreshing: 1,
	assets.StatusLogin:      2,
	assets.StatusError:      3,
	assets.StatusNoAgent:    4,
}

func worse(a, b assets.Status) assets.Status {
	if severity[b] > severity[a] {
		return b
	}
	return a
}

// stateWords name the states in a summary, worst first.
var stateWords = []struct{ state, words string }{
	{ipc.StateError, "error"},
	{ipc.StateNeedsLogin, "needs login"},
	{ipc.StateLoginPending, "waiting for login"},
	{ipc.StateRefreshing, "refreshing"},
	{ipc.StateExpired, "expired"},
	{ipc.StateValid, "valid"},
}

// tooltip summarises the profiles: the one profile's state, or a count per state.
func tooltip(ps []ipc.Profile, now time.Time) string {
	switch len(ps) {
	case 0:
		return "authagent: no profiles"
	case 1:
		return "authagent: " + ps[0].Name + " " + describe(ps[0], now)
	}
	count := map[string]int{}
	for _, p := range ps {
		count[p.State]++
	}
	var parts []string
	for _, sw := range stateWords {
		if n := count[sw.state]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, sw.words))
			delete(count, sw.state)
		}
	}
	for _, state := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, fmt.Sprintf("%d %s", count[state], state))
	}
	return fmt.Sprintf("authagent: %d profiles: %s", len(ps), strings.Join(parts, ", "))
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// LastUses merges entries (from GET /v1/audit) into uses, the newest credential or
// signature served per profile, and returns it; uses may be nil.
func LastUses(uses map[string]ipc.AuditEntry, entries []ipc.AuditEntry) map[string]ipc.AuditEntry {
	if uses == nil {
		uses = map[string]ipc.AuditEntry{}
	}
	for _, e := range entries {
		switch e.Op {
		case "credential", "id_token", "sign":
		default:
			continue
		}
		if e.Result != "ok" || e.Profile == "" {
			continue
		}
		if old, ok := uses[e.Profile]; !ok || e.Time.After(old.Time) {
			uses[e.Profile] = e
		}
	}
	return uses
}

// lastUseItem is the line "Last used by git (via authagent) 2 min ago": the program that
// asked, or for authagent's own helpers (git's, curl's) the program that ran them.
func lastUseItem(e ipc.AuditEntry, now time.Time) Item {
	who := "an unknown program"
	if e.Exe != "" {
		who = wire.Printable(filepath.Base(e.Exe))
	}
	if who == "authagent" && e.ParentExe != "" {
		who = wire.Printable(filepath.Base(e.ParentExe)) + " (via authagent)"
	}
	tip := fmt.Sprintf("%s at %s", wire.Printable(e.Op), e.Time.Local().Format("2006-01-02 15:04:05"))
	if e.Host != "" {
		tip += " for " + wire.Printable(e.Host)
	}
	if e.Exe != "" {
		tip += fmt.Sprintf("\nby %s (pid %d)", wire.Printable(e.Exe), e.PID)
	}
	if e.ParentExe != "" {
		tip += fmt.Sprintf(", run by %s (pid %d)", wire.Printable(e.ParentExe), e.ParentPID)
	}
	return Item{Title: "Last used by " + clip(who, 50) + " " + ago(now.Sub(e.Time)), Tooltip: tip + "\n`authagent audit` shows more"}
}

// ago says how long ago, to the minute: "just now", "2 min ago", "3 h ago", "2 days ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}
