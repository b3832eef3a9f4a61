package tests

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// handEdited is a config file as a person writes it: comments, their own key order and
// quoting, a blank line or two.
const handEdited = `# authagent config, kept in my dotfiles
secret_store = "keyring"   # secrets stay in gnome-keyring

# The hub API; key id from the admin console.
[profile.hub]
hosts = ["api.example.com"]    # only there
key_id = "a1b2"
headers = { "X-API-Key" = "{secret}", "X-API-Key-ID" = "{key_id}" }
provider = "apikey"
`

func TestListAndHandEditsSurvive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, hubFlags()...)
	// The agent builds the headers right after add, in the background.
	waitFor(t, "hub to become valid", func() bool {
		l := listProfiles(t, e)
		return len(l.Profiles) == 1 && l.Profiles[0].State == "valid"
	})

	r := runOK(t, e, "", "list")
	rows := listRows(r.stdout)
	if len(rows) != 2 || strings.Join(rows[0][:3], " ") != "NAME PROVIDER STATE" {
		t.Fatalf("authagent list: want a NAME PROVIDER STATE header and one row:\n%s", r)
	}
	if got, want := rows[1][:3], []string{"hub", "apikey", "valid"}; !cmp.Equal(got, want) {
		t.Errorf("authagent list row = %v, want %v:\n%s", got, want, r.stdout)
	}
	l := listProfiles(t, e)
	if len(l.Profiles) != 1 {
		t.Fatalf("list --json: %d profiles, want 1: %+v", len(l.Profiles), l)
	}
	if p := l.Profiles[0]; p.Name != "hub" || p.Provider != "apikey" || p.State != "valid" || !cmp.Equal(p.Hosts, []string{"api.example.com"}) {
		t.Errorf("list --json: %+v, want hub, apikey, valid, hosts [api.example.com]", p)
	}

	// The same profile, edited by hand; the agent picks it up on SIGHUP.
	writeConfig(t, e, handEdited)
	a.Signal(syscall.SIGHUP)
	a.waitLog("saying the config was reloaded", func(line string) bool {
		return strings.Contains(line, "reloaded")
	})

	addAPIKey(t, e, "other", "other-secret", "--header", "X-Other={secret}", "--host", "other.example.com")
	got := readConfig(t, e)
	if !strings.HasPrefix(got, handEdited) {
		t.Errorf("after `add other` the hand-edited part of the config changed (-want +got):\n%s", cmp.Diff(handEdited, got))
	}
	if !strings.Contains(got, "[profile.other]") {
		t.Errorf("after `add other` the config has no [profile.other]:\n%s", got)
	}
	if got := listProfiles(t, e).names(); !cmp.Equal(got, []string{"hub", "other"}) {
		t.Errorf("list after add = %v, want [hub other]", got)
	}
	if got := runOK(t, e, "", "header", "other").stdout; got != "X-Other: other-secret\n" {
		t.Errorf("authagent header other = %q", got)
	}

	runOK(t, e, "", "remove", "other")
	if got := readConfig(t, e); got != handEdited {
		t.Errorf("after `remove other` the config is not the hand-edited file again (-want +got):\n%s", cmp.Diff(handEdited, got))
	}
	if got := listProfiles(t, e).names(); !cmp.Equal(got, []string{"hub"}) {
		t.Errorf("list after remove = %v, want [hub]", got)
	}
	if r := run(t, e, "", "token", "other"); r.code != 1 {
		t.Errorf("authagent token other after remove: exit %d, want 1: %s", r.code, r)
	}
	if got := runOK(t, e, "", "header", "hub").stdout; got != wantHubHeaderLines(secret) {
		t.Errorf("authagent header hub after the edits = %q, want %q", got, wantHubHeaderLines(secret))
	}
}

func TestSIGHUPReload(t *testing.T) {
	t.Parallel()
	sess := startSession(t)
	e := newEnv(t, sess)
	a := startAgent(t, e)
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, hubFlags()...)

	// A profile added by hand, whose secret is already in the keyring where the agent
	// keeps it (service "authagent", account PROFILE/secret).
	extraSecret := canary(t)
	sess.keyringStore(t, extraSecret, "service", "authagent", "username", "extra/secret")
	good := readConfig(t, e) + `
[profile.extra]
provider = "apikey"
key_id = "k-extra"
headers = { "X-Extra" = "{key_id}:{secret}" }
hosts = ["extra.example.com"]
`
	writeConfig(t, e, good)
	a.Signal(syscall.SIGHUP)
	waitFor(t, "list shows extra after SIGHUP", func() bool {
		return cmp.Equal(listProfiles(t, e).names(), []string{"extra", "hub"})
	})
	if got, want := runOK(t, e, "", "header", "extra").stdout, "X-Extra: k-extra:"+extraSecret+"\n"; got != want {
		t.Errorf("authagent header extra = %q, want %q", got, want)
	}
	if got := curlCredential(t, e, "/v1/credential?url="+url.QueryEscape("https://extra.example.com/")); got.Profile != "extra" {
		t.Errorf("credential for extra.example.com is of profile %q, want extra", got.Profile)
	}

	// A broken config: the agent keeps the old one and says where the problem is.
	broken := good + "colour = \"red\"\n"
	line := strings.Count(broken, "\n")
	writeConfig(t, e, broken)
	a.Signal(syscall.SIGHUP)
	logLine := a.waitLog("about the unknown key colour", func(l string) bool {
		return strings.Contains(l, "colour")
	})
	for _, want := range []string{e.configPath(), "profile.extra.colour"} {
		if !strings.Contains(logLine, want) {
			t.Errorf("the log line about the broken config does not name %q:\n%s", want, logLine)
		}
	}
	if !strings.Contains(logLine, ":"+strconv.Itoa(line)) && !strings.Contains(logLine, "line="+strconv.Itoa(line)) {
		t.Errorf("the log line about the broken config does not name line %d:\n%s", line, logLine)
	}
	if got := listProfiles(t, e).names(); !cmp.Equal(got, []string{"extra", "hub"}) {
		t.Errorf("list after a broken reload = %v, want the old [extra hub]", got)
	}
	if got := runOK(t, e, "", "header", "hub").stdout; got != wantHubHeaderLines(secret) {
		t.Errorf("authagent header hub after a broken reload = %q", got)
	}
	if got := runOK(t, e, "", "header", "extra").stdout; got != "X-Extra: k-extra:"+extraSecret+"\n" {
		t.Errorf("authagent header extra after a broken reload = %q", got)
	}

	// Fixed again: the profile renamed by hand is replaced, and hub's changed headers are
	// served at once.
	if !strings.Contains(good, "X-API-Key-ID") {
		t.Fatalf("the config written by `add` does not hold the header X-API-Key-ID:\n%s", good)
	}
	fixed := strings.Replace(good, "[profile.extra]", "[profile.gone]", 1)
	fixed = strings.Replace(fixed, "X-API-Key-ID", "X-Key-Id", 1)
	writeConfig(t, e, fixed)
	a.Signal(syscall.SIGHUP)
	waitFor(t, "list shows gone instead of extra after SIGHUP", func() bool {
		return cmp.Equal(listProfiles(t, e).names(), []string{"gone", "hub"})
	})
	if got, want := runOK(t, e, "", "header", "hub").stdout, "X-API-Key: "+secret+"\nX-Key-Id: a1b2\n"; got != want {
		t.Errorf("authagent header hub after its headers changed by hand = %q, want %q", got, want)
	}
}

// TestConcurrentAdds defines many profiles at once, as a provisioning script might: every
// one ends up in the config file and the keyring, and a new agent serves them all.
func TestConcurrentAdds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	const n = 16
	var wg sync.WaitGroup
	results := make([]result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("p%02d", i)
			results[i], errs[i] = runCmd(e.environ(), e.dir, "secret-"+name, authagentBin, "add", name, "--provider", "apikey", "--header", "X-Key={secret}")
		}()
	}
	wg.Wait()
	var want []string
	for i, r := range results {
		want = append(want, fmt.Sprintf("p%02d", i))
		if errs[i] != nil || r.code != 0 {
			t.Errorf("add p%02d: %v %s", i, errs[i], r)
		}
	}
	if got := listProfiles(t, e).names(); !cmp.Equal(got, want) {
		t.Errorf("list after %d concurrent adds = %v", n, got)
	}
	a.Stop()
	startAgent(t, e)
	if got := listProfiles(t, e).names(); !cmp.Equal(got, want) {
		t.Errorf("list after a restart = %v, want %v\nconfig:\n%s", got, want, readConfig(t, e))
	}
	for _, name := range want {
		if got := runOK(t, e, "", "header", name).stdout; got != "X-Key: secret-"+name+"\n" {
			t.Errorf("authagent header %s = %q", name, got)
		}
	}
}

// listRows splits `authagent list` output into rows of fields.
func listRows(out string) [][]string {
	var rows [][]string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 3 {
			rows = append(rows, f)
		}
	}
	return rows
}

func readConfig(t testing.TB, e *env) string {
	t.Helper()
	b, err := os.ReadFile(e.configPath())
	if err != nil {
		t.Fatalf("read config: %v", err)
	}
	return string(b)
}

func writeConfig(t testing.TB, e *env, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(e.configPath()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.configPath(), []byte(content), 0o600); err != nil {
		t.Fatal(fmt.Errorf("write config: %w", err))
	}
}
