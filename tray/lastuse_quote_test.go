package tray

import (
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
)

// TestLastUseItemEscapes: a program name or host holding ESC (a terminal sequence), a
// newline (a forged second line) or U+202E (text turned around) shows in the last-use
// line and its tooltip escaped, never raw; a plain name shows as it is.
func TestLastUseItemEscapes(t *testing.T) {
	e := ipc.AuditEntry{Time: now.Add(-2 * time.Minute), Profile: "work", Op: "credential", Result: "ok",
		Exe: "/tmp/\x1b[31mgit\u202Etxt.exe", PID: 7, ParentExe: "/usr/bin/ba\nsh", ParentPID: 6,
		Host: "api.example.com\u202Egro.live"}
	it := lastUseItem(e, now)
	for _, s := range []string{it.Title, it.Tooltip} {
		if strings.ContainsAny(s, "\x1b\u202E") || strings.Contains(s, "ba\nsh") {
			t.Errorf("raw control or format character shown: %q", s)
		}
	}
	if !strings.Contains(it.Title, `"\x1b[31mgit\u202etxt.exe"`) {
		t.Errorf("title %q: want the program's name quoted with \\x1b and \\u202e", it.Title)
	}
	for _, want := range []string{`"api.example.com\u202egro.live"`, `"/usr/bin/ba\nsh"`} {
		if !strings.Contains(it.Tooltip, want) {
			t.Errorf("tooltip %q: want %s", it.Tooltip, want)
		}
	}
	e.Exe, e.Host, e.ParentExe = "/usr/bin/git", "api.example.com", ""
	if it := lastUseItem(e, now); it.Title != "Last used by git 2 min ago" || strings.Contains(it.Tooltip, `"`) {
		t.Errorf("plain names: %q / %q; want them as they are", it.Title, it.Tooltip)
	}
}
