package tests

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// What a newcomer ran into on first use (issue 11), through the built binary.

// headerServer is a loopback HTTP server that answers 200 only to requests carrying want,
// exactly, among their X-API-Key headers and no Authorization header; 401 otherwise.
func headerServer(t *testing.T, want map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range want {
			if r.Header.Get(k) != v {
				http.Error(w, "wrong "+k, http.StatusUnauthorized)
				return
			}
		}
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "unexpected Authorization", http.StatusUnauthorized)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// lineOf is the 1-based number of the first line of the config that holds s.
func lineOf(t *testing.T, config, s string) int {
	t.Helper()
	for i, l := range strings.Split(config, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("no line holds %q in:\n%s", s, config)
	return 0
}

// TestRecoveryHintKeepsProfile is the scenario of issue 11 item 4: with the memory store,
// after a restart, `list` says how to store the secret again; running exactly what it says
// stores the secret and nothing else, so the profile's hosts, key_id and headers survive
// and curl works again.
func TestRecoveryHintKeepsProfile(t *testing.T) {
	t.Parallel()
	needTools(t, "curl")
	e := newEnv(t, nil)
	writeConfig(t, e, "secret_store = \"memory\"\n")
	a := startAgent(t, e)
	secret := canary(t)
	srv := headerServer(t, map[string]string{"X-API-Key-ID": "k-71", "X-API-Key": secret})
	host := strings.TrimPrefix(srv.URL, "http://")
	addAPIKey(t, e, "loc", secret, "--key-id", "k-71", "--header", "X-API-Key-ID={key_id}", "--header", "X-API-Key={secret}", "--host", host)
	runOK(t, e, "", "curl", "--", "-sf", srv.URL+"/x")
	before := readConfig(t, e)

	a.Stop()
	startAgent(t, e)
	r := runOK(t, e, "", "list")
	hint := regexp.MustCompile("`(authagent [^`]*)`").FindStringSubmatch(r.stdout)
	if hint == nil || !strings.Contains(r.stdout, "loc:") {
		t.Fatalf("list after the restart gives no command to run for loc:\n%s", r)
	}
	if hint[1] != "authagent set-secret loc" {
		t.Errorf("list's hint is `%s`, want `authagent set-secret loc`", hint[1])
	}
	args := strings.Fields(strings.TrimPrefix(hint[1], "authagent "))
	runOK(t, e, secret, args...) // exactly the hint, the secret on stdin

	if got := readConfig(t, e); got != before {
		t.Errorf("running the hint changed the config file:\n%s\nwant:\n%s", got, before)
	}
	if got, want := runOK(t, e, "", "header", "loc").stdout, "X-API-Key: "+secret+"\nX-API-Key-ID: k-71\n"; got != want {
		t.Errorf("header loc = %q, want %q", got, want)
	}
	if r := run(t, e, "", "curl", "--", "-sf", srv.URL+"/x"); r.code != 0 || r.stdout != "ok" {
		t.Errorf("curl after running the hint: %s", r)
	}
	l := listProfiles(t, e)
	if len(l.Profiles) != 1 || strings.Join(l.Profiles[0].Hosts, ",") != host || l.Profiles[0].State != "valid" {
		t.Errorf("list after running the hint: %+v, want loc valid with host %s", l, host)
	}

	// Rotation: the new secret is used at once; a profile that does not exist is refused
	// before any secret is read.
	rotated := canary(t)
	runOK(t, e, rotated, "set-secret", "loc")
	if got := runOK(t, e, "", "header", "loc").stdout; !strings.Contains(got, "X-API-Key: "+rotated+"\n") {
		t.Errorf("header loc after a rotation = %q, want the new secret", got)
	}
	if r := run(t, e, "x", "set-secret", "nope"); r.code != 1 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("set-secret of an unknown profile: %s; want exit 1 naming it", r)
	}
	if r := run(t, e, "", "set-secret", "loc"); r.code != 1 || !strings.Contains(r.stderr, "authagent set-secret loc") {
		t.Errorf("set-secret with nothing on stdin: %s; want exit 1 saying how to pipe it", r)
	}
	if r := run(t, e, strings.Repeat("s", 70000), "set-secret", "loc"); r.code != 1 || !strings.Contains(r.stderr, "limit is 65536 bytes") {
		t.Errorf("set-secret of 70000 bytes: %s; want the size limit", r)
	}
	for where, text := range map[string]string{"agent log": a.Log(), "list": runOK(t, e, "", "list").stdout} {
		if strings.Contains(text, secret) || strings.Contains(text, rotated) {
			t.Errorf("the %s holds a secret", where)
		}
	}
}

// TestEveryHintIsACommandThatWorks: the hints the providers give for a missing secret
// name `authagent set-secret NAME`, for every apikey mode.
func TestEveryHintIsACommandThatWorks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	writeConfig(t, e, `secret_store = "memory"
[profile.hdr]
provider = "apikey"
[profile.cc]
provider = "apikey"
mode = "client_credentials"
key_id = "c"
token_url = "https://login.example.com/token"
[profile.sig]
provider = "apikey"
mode = "sigv4"
key_id = "AKID"
region = "us-east-1"
service = "api"
`)
	startAgent(t, e)
	for _, name := range []string{"hdr", "cc", "sig"} {
		var p struct {
			LastError string `json:"last_error"`
		}
		waitFor(t, name+" has its error", func() bool {
			_, body := apiDo(t, e, "GET", "/v1/profiles/"+name, nil)
			return json.Unmarshal(body, &p) == nil && p.LastError != ""
		})
		if !strings.Contains(p.LastError, "`authagent set-secret "+name+"`") {
			t.Errorf("%s: last_error %q does not say `authagent set-secret %s`", name, p.LastError, name)
		}
	}
}

// TestStopAndReload: `authagent reload` and `authagent stop` do what SIGHUP and SIGTERM
// do, for this user's agent only; a failed reload and a secret_store change that waits for
// a restart show in status and list.
func TestStopAndReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	addAPIKey(t, e, "hub", canary(t), hubFlags()...)
	good := readConfig(t, e)

	if r := runOK(t, e, "", "reload"); !strings.Contains(r.stderr, "config reloaded: 1 profiles") {
		t.Errorf("reload of a good file: %s", r)
	}

	writeConfig(t, e, good+"scopess = [\"x\"]\n")
	line := lineOf(t, readConfig(t, e), "scopess")
	where := e.configPath() + ":" + strconv.Itoa(line) + ": profile.hub.scopess"
	r := run(t, e, "", "reload")
	if r.code != 1 || !strings.Contains(r.stderr, where) || !strings.Contains(r.stderr, "keeps the config it had") {
		t.Errorf("reload of a bad file: %s; want exit 1 naming %s", r, where)
	}
	if r := runOK(t, e, "", "status"); !strings.Contains(r.stdout, "config error") || !strings.Contains(r.stdout, where) {
		t.Errorf("status after a failed reload does not show it:\n%s", r)
	}
	if r := runOK(t, e, "", "list"); !strings.Contains(r.stderr, where) || !strings.Contains(r.stdout, "hub") {
		t.Errorf("list after a failed reload does not show it (or lost hub):\n%s", r)
	}
	var st struct {
		ConfigError string `json:"config_error"`
	}
	if err := json.Unmarshal([]byte(runOK(t, e, "", "status", "--json").stdout), &st); err != nil || !strings.Contains(st.ConfigError, where) {
		t.Errorf("status --json config_error = %q, %v", st.ConfigError, err)
	}

	// SIGHUP's failures show the same way; a reload that works clears them.
	writeConfig(t, e, good+"bogus = 1\n")
	a.Signal(syscall.SIGHUP)
	waitFor(t, "the SIGHUP failure in status", func() bool {
		return strings.Contains(runOK(t, e, "", "status").stdout, "profile.hub.bogus")
	})
	writeConfig(t, e, good)
	runOK(t, e, "", "reload")
	if r := runOK(t, e, "", "status"); strings.Contains(r.stdout, "config error") {
		t.Errorf("status after a reload that worked still shows an error:\n%s", r)
	}

	// secret_store changes only with a restart: said by reload, status and list.
	writeConfig(t, e, "secret_store = \"memory\"\n"+good)
	if r := runOK(t, e, "", "reload"); !strings.Contains(r.stderr, "restart") {
		t.Errorf("reload that changes secret_store does not say it needs a restart: %s", r)
	}
	for _, args := range [][]string{{"status"}, {"list"}} {
		r := runOK(t, e, "", args...)
		if !strings.Contains(r.stdout+r.stderr, `secret_store in `+e.configPath()+` is now "memory"`) {
			t.Errorf("%s does not show the secret_store change:\n%s", args[0], r)
		}
	}

	// stop: the agent exits cleanly and removes its socket; then there is nothing to stop.
	r = runOK(t, e, "", "stop")
	if !strings.Contains(r.stderr, "agent pid "+strconv.Itoa(a.pid)+" stopped") {
		t.Errorf("stop: %s", r)
	}
	// stop waits until the pid is gone, which for our child means reaped; the test's own
	// record of the exit (proc.done) is closed by another goroutine just after the reap,
	// which a loaded machine may not have run yet. The pid is asked directly.
	if err := syscall.Kill(a.pid, 0); err == nil {
		t.Errorf("`authagent stop` returned while the agent still runs")
	}
	a.Stop() // checks the clean exit and the socket's removal
	if r := run(t, e, "", "stop"); r.code != 1 || !strings.Contains(r.stderr, "no agent is running") {
		t.Errorf("stop without an agent: %s; want exit 1 saying none runs", r)
	}
}

// TestMistakesGetHelp: typos get a "did you mean", usage errors exit 2 and point to the
// subcommand's own help, and --version works. None of this needs an agent.
func TestMistakesGetHelp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"lsit"}, []string{`unknown command "lsit"`, "did you mean list?", "Run 'authagent --help' for usage."}},
		{[]string{"lsit", "--json"}, []string{`unknown command "lsit"`, "did you mean list?"}},
		{[]string{"git", "setpu"}, []string{"did you mean setup?", "Run 'authagent git --help' for usage."}},
		{[]string{"add", "x", "--provider", "apikye"}, []string{"did you mean apikey?", "Run 'authagent add --help' for usage."}},
		{[]string{"add", "x", "--provider", "nope"}, []string{`--provider "nope"`, "apikey, devicecode, oidc or externaljwt"}},
		{[]string{"add", "x", "--provider", "apikey", "--mode", "sigv5"}, []string{"did you mean sigv4?"}},
		{[]string{"add", "x", "--provder", "apikey"}, []string{"did you mean --provider?", "Run 'authagent add --help' for usage."}},
		{[]string{"list", "--jsn"}, []string{"did you mean --json?", "Run 'authagent list --help' for usage."}},
		{[]string{"curl", "-s", "https://api.example.com/"}, []string{"curl's own arguments go after --", "Run 'authagent curl --help' for usage."}},
		{[]string{"token"}, []string{"Run 'authagent token --help' for usage."}},
	} {
		r := run(t, e, "", tt.args...)
		if r.code != 2 {
			t.Errorf("authagent %s: exit %d, want 2\n%s", strings.Join(tt.args, " "), r.code, r)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("authagent %s: stderr %q does not say %q", strings.Join(tt.args, " "), r.stderr, w)
			}
		}
	}
	v := runOK(t, e, "", "version").stdout
	if got := runOK(t, e, "", "--version").stdout; got != v || !strings.HasPrefix(got, "authagent ") {
		t.Errorf("--version = %q, want what `authagent version` prints, %q", got, v)
	}
}

// TestSmallerEdges: issue 11 item 7, each through the binary.
func TestSmallerEdges(t *testing.T) {
	t.Parallel()
	needTools(t, "git")
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	secret := canary(t)
	srv := headerServer(t, map[string]string{"X-API-Key": secret})
	host := strings.TrimPrefix(srv.URL, "http://")
	addAPIKey(t, e, "loc", secret, "--header", "X-API-Key={secret}", "--host", host)
	gitEnv := gitEnviron(t, e)

	t.Run("an API key stays valid after git's erase", func(t *testing.T) {
		in := "protocol=http\nhost=" + host + "\nusername=oauth2\npassword=" + secret + "\n\n"
		if r := runIn(t, gitEnv, e.dir, in, authagentBin, "git-credential", "erase"); r.code != 0 {
			t.Fatalf("git-credential erase: %s", r)
		}
		a.waitLog("saying the erase reached the agent", func(line string) bool {
			return strings.Contains(line, "credential rejected")
		})
		waitFor(t, "loc valid again", func() bool {
			l := listProfiles(t, e)
			return len(l.Profiles) == 1 && l.Profiles[0].State == "valid"
		})
		if r := runOK(t, e, "", "list"); strings.Contains(r.stdout, "expired") {
			t.Errorf("list shows a key without expiry as expired:\n%s", r.stdout)
		}
	})

	t.Run("exec exits like a shell when the command cannot run", func(t *testing.T) {
		plain := filepath.Join(e.dir, "plain.sh")
		if err := os.WriteFile(plain, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			command string
			code    int
		}{
			{"/nonexistent", 127},
			{"no-such-command-e2e", 127},
			{plain, 126},
			{e.dir, 126},
		} {
			r := run(t, e, "", "exec", "loc", "--", tt.command)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.command) {
				t.Errorf("exec loc -- %s: %s; want exit %d naming the command", tt.command, r, tt.code)
			}
		}
	})

	t.Run("no profile for a host keeps its port", func(t *testing.T) {
		r := run(t, e, "", "curl", "--", "-s", "http://127.0.0.1:9/x")
		if r.code != 1 || !strings.Contains(r.stderr, "host 127.0.0.1:9 ") {
			t.Errorf("curl to a host no profile lists: %s; want the host with its port", r)
		}
	})

	t.Run("add without hosts warns", func(t *testing.T) {
		r := runOK(t, e, canary(t), "add", "nohost", "--provider", "apikey")
		if !strings.Contains(r.stderr, "no hosts") || !strings.Contains(r.stderr, "--host") {
			t.Errorf("add without --host: %s; want a warning that says to add --host", r)
		}
		if r := runOK(t, e, canary(t), "add", "withhost", "--provider", "apikey", "--host", "w.example.com"); strings.Contains(r.stderr, "no hosts") {
			t.Errorf("add with --host warns about hosts: %s", r)
		}
	})

	t.Run("remove takes out its git helper entries and no others", func(t *testing.T) {
		addAPIKey(t, e, "gone", canary(t), "--host", "gone.example.com", "--host", "shared.example.com")
		addAPIKey(t, e, "stays", canary(t), "--host", "shared.example.com")
		runOK(t, e, "", "git", "setup")
		gitOK(t, gitEnv, e.dir, "config", "--global", "credential.https://mine.example.com.helper", "store")
		runOK(t, e, canary(t), "add", "mine", "--provider", "apikey", "--host", "mine.example.com")
		r := runOK(t, e, "", "remove", "gone")
		if !strings.Contains(r.stderr, "credential.https://gone.example.com.helper removed") {
			t.Errorf("remove gone: %s; want it to say the helper entry went", r)
		}
		if r := runIn(t, gitEnv, e.dir, "", "git", "config", "--global", "--get-all", "credential.https://gone.example.com.helper"); r.code != 1 {
			t.Errorf("after remove, gone's host still has helper entries: %s", r)
		}
		if r := gitOK(t, gitEnv, e.dir, "config", "--global", "--get-all", "credential.https://shared.example.com.helper"); !strings.Contains(r.stdout, "git-credential") {
			t.Errorf("remove took out the entries of a host another profile lists: %s", r)
		}
		runOK(t, e, "", "remove", "mine")
		if r := gitOK(t, gitEnv, e.dir, "config", "--global", "--get-all", "credential.https://mine.example.com.helper"); r.stdout != "store\n" {
			t.Errorf("remove took out a helper that authagent did not write: %q", r.stdout)
		}
	})

	t.Run("remove names the line of an unrelated bad key", func(t *testing.T) {
		addAPIKey(t, e, "zz", canary(t), "--host", "zz.example.com")
		config := readConfig(t, e) + "scopess = [\"x\"]\n" // in zz's table, the file's last
		writeConfig(t, e, config)
		line := lineOf(t, config, "scopess")
		r := run(t, e, "", "remove", "withhost")
		want := e.configPath() + ":" + strconv.Itoa(line) + ": profile.zz.scopess"
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("remove with a bad key elsewhere: %s; want exit 1 naming %s", r, want)
		}
	})
}

// TestGitSetupFromConfigFile: with no agent running, `git setup` takes the hosts from the
// config file.
func TestGitSetupFromConfigFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	gitEnv := gitEnviron(t, e)
	writeConfig(t, e, "[profile.a]\nprovider = \"apikey\"\nhosts = [\"a.example.com\"]\n[profile.b]\nprovider = \"devicecode\"\nissuer = \"https://login.example.com\"\nclient_id = \"c\"\nhosts = [\"b.example.com\", \"a.example.com\"]\n")
	r := runOK(t, e, "", "git", "setup")
	if !strings.Contains(r.stderr, e.configPath()) {
		t.Errorf("git setup without an agent does not say where the hosts came from: %s", r)
	}
	for _, h := range []string{"a.example.com", "b.example.com"} {
		if r := gitOK(t, gitEnv, e.dir, "config", "--global", "--get-all", "credential.https://"+h+".helper"); !strings.Contains(r.stdout, "git-credential") {
			t.Errorf("no helper for %s: %q", h, r.stdout)
		}
	}
}

// TestStartShowsWhyTheAgentExited: `start` with a broken config prints the agent's error,
// not only where its log is.
func TestStartShowsWhyTheAgentExited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	writeConfig(t, e, "secret_store = \"memory\"\n[profile.x]\nprovider = \"apikey\"\nscopess = [\"a\"]\n")
	r := run(t, e, "", "start")
	want := e.configPath() + ":4: profile.x.scopess: unknown key"
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("start with a broken config: %s; want exit 1 and %q", r, want)
	}
}

// TestReadmeAndLicense: the README's events example streams (curl -N), it signals no
// other user's agents, and it names the license the LICENSE file holds.
func TestReadmeAndLicense(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	license, err := os.ReadFile(filepath.Join("..", "LICENSE"))
	if err != nil {
		t.Fatalf("no LICENSE file: %v", err)
	}
	if !strings.Contains(string(license), "Apache License") || !strings.Contains(string(license), "Version 2.0, January 2004") {
		t.Errorf("LICENSE is not the Apache License 2.0")
	}
	if !strings.Contains(string(readme), "Apache-2.0") || !strings.Contains(string(readme), "LICENSE") {
		t.Errorf("README.md does not say the license is Apache-2.0, in LICENSE")
	}
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.Contains(line, "/v1/events") && strings.Contains(line, "curl ") && !strings.Contains(line, "curl -N") {
			t.Errorf("README events example without curl -N (curl would buffer the stream): %s", line)
		}
		if strings.Contains(line, "pkill") {
			t.Errorf("README signals processes by name, every user's agents with them: %s", line)
		}
	}
}
