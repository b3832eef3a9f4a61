package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
)

// Goals from issue 2, checked by reading the figures, never by assertions:
//   - a cached credential over a kept-alive socket connection: under 50 µs median;
//   - one `authagent header NAME` process: no slower than `git credential-cache get`
//     against its own daemon (BenchmarkGitCredentialCacheGet, the baseline).

// BenchmarkCredentialKeepAlive asks for a cached credential over one kept-alive connection,
// with the secret in gnome-keyring and in memory: a cached credential costs the same.
func BenchmarkCredentialKeepAlive(b *testing.B) {
	b.Run("keyring", func(b *testing.B) { benchCredential(b, newEnv(b, startSession(b))) })
	b.Run("memory", func(b *testing.B) {
		e := newEnv(b, nil)
		writeConfig(b, e, "secret_store = \"memory\"\n")
		benchCredential(b, e)
	})
}

func benchCredential(b *testing.B, e *env) {
	startAgent(b, e)
	addAPIKey(b, e, "hub", canary(b), hubFlags()...)
	c := &ipc.Client{Socket: e.sock()} // keeps its connection alive between requests
	get := func() {
		if _, err := c.Credential(context.Background(), "hub"); err != nil {
			b.Fatal(err)
		}
	}
	get() // the connection and the cache are warm from here on
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		get()
		lat = append(lat, time.Since(start))
	}
	reportMedian(b, lat, time.Microsecond, "µs-median")
}

// BenchmarkHeaderProcess runs the one-shot `authagent header hub` process.
func BenchmarkHeaderProcess(b *testing.B) {
	e := newEnv(b, startSession(b))
	startAgent(b, e)
	addAPIKey(b, e, "hub", canary(b), hubFlags()...)
	benchProcess(b, e.environ(), e.dir, "", authagentBin, "header", "hub")
}

// BenchmarkGitCredentialCacheGet is the baseline for BenchmarkHeaderProcess: one
// `git credential-cache get` against its own daemon, holding one credential.
func BenchmarkGitCredentialCacheGet(b *testing.B) {
	needTools(b, "git")
	dir := shortTempDir(b)
	sock := filepath.Join(dir, "cache.sock")
	environ := []string{"HOME=" + dir, "PATH=" + filepath.Dir(authagentBin) + ":/usr/local/bin:/usr/bin:/bin"}
	store := "protocol=https\nhost=api.example.com\nusername=oauth2\npassword=" + canary(b) + "\n\n"
	r := runIn(b, environ, dir, store, "git", "credential-cache", "--socket", sock, "--timeout", "600", "store")
	if r.code != 0 {
		b.Fatalf("git credential-cache store: %s", r)
	}
	b.Cleanup(func() { runCmd(environ, dir, "", "git", "credential-cache", "--socket", sock, "exit") })
	benchProcess(b, environ, dir, "protocol=https\nhost=api.example.com\n\n", "git", "credential-cache", "--socket", sock, "get")
}

func benchProcess(b *testing.B, environ []string, dir, stdin, name string, args ...string) {
	b.Helper()
	var lat []time.Duration
	for b.Loop() {
		cmd := exec.Command(name, args...)
		cmd.Env, cmd.Dir = environ, dir
		cmd.Stdin = strings.NewReader(stdin)
		start := time.Now()
		out, err := cmd.Output()
		lat = append(lat, time.Since(start))
		if err != nil || len(out) == 0 {
			b.Fatalf("%s %v: %v, output %q", name, args, err, out)
		}
	}
	reportMedian(b, lat, time.Millisecond, "ms-median")
}

func reportMedian(b *testing.B, lat []time.Duration, unit time.Duration, name string) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/float64(unit), name)
}

// BenchmarkIdleAgentWakeups counts how often an idle agent process is scheduled at all:
// the context switches of all its threads over ten idle seconds, per minute. Nothing in the
// agent polls; what remains is the Go runtime's own housekeeping (sysmon backing off, the
// forced GC every two minutes). Goal: nothing besides due refreshes.
func BenchmarkIdleAgentWakeups(b *testing.B) {
	e := newEnv(b, startSession(b))
	a := startAgent(b, e)
	addAPIKey(b, e, "hub", canary(b), hubFlags()...)
	time.Sleep(time.Second) // let start-up settle
	var switches int64
	var idle time.Duration
	for b.Loop() {
		before := contextSwitches(b, a.pid)
		start := time.Now()
		time.Sleep(10 * time.Second)
		idle += time.Since(start)
		switches += contextSwitches(b, a.pid) - before
	}
	b.ReportMetric(float64(switches)/idle.Minutes(), "wakeups/min")
}

// contextSwitches sums voluntary and involuntary context switches over a process's threads.
func contextSwitches(b *testing.B, pid int) int64 {
	b.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("no threads of pid %d: %v", pid, err)
	}
	var n int64
	for _, path := range tasks {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // a thread that just ended
		}
		for line := range strings.Lines(string(data)) {
			if name, val, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(name, "ctxt_switches") {
				v, _ := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
				n += v
			}
		}
	}
	return n
}
