package packaging

import (
	"bytes"
	"encoding/xml"
	"fmt"
)

// Launchd labels of the macOS user agents that `authagent install --user` writes to
// ~/Library/LaunchAgents/LABEL.plist.
const (
	LaunchdAgentLabel = "io.github.authagent.agent"
	LaunchdTrayLabel  = "io.github.authagent.tray"
)

// LaunchdJob is a launchd user agent that starts at login.
type LaunchdJob struct {
	Label   string   // reverse-DNS name, unique per user; the plist is named after it
	Program []string // absolute path of the binary, then its arguments
	Log     string   // absolute path that gets its stdout and stderr; "" for none
	// KeepAlive restarts the job when it exits with an error or a signal; a clean exit
	// (`authagent stop`) stays stopped until the next login.
	KeepAlive bool
	// GUIOnly loads the job only in a graphical login session (Aqua), not over ssh.
	GUIOnly bool
}

// LaunchdAgent is the agent's job: `authagent serve` at login, restarted after a crash.
func LaunchdAgent(binary, log string) LaunchdJob {
	return LaunchdJob{Label: LaunchdAgentLabel, Program: []string{binary, "serve"}, Log: log, KeepAlive: true}
}

// LaunchdTray is the tray's job: `authagent tray` at a graphical login. It is not kept
// alive: a tray the user quit stays quit.
func LaunchdTray(binary, log string) LaunchdJob {
	return LaunchdJob{Label: LaunchdTrayLabel, Program: []string{binary, "tray"}, Log: log, GUIOnly: true}
}

// Plist is j as a launchd property list (XML, UTF-8), with every string escaped.
func (j LaunchdJob) Plist() []byte {
	var b bytes.Buffer
	str := func(s string) string {
		var e bytes.Buffer
		xml.EscapeText(&e, []byte(s))
		return "<string>" + e.String() + "</string>"
	}
	key := func(k string) { fmt.Fprintf(&b, "\t<key>%s</key>\n", k) }
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
`)
	key("Label")
	fmt.Fprintf(&b, "\t%s\n", str(j.Label))
	key("ProgramArguments")
	b.WriteString("\t<array>\n")
	for _, a := range j.Program {
		fmt.Fprintf(&b, "\t\t%s\n", str(a))
	}
	b.WriteString("\t</array>\n")
	key("RunAtLoad")
	b.WriteString("\t<true/>\n")
	if j.KeepAlive {
		key("KeepAlive")
		b.WriteString("\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n")
	}
	if j.GUIOnly {
		key("LimitLoadToSessionType")
		fmt.Fprintf(&b, "\t%s\n", str("Aqua"))
	}
	key("ProcessType")
	fmt.Fprintf(&b, "\t%s\n", str("Interactive"))
	if j.Log != "" {
		key("StandardOutPath")
		fmt.Fprintf(&b, "\t%s\n", str(j.Log))
		key("StandardErrorPath")
		fmt.Fprintf(&b, "\t%s\n", str(j.Log))
	}
	b.WriteString("</dict>\n</plist>\n")
	return b.Bytes()
}
