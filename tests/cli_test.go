package tests

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	addAPIKey(t, e, "hub", canary(t), hubFlags()...)

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string // a part of stderr, when set
	}{
		{"unknown command", []string{"bogus"}, 2, "bogus"},
		{"unknown flag", []string{"list", "--bogus"}, 2, "bogus"},
		{"token without a name", []string{"token"}, 2, "NAME"},
		{"add without a provider", []string{"add", "x"}, 2, "--provider"},
		{"exec without a command", []string{"exec", "hub"}, 2, "exec"},
		{"token of an unknown profile", []string{"token", "nope"}, 1, "nope"},
		{"header of an unknown profile", []string{"header", "nope"}, 1, "nope"},
		{"remove an unknown profile", []string{"remove", "nope"}, 1, "nope"},
		{"exec of an unknown profile", []string{"exec", "nope", "--", "true"}, 1, "nope"},
		{"exec passes the exit status through", []string{"exec", "hub", "--", "sh", "-c", "exit 7"}, 7, ""},
		{"version", []string{"version"}, 0, ""},
		{"help", []string{"--help"}, 0, ""},
		{"token", []string{"token", "hub"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, e, "", tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("authagent %s: exit %d, want %d\n%s", strings.Join(tt.args, " "), r.code, tt.wantCode, r)
			}
			if tt.wantStderr != "" && !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("authagent %s: stderr %q does not mention %q", strings.Join(tt.args, " "), r.stderr, tt.wantStderr)
			}
		})
	}

	t.Run("no agent", func(t *testing.T) {
		dead := e.with("AUTHAGENT_SOCK", filepath.Join(t.TempDir(), "none.sock"))
		for _, args := range [][]string{{"status"}, {"token", "hub"}, {"list"}} {
			r := run(t, dead, "", args...)
			if r.code != 1 {
				t.Errorf("authagent %s without an agent: exit %d, want 1\n%s", strings.Join(args, " "), r.code, r)
			}
			if r.stderr == "" {
				t.Errorf("authagent %s without an agent says nothing on stderr", strings.Join(args, " "))
			}
		}
	})
}
