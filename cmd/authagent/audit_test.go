package main

import (
	"strings"
	"testing"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/wire"
)

// TestCallerTextEscapes: the audit table shows a program name holding ESC, a tab or
// U+202E escaped and quoted, so it can neither restyle the terminal nor forge a column or
// turn the row around; plain names show as they are, and a refused connection its uid.
func TestCallerTextEscapes(t *testing.T) {
	uid := 1001
	for _, tt := range []struct {
		e    ipc.AuditEntry
		want string
	}{
		{ipc.AuditEntry{Exe: "/usr/bin/git-credential-authagent", PID: 42, ParentExe: "/usr/bin/git"}, "git-credential-authagent (42) via git"},
		{ipc.AuditEntry{Exe: "/tmp/\x1b[2K\x1b[1Agit", PID: 42}, `"\x1b[2K\x1b[1Agit" (42)`},
		{ipc.AuditEntry{Exe: "/tmp/evil\u202Etxt.sh", PID: 42, ParentExe: "/tmp/a\tb"}, `"evil\u202etxt.sh" (42) via "a\tb"`},
		{ipc.AuditEntry{PID: 42, UID: &uid}, "? (42) uid 1001"},
	} {
		got := callerText(tt.e)
		if got != tt.want {
			t.Errorf("callerText(%q, %q) = %q, want %q", tt.e.Exe, tt.e.ParentExe, got, tt.want)
		}
		if strings.ContainsAny(got, "\x1b\t\u202E") {
			t.Errorf("callerText(%q) = %q holds a raw control or format character", tt.e.Exe, got)
		}
	}
	for in, want := range map[string]string{
		"api.example.com":        "api.example.com",
		"a\u202Eb.example.com":   `"a\u202eb.example.com"`,
		"x\x1b]8;;http://e\x07y": `"x\x1b]8;;http://e\ay"`,
		"\xff":                   `"\xff"`,
	} {
		if got := wire.Printable(in); got != want {
			t.Errorf("wire.Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
