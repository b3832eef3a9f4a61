package tests

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/authagent/authagent/ipc"
)

// Issue 14: every use and change of a profile is a line in the audit log, with the program
// that asked as the agent saw it; `authagent audit` reads the log through the agent.

// auditEntries runs `authagent audit --json` with args.
func auditEntries(t *testing.T, e *env, args ...string) []ipc.AuditEntry {
	t.Helper()
	r := runOK(t, e, "", append([]string{"audit", "--json"}, args...)...)
	var out struct {
		Entries []ipc.AuditEntry `json:"entries"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("authagent audit --json: %v\n%s", err, r)
	}
	return out.Entries
}

// TestAuditLog: `authagent token`, a `git credential fill` through real git and
// `authagent curl` each leave a line with the operation, the URL's host (nothing more of
// the URL), the authagent binary as the caller and, for the git helper, git as its parent;
// defining a profile, setting its secret and pushing a token leave theirs; no secret or
// token is in the file, which is 0600; `authagent audit --profile P --json` returns P's.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	needTools(t, "git", "curl")
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	apiHost := strings.TrimPrefix(srv.URL, "http://")

	secret, secret2, pushed := canary(t), "set-"+canary(t), "push-"+canary(t)
	addAPIKey(t, e, "hub", secret, "--header", "X-API-Key={secret}", "--host", apiHost)
	runOK(t, e, secret2, "set-secret", "hub")
	addPushProfile(t, e, "forge", "--host", "git.example.com")
	pushToken(t, e, "forge", pushed)

	runOK(t, e, "", "token", "hub")
	_, environ := linkAs(t, gitEnviron(t, e), "git-credential-authagent")
	gitOK(t, environ, e.dir, "config", "--global", "credential.helper", "authagent")
	gitOK(t, environ, e.dir, "config", "--global", "credential.useHttpPath", "true")
	r := runIn(t, environ, e.dir, "protocol=https\nhost=git.example.com\npath=org/private-repo.git\n\n", "git", "credential", "fill")
	if r.code != 0 || !strings.Contains(r.stdout, "password="+pushed) {
		t.Fatalf("git credential fill: %s", r)
	}
	runOK(t, e, "", "curl", "hub", "--", "-sS", "-f", "-o", "/dev/null", srv.URL+"/private/path?q=query-value")

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(p string) string {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	self = resolve(self)
	authagent := []string{resolve(authagentBin), resolve(fullBin)} // the front, or the full binary it hands a command to

	entries := auditEntries(t, e)
	find := func(profile, op, host string) ipc.AuditEntry {
		t.Helper()
		for _, en := range entries {
			if en.Profile == profile && en.Op == op && en.Host == host {
				return en
			}
		}
		t.Fatalf("no audit entry for %s %s host %q in:\n%+v", profile, op, host, entries)
		return ipc.AuditEntry{}
	}
	for _, w := range []struct{ profile, op string }{
		{"hub", "put_profile"}, {"hub", "set_secret"}, {"forge", "put_profile"}, {"forge", "push"},
	} {
		en := find(w.profile, w.op, "")
		if en.Result != "ok" || !slices.Contains(authagent, en.Exe) || en.ParentExe != self {
			t.Errorf("%s %s: %+v; want ok, by authagent run by this test", w.profile, w.op, en)
		}
	}
	token := find("hub", "credential", "")
	if token.Result != "ok" || token.Exe != resolve(authagentBin) || token.ParentExe != self || token.PID == 0 {
		t.Errorf("authagent token hub: %+v; want ok, exe %s, parent %s", token, resolve(authagentBin), self)
	}
	git := find("forge", "credential", "git.example.com")
	if git.Result != "ok" || git.Exe != resolve(authagentBin) || filepath.Base(git.ParentExe) != "git" {
		t.Errorf("git credential fill: %+v; want ok, exe %s (the helper), parent git", git, resolve(authagentBin))
	}
	curl := find("hub", "credential", apiHost)
	if curl.Result != "ok" || !slices.Contains(authagent, curl.Exe) || curl.ParentExe != self {
		t.Errorf("authagent curl: %+v; want ok, by authagent run by this test", curl)
	}

	path := filepath.Join(e.vars["XDG_STATE_HOME"], "authagent", "audit.log")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{secret, secret2, pushed, "private-repo", "/private/path", "query-value"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the audit log holds %q:\n%s", leak, b)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode: %v, %v; want 0600", fi.Mode(), err)
	}

	hub := auditEntries(t, e, "--profile", "hub")
	if len(hub) != 4 {
		t.Errorf("--profile hub: %d entries, want 4 (put, set_secret, token, curl): %+v", len(hub), hub)
	}
	for _, en := range hub {
		if en.Profile != "hub" {
			t.Errorf("--profile hub returned %+v", en)
		}
	}
	if got := auditEntries(t, e, "--since", "2099-01-01T00:00:00Z"); len(got) != 0 {
		t.Errorf("--since in the future: %+v, want none", got)
	}
	table := runOK(t, e, "", "audit", "--profile", "forge", "--since", "1h").stdout
	if !strings.Contains(table, "git.example.com") || !strings.Contains(table, "via git") {
		t.Errorf("authagent audit --profile forge: want the git helper's line, via git:\n%s", table)
	}
}
