package packaging

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Names of the Windows scheduled tasks that `authagent install --user` creates (schtasks
// /Create /TN NAME /XML FILE), in the Task Scheduler's root folder.
const (
	TaskAgentName = "authagent agent"
	TaskTrayName  = "authagent tray"
)

// LogonTask is a Windows scheduled task that runs a program when the user logs on, with
// the user's own (unelevated) token, in the user's session.
type LogonTask struct {
	Description string
	UserSID     string // the user whose logon starts it and who it runs as, e.g. S-1-5-21-…
	Command     string // absolute path of the .exe
	Arguments   []string
	// Restart restarts the program up to three times, a minute apart, when it fails.
	Restart bool
}

// TaskAgent is the agent's task: `authagent serve` at logon, restarted when it fails.
func TaskAgent(binary, userSID string) LogonTask {
	return LogonTask{Description: "authagent: the token agent (authagent serve)", UserSID: userSID,
		Command: binary, Arguments: []string{"serve"}, Restart: true}
}

// TaskTray is the tray's task: `authagent tray` at logon.
func TaskTray(binary, userSID string) LogonTask {
	return LogonTask{Description: "authagent: the tray icon (authagent tray)", UserSID: userSID,
		Command: binary, Arguments: []string{"tray"}}
}

// XML is t in the Task Scheduler's schema (version 1.2, Windows Vista and later), as UTF-16
// with a byte-order mark, the encoding schtasks /XML reads. The task never times out,
// runs on battery, and starts no second copy while one runs.
func (t LogonTask) XML() []byte {
	esc := func(s string) string {
		var e bytes.Buffer
		xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	args := make([]string, len(t.Arguments))
	for i, a := range t.Arguments {
		args[i] = windowsArg(a)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>%s</Description>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>
      <UserId>%s</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>%s</UserId>
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
`, esc(t.Description), esc(t.UserSID), esc(t.UserSID))
	// Settings in the order the schema documents them.
	if t.Restart {
		b.WriteString(`    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>3</Count>
    </RestartOnFailure>
`)
	}
	fmt.Fprintf(&b, `    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <Enabled>true</Enabled>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>%s</Command>
      <Arguments>%s</Arguments>
    </Exec>
  </Actions>
</Task>
`, esc(t.Command), esc(strings.Join(args, " ")))
	return utf16File(strings.ReplaceAll(b.String(), "\n", "\r\n"))
}

// utf16File is s as UTF-16LE with a byte-order mark.
func utf16File(s string) []byte {
	u := utf16.Encode([]rune(s))
	out := make([]byte, 2, 2+2*len(u))
	binary.LittleEndian.PutUint16(out, 0xfeff)
	for _, c := range u {
		out = binary.LittleEndian.AppendUint16(out, c)
	}
	return out
}

// windowsArg quotes s as one argument of a Windows command line, as CommandLineToArgvW
// and the C runtime split it: unchanged when it has no space, tab, newline or quote; else
// in quotes, with each run of backslashes before a quote or the closing quote doubled and
// each quote escaped.
func windowsArg(s string) string {
	if s == "" {
		return `""`
	}
	if !strings.ContainsAny(s, " \t\n\v\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(s[i])
	}
	b.WriteString(strings.Repeat(`\`, slashes))
	b.WriteByte('"')
	return b.String()
}
