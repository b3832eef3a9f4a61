package gitsetup

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHelperKeys(t *testing.T) {
	for host, want := range map[string][]string{
		"git.example.com": {"credential.https://git.example.com.helper"},
		"127.0.0.1:8080":  {"credential.https://127.0.0.1:8080.helper", "credential.http://127.0.0.1:8080.helper"},
		"localhost":       {"credential.https://localhost.helper", "credential.http://localhost.helper"},
		"LOCALHOST:3000":  {"credential.https://LOCALHOST:3000.helper", "credential.http://LOCALHOST:3000.helper"},
		"[::1]:8443":      {"credential.https://[::1]:8443.helper", "credential.http://[::1]:8443.helper"},
		"*.corp.example":  {"credential.https://*.corp.example.helper"},
	} {
		if diff := cmp.Diff(want, HelperKeys(host)); diff != "" {
			t.Errorf("HelperKeys(%q) (-want +got):\n%s", host, diff)
		}
	}
}

func TestIsOurs(t *testing.T) {
	for values, want := range map[string]bool{
		"\n!/usr/bin/authagent git-credential\n":          true,
		"\n!'/home/me/my bin/authagent' git-credential\n": true,
		"store\n":                        false,
		"\n!/usr/bin/other-helper get\n": false,
		"":                               false,
	} {
		if got := isOurs(values); got != want {
			t.Errorf("isOurs(%q) = %v, want %v", values, got, want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/authagent": "/usr/bin/authagent",
		"/home/me/my bin/a":  "'/home/me/my bin/a'",
		"/tmp/it's":          `'/tmp/it'\''s'`,
		"":                   "''",
	} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
