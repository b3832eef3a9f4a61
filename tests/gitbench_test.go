package tests

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkGitCredentialFill is one `git credential fill`, as git runs it before each
// authenticated command, with the token cached: through authagent (as `authagent git setup`
// configures it, and as the git-credential-authagent link) and through git's own
// credential-cache daemon, the baseline, in the same run. "paired" alternates authagent
// and credential-cache in one loop, so that load from elsewhere on the machine hits both
// alike, and reports the ratio of the medians. Goal (issue 5): ratio 1.0 or better; read
// it off the figures, it is never asserted.
func BenchmarkGitCredentialFill(b *testing.B) {
	needTools(b, "git")
	const fill = "protocol=https\nhost=git.example.com\n\n"
	e := newEnv(b, startSession(b))
	startAgent(b, e)
	addPushProfile(b, e, "forge", "--host", "git.example.com")
	pushToken(b, e, "forge", canary(b))

	// authagent as `authagent git setup` configures it: "!'/path/authagent' git-credential".
	viaSetup := gitEnviron(b, e)
	runOK(b, e, "", "git", "setup", "--host", "git.example.com")

	// authagent found by name: credential.helper = authagent, git-credential-authagent on PATH.
	le := newEnv(b, e.sess)
	le.vars["AUTHAGENT_SOCK"] = e.sock()
	le.vars["HOME"] = filepath.Join(le.dir, "home") // its own global git config
	_, viaLink := linkAs(b, gitEnviron(b, le), "git-credential-authagent")
	if r := runIn(b, viaLink, le.dir, "", "git", "config", "--global", "credential.https://git.example.com.helper", "authagent"); r.code != 0 {
		b.Fatalf("git config: %s", r)
	}

	// The baseline: git's credential-cache daemon holding the credential.
	dir := shortTempDir(b)
	sock := filepath.Join(dir, "cache.sock")
	viaCache := []string{"HOME=" + dir, "PATH=" + filepath.Dir(authagentBin) + ":/usr/local/bin:/usr/bin:/bin",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "LANG=C.UTF-8"}
	if r := runIn(b, viaCache, dir, "", "git", "config", "--global", "credential.helper", "cache --socket "+sock+" --timeout 3600"); r.code != 0 {
		b.Fatalf("git config: %s", r)
	}
	b.Cleanup(func() { runCmd(viaCache, dir, "", "git", "credential-cache", "--socket", sock, "exit") })
	if r := runIn(b, viaCache, dir, "protocol=https\nhost=git.example.com\nusername=oauth2\npassword="+canary(b)+"\n\n", "git", "credential", "approve"); r.code != 0 {
		b.Fatalf("git credential approve: %s", r)
	}

	fillOnce := func(b *testing.B, environ []string, dir string) time.Duration {
		b.Helper()
		cmd := exec.Command("git", "credential", "fill")
		cmd.Env, cmd.Dir = environ, dir
		cmd.Stdin = strings.NewReader(fill)
		start := time.Now()
		out, err := cmd.Output()
		d := time.Since(start)
		if err != nil || !strings.Contains(string(out), "\npassword=") {
			b.Fatalf("git credential fill: %v, output %q", err, out)
		}
		return d
	}
	for _, v := range []struct {
		name    string
		environ []string
		dir     string
	}{{"authagent", viaSetup, e.dir}, {"authagent-link", viaLink, le.dir}, {"credential-cache", viaCache, dir}} {
		b.Run(v.name, func(b *testing.B) {
			fillOnce(b, v.environ, v.dir) // warm
			var lat []time.Duration
			for b.Loop() {
				lat = append(lat, fillOnce(b, v.environ, v.dir))
			}
			reportMedian(b, lat, time.Millisecond, "ms-median")
		})
	}
	b.Run("paired", func(b *testing.B) {
		var agent, cache []time.Duration
		for b.Loop() {
			agent = append(agent, fillOnce(b, viaSetup, e.dir))
			cache = append(cache, fillOnce(b, viaCache, dir))
		}
		reportMedian(b, agent, time.Millisecond, "authagent-ms-median")
		reportMedian(b, cache, time.Millisecond, "cache-ms-median")
		slices.Sort(agent)
		slices.Sort(cache)
		b.ReportMetric(float64(agent[len(agent)/2])/float64(cache[len(cache)/2]), "ratio")
	})
}
