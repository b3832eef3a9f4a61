package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCanaryNeverLeaks gives a profile a unique canary as its secret and looks for it
// everywhere a secret must never be: logs, list and status output, the config file, error
// messages, the argv of every process and the agent's environment.
func TestCanaryNeverLeaks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	secret := canary(t)

	scan := watchCmdlines(t, secret)

	addAPIKey(t, e, "hub", secret, hubFlags()...)
	if got := runOK(t, e, "", "header", "hub").stdout; got != wantHubHeaderLines(secret) {
		t.Fatalf("authagent header hub = %q, want the hub headers", got)
	}
	runOK(t, e, "", "token", "hub")
	runOK(t, e, "", "exec", "hub", "--", "sh", "-c", `test -n "$AUTHAGENT_TOKEN" && sleep 0.2`)
	curlCredential(t, e, "/v1/profiles/hub/credential")

	outputs := map[string]string{}
	for _, args := range [][]string{{"list"}, {"list", "--json"}, {"status"}, {"status", "--json"}} {
		r := runOK(t, e, "", args...)
		outputs["authagent "+strings.Join(args, " ")] = r.stdout + r.stderr
	}
	if out := outputs["authagent list"]; !strings.Contains(out, "hub") {
		t.Errorf("authagent list does not show hub:\n%s", out)
	}

	// Requests that fail: the secret is in them or the profile holds it, never in the answer.
	failing := []struct {
		name, method, path, body string
	}{
		{"host not allowed", "GET", "/v1/profiles/hub/credential?url=" + url.QueryEscape("https://evil.example.org/"), ""},
		{"bad header name", "PUT", "/v1/profiles/hub", `{"provider":"apikey","headers":{"X Bad":"{secret}"},"secret":"` + secret + `"}`},
		{"unknown placeholder", "PUT", "/v1/profiles/hub", `{"provider":"apikey","headers":{"X-Key":"{nope}"},"secret":"` + secret + `"}`},
		{"unknown provider", "PUT", "/v1/profiles/hub2", `{"provider":"nope","secret":"` + secret + `"}`},
		{"unknown field", "PUT", "/v1/profiles/hub2", `{"provider":"apikey","secret":"` + secret + `","bogus":1}`},
		{"wrong type", "PUT", "/v1/profiles/hub2", `{"provider":"apikey","secret":["` + secret + `"]}`},
		{"truncated JSON", "PUT", "/v1/profiles/hub2", `{"provider":"apikey","secret":"` + secret},
		{"bad profile name", "PUT", "/v1/profiles/-bad", `{"provider":"apikey","secret":"` + secret + `"}`},
		{"two values", "PUT", "/v1/profiles/hub2", `{"provider":"apikey"} {"secret":"` + secret + `"}`},
	}
	for _, f := range failing {
		var body io.Reader
		if f.body != "" {
			body = strings.NewReader(f.body)
		}
		status, got := apiDo(t, e, f.method, f.path, body)
		if status < 400 {
			t.Errorf("%s: %s %s answered %d, want an error: %s", f.name, f.method, f.path, status, got)
		}
		outputs["API error for "+f.name] = string(got)
	}
	for _, args := range [][]string{
		{"add", "hub2", "--provider", "apikey", "--header", "X Bad={secret}"},
		{"add", "--provider", "apikey", "--", "-bad"},
		{"add", "hub2", "--provider", "nope", "--secret"},
		{"add", "hub2", "--provider", "apikey", "--mode", "sigv4"},
	} {
		r := run(t, e, secret, args...)
		if r.code == 0 {
			t.Errorf("authagent %s succeeded, want an error: %s", strings.Join(args, " "), r)
		}
		outputs["authagent "+strings.Join(args, " ")] = r.stdout + r.stderr
	}
	// The failed redefinitions left hub as it was.
	if got := runOK(t, e, "", "header", "hub").stdout; got != wantHubHeaderLines(secret) {
		t.Errorf("after failed requests, authagent header hub = %q, want the hub headers", got)
	}

	// While the agent runs, its environment is free of it too.
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", a.pid))
	switch {
	case err == nil:
		if bytes.Contains(environ, []byte(secret)) {
			t.Errorf("the secret is in the agent's /proc/%d/environ", a.pid)
		}
	case os.Getuid() != 0 && os.IsPermission(err):
		// The agent made itself non-dumpable: not even its own user can read it.
	default:
		t.Errorf("read the agent's environ: %v", err)
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", a.pid))
	if err != nil {
		t.Errorf("read the agent's limits: %v", err)
	} else if !coreLimitZero(string(limits)) {
		t.Errorf("the agent allows core dumps (RLIMIT_CORE is not 0):\n%s", limits)
	}

	hits := scan()
	a.Stop()

	outputs["agent log"] = a.Log()
	if b, err := os.ReadFile(e.configPath()); err != nil {
		t.Errorf("read config: %v", err)
	} else {
		outputs["config file "+e.configPath()] = string(b)
	}
	for _, f := range stateFiles(t, e) {
		b, err := os.ReadFile(f)
		if err == nil {
			outputs["file "+f] = string(b)
		}
	}
	for where, text := range outputs {
		if strings.Contains(text, secret) {
			t.Errorf("the secret leaked into %s:\n%s", where, text)
		}
	}
	for _, h := range hits {
		t.Errorf("the secret is in the argv of a process: %s", h)
	}
}

// watchCmdlines reads /proc/*/cmdline over and over until the returned function is called,
// which returns the processes (pid and program) whose argv held s.
func watchCmdlines(t *testing.T, s string) func() []string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	hits := map[string]bool{}
	scans := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range paths {
				b, err := os.ReadFile(p)
				if err != nil || !bytes.Contains(b, []byte(s)) {
					continue
				}
				prog, _, _ := bytes.Cut(b, []byte{0})
				mu.Lock()
				hits[fmt.Sprintf("%s (%s)", filepath.Dir(p), prog)] = true
				mu.Unlock()
			}
			mu.Lock()
			scans++
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	stop := func() []string {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if scans == 0 {
			t.Error("/proc was never scanned")
		}
		var out []string
		for h := range hits {
			out = append(out, h)
		}
		return out
	}
	t.Cleanup(func() { stop() })
	return stop
}

// coreLimitZero reports whether /proc/PID/limits says no core dumps.
func coreLimitZero(limits string) bool {
	for line := range strings.Lines(limits) {
		if strings.HasPrefix(line, "Max core file size") {
			f := strings.Fields(strings.TrimPrefix(line, "Max core file size"))
			return len(f) >= 2 && f[0] == "0" && f[1] == "0"
		}
	}
	return false
}

// stateFiles lists every regular file under the env's config and state directories.
func stateFiles(t *testing.T, e *env) []string {
	t.Helper()
	var files []string
	for _, root := range []string{e.vars["XDG_CONFIG_HOME"], e.vars["XDG_STATE_HOME"]} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
	}
	return files
}
