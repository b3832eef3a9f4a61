package packaging

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

// plistValue decodes the next value of a property list: string, bool, []any or
// map[string]any.
func plistValue(t *testing.T, d *xml.Decoder, start xml.StartElement) any {
	t.Helper()
	switch start.Name.Local {
	case "string", "key":
		var s string
		if err := d.DecodeElement(&s, &start); err != nil {
			t.Fatal(err)
		}
		return s
	case "true", "false":
		d.Skip()
		return start.Name.Local == "true"
	case "array", "dict":
		var items []any
		for {
			tok, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				items = append(items, plistValue(t, d, tok))
			case xml.EndElement:
				if start.Name.Local == "array" {
					return items
				}
				m := map[string]any{}
				for i := 0; i+1 < len(items); i += 2 {
					m[items[i].(string)] = items[i+1]
				}
				if len(items)%2 != 0 {
					t.Fatalf("dict with a key and no value: %v", items)
				}
				return m
			}
		}
	}
	t.Fatalf("unexpected plist element <%s>", start.Name.Local)
	return nil
}

// parsePlist decodes a plist whose top value is a dict.
func parsePlist(t *testing.T, data []byte) map[string]any {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("no <plist><dict> in %s: %v", data, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "dict" {
			return plistValue(t, d, se).(map[string]any)
		}
	}
}

func TestLaunchdPlist(t *testing.T) {
	bin := "/Users/a&b <c>/bin/authagent" // every character XML must escape
	log := "/Users/a&b <c>/Library/Logs/authagent/agent.log"
	tests := []struct {
		job  LaunchdJob
		want map[string]any
	}{
		{LaunchdAgent(bin, log), map[string]any{
			"Label":             LaunchdAgentLabel,
			"ProgramArguments":  []any{bin, "serve"},
			"RunAtLoad":         true,
			"KeepAlive":         map[string]any{"SuccessfulExit": false},
			"ProcessType":       "Interactive",
			"StandardOutPath":   log,
			"StandardErrorPath": log,
		}},
		{LaunchdTray(bin, ""), map[string]any{
			"Label":                  LaunchdTrayLabel,
			"ProgramArguments":       []any{bin, "tray"},
			"RunAtLoad":              true,
			"LimitLoadToSessionType": "Aqua",
			"ProcessType":            "Interactive",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.job.Label, func(t *testing.T) {
			data := tt.job.Plist()
			if !bytes.HasPrefix(data, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
				t.Errorf("plist does not start with the XML declaration:\n%s", data)
			}
			got := parsePlist(t, data)
			if !mapsEqual(got, tt.want) {
				t.Errorf("plist = %#v\nwant %#v\n%s", got, tt.want, data)
			}
		})
	}
}

func mapsEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if !mapsEqual(v, b[k]) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, func(x, y any) bool { return mapsEqual(x, y) })
	}
	return a == b
}

// decodeUTF16 reads a UTF-16LE file with a byte-order mark.
func decodeUTF16(t *testing.T, data []byte) string {
	t.Helper()
	if len(data) < 2 || len(data)%2 != 0 || binary.LittleEndian.Uint16(data) != 0xfeff {
		t.Fatalf("not UTF-16LE with a BOM: % x…", data[:min(len(data), 8)])
	}
	u := make([]uint16, 0, len(data)/2-1)
	for i := 2; i < len(data); i += 2 {
		u = append(u, binary.LittleEndian.Uint16(data[i:]))
	}
	return string(utf16.Decode(u))
}

// task is the part of the Task Scheduler schema the tests read.
type task struct {
	XMLName     xml.Name `xml:"http://schemas.microsoft.com/windows/2004/02/mit/task Task"`
	Description string   `xml:"RegistrationInfo>Description"`
	TriggerUser string   `xml:"Triggers>LogonTrigger>UserId"`
	Principal   struct {
		UserID    string `xml:"UserId"`
		LogonType string
		RunLevel  string
	} `xml:"Principals>Principal"`
	Settings struct {
		ExecutionTimeLimit string
		MultipleInstances  string `xml:"MultipleInstancesPolicy"`
		RestartCount       string `xml:"RestartOnFailure>Count"`
	}
	Command   string `xml:"Actions>Exec>Command"`
	Arguments string `xml:"Actions>Exec>Arguments"`
}

func parseTask(t *testing.T, data []byte) task {
	t.Helper()
	text := decodeUTF16(t, data)
	if !strings.HasPrefix(text, `<?xml version="1.0" encoding="UTF-16"?>`+"\r\n") {
		t.Errorf("task XML does not start with a UTF-16 declaration and CRLF: %.60q", text)
	}
	if strings.Contains(strings.ReplaceAll(text, "\r\n", ""), "\n") {
		t.Errorf("task XML has a bare LF line end")
	}
	d := xml.NewDecoder(strings.NewReader(text))
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil } // already decoded
	var got task
	if err := d.Decode(&got); err != nil {
		t.Fatalf("task XML does not parse: %v\n%s", err, text)
	}
	return got
}

func TestLogonTaskXML(t *testing.T) {
	const sid = "S-1-5-21-1004336348-1177238915-682003330-1001"
	bin := `C:\Users\A & B <x>\AppData\Local\Programs\authagent\authagent.exe`
	agent := parseTask(t, TaskAgent(bin, sid).XML())
	if agent.Command != bin || agent.Arguments != "serve" {
		t.Errorf("agent task runs %q %q, want %q serve", agent.Command, agent.Arguments, bin)
	}
	if agent.TriggerUser != sid || agent.Principal.UserID != sid {
		t.Errorf("agent task: trigger user %q, runs as %q; want %s for both", agent.TriggerUser, agent.Principal.UserID, sid)
	}
	if agent.Principal.LogonType != "InteractiveToken" || agent.Principal.RunLevel != "LeastPrivilege" {
		t.Errorf("agent task runs with %s/%s, want InteractiveToken/LeastPrivilege (the user's session, not elevated)",
			agent.Principal.LogonType, agent.Principal.RunLevel)
	}
	if agent.Settings.ExecutionTimeLimit != "PT0S" || agent.Settings.MultipleInstances != "IgnoreNew" || agent.Settings.RestartCount != "3" {
		t.Errorf("agent task settings = %+v, want no time limit, IgnoreNew, 3 restarts", agent.Settings)
	}
	tray := parseTask(t, TaskTray(bin, sid).XML())
	if tray.Command != bin || tray.Arguments != "tray" || tray.Settings.RestartCount != "" {
		t.Errorf("tray task runs %q %q restarting %q times, want %q tray and no restarts", tray.Command, tray.Arguments, tray.Settings.RestartCount, bin)
	}
}

// splitWindows splits a command line as CommandLineToArgvW does (after the program name).
func splitWindows(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\':
			n := 0
			for i < len(line) && line[i] == '\\' {
				n++
				i++
			}
			if i < len(line) && line[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
				} else {
					quoted = !quoted
				}
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
				i--
			}
			inArg = true
		case c == '"':
			quoted = !quoted
			inArg = true
		case (c == ' ' || c == '\t') && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

func TestWindowsArg(t *testing.T) {
	args := []string{"", "serve", `C:\Program Files\authagent`, `a"b`, `a\"b`, `trailing\`, `sp ace\`,
		`\\server\share\x y\\`, `"`, `\`, "tab\there", `a\\\"b c`}
	var quoted []string
	for _, a := range args {
		quoted = append(quoted, windowsArg(a))
	}
	got, err := splitWindows(strings.Join(quoted, " "))
	if err != nil || !slices.Equal(got, args) {
		t.Errorf("split(%s) = %q, %v; want %q", strings.Join(quoted, " "), got, err, args)
	}
	if got := windowsArg("serve"); got != "serve" {
		t.Errorf("windowsArg(serve) = %q, want it unquoted", got)
	}
}
