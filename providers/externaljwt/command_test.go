//go:build unix

package externaljwt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/tokencmd"
)

// helperEnv, when set, makes the test binary a stand-in agent (see TestMain): it runs the
// command in helperEnv's value with Fetch and blocks there until it is killed.
const helperEnv = "AUTHAGENT_EXTERNALJWT_TEST_AGENT"

func TestMain(m *testing.M) {
	if cmd := os.Getenv(helperEnv); cmd != "" {
		os.Exit(standInAgent(cmd))
	}
	os.Exit(m.Run())
}

func standInAgent(cmd string) int {
	prov, err := New(&providers.ProfileConfig{Provider: Name, Command: []string{cmd}, Timeout: providers.Duration(time.Minute),
		Env: map[string]string{"SELF": os.Getenv("SELF"), "CHILD": os.Getenv("CHILD")}},
		providers.Env{Name: "ci", Secrets: &memSecrets{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "stand-in agent:", err)
		return 1
	}
	_, err = prov.Fetch(context.Background())
	fmt.Fprintln(os.Stderr, "stand-in agent: Fetch returned:", err)
	return 1
}

// familyScript starts a child that sleeps, then sleeps itself; it writes its own pid to
// $SELF and the child's to $CHILD (each file appears whole, once the child runs).
const familyScript = `sleep 60 &
echo $! > "$CHILD.tmp" && mv "$CHILD.tmp" "$CHILD"
echo $$ > "$SELF.tmp" && mv "$SELF.tmp" "$SELF"
sleep 60
wait`

// family is the pid files of a familyScript run.
type family struct{ self, child string }

func newFamily(t *testing.T) family {
	dir := t.TempDir()
	return family{self: filepath.Join(dir, "self"), child: filepath.Join(dir, "child")}
}

func (f family) env() map[string]string { return map[string]string{"SELF": f.self, "CHILD": f.child} }

// pids waits until the script has written both pid files and returns the pids.
func (f family) pids(t *testing.T) (self, child int) {
	t.Helper()
	read := func(path string) int {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if self, child = read(f.self), read(f.child); self > 0 && child > 0 {
			return self, child
		}
		if time.Now().After(deadline) {
			t.Fatal("the command did not write its pid files within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid is a live process: not gone, and (on Linux, where the
// container's init may never reap it) not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	if runtime.GOOS == "linux" {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		_, rest, _ := strings.Cut(string(stat), ") ")
		return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
	}
	return true
}

// wantDead fails unless every pid dies within 30 s (a hang detector, not a speed goal).
func wantDead(t *testing.T, what string, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("%s: process %d is still running", what, pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestFetchCommandCancelKillsGroup(t *testing.T) {
	f := newFamily(t)
	p := newProvider(t, &providers.ProfileConfig{Command: []string{script(t, familyScript)}, Env: f.env(),
		Timeout: providers.Duration(time.Minute)}, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := p.Fetch(ctx)
		done <- err
	}()
	self, child := f.pids(t)
	if !alive(self) || !alive(child) {
		t.Fatalf("the command (%d) or its child (%d) is not running before the cancel", self, child)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Fetch: got %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Fetch did not return within 20s of the cancel")
	}
	wantDead(t, "after the fetch was cancelled", self, child)
}

func TestStopKillsCommandInFlight(t *testing.T) {
	f := newFamily(t)
	stop, stopNow := context.WithCancel(t.Context())
	prov, err := NewFactory(stop)(&providers.ProfileConfig{Provider: Name, Command: []string{script(t, familyScript)}, Env: f.env(),
		Timeout: providers.Duration(time.Minute)}, providers.Env{Name: "ci", Secrets: &memSecrets{}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// The fetch's own context never ends: only stop can end the command.
		_, err := prov.Fetch(context.WithoutCancel(t.Context()))
		done <- err
	}()
	self, child := f.pids(t)
	stopNow()
	select {
	case err := <-done:
		if !errors.Is(err, tokencmd.ErrStopping) || !strings.Contains(err.Error(), "the agent is stopping") {
			t.Errorf("Fetch: got %v, want an error saying the agent is stopping", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Fetch did not return within 20s of stop: the command holds up the agent's shutdown")
	}
	wantDead(t, "after stop", self, child)

	// Once stopped, no command is started.
	os.Remove(f.self)
	if _, err := prov.Fetch(t.Context()); !errors.Is(err, tokencmd.ErrStopping) {
		t.Errorf("Fetch after stop: got %v, want an error saying the agent is stopping", err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(f.self); err == nil {
		t.Error("Fetch after stop ran the command")
	}
}

// TestCommandDiesWithAgent kills a process that has a command in flight (the test binary as
// a stand-in agent) with SIGKILL: neither the command nor the child it started may survive.
func TestCommandDiesWithAgent(t *testing.T) {
	f := newFamily(t)
	cmdPath := script(t, familyScript)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	agent := exec.Command(self, "-test.run=^$")
	agent.Env = append(os.Environ(), helperEnv+"="+cmdPath, "SELF="+f.self, "CHILD="+f.child)
	var log strings.Builder
	agent.Stdout, agent.Stderr = &log, &log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	cmdSelf, cmdChild := f.pids(t)
	if err := agent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	agent.Wait()
	wantDead(t, "after the agent was killed", cmdSelf, cmdChild)
	if t.Failed() {
		t.Logf("stand-in agent's output:\n%s", log.String())
	}
}

func TestStderrScrubbedOfKnownSecrets(t *testing.T) {
	const (
		stored  = "Zq7-canary-16chr" // 16 characters: shorter than the heuristic's 20
		pushedT = "pUsh9"            // 5 characters
		envVal  = "e1x"              // 3 characters: scrubbed only where it stands alone
		printed = "tok-prev-2"
	)
	secrets := &memSecrets{M: map[string]string{
		providers.SecretKey:      stored,
		providers.PushedTokenKey: `{"token":"` + pushedT + `"}`,
	}}
	out := filepath.Join(t.TempDir(), "fail")
	cmd := script(t, `if [ -f "$FAIL" ]; then
  echo "vault: secret `+stored+` refused; pushed=`+pushedT+`, previous `+printed+`" >&2
  echo "env `+envVal+` and flex1xyz stay apart" >&2
  exit 1
fi
echo `+printed)
	p := newProvider(t, &providers.ProfileConfig{Command: []string{cmd}, Env: map[string]string{"FAIL": out, "API_PIN": envVal}}, secrets, nil)
	if _, err := p.Fetch(t.Context()); err != nil {
		t.Fatalf("first Fetch: %v", err)
	}
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := p.Fetch(t.Context())
	if err == nil {
		t.Fatal("Fetch: got no error, want the command's failure")
	}
	msg := err.Error()
	for _, s := range []string{stored, pushedT, printed, " " + envVal + " "} {
		if strings.Contains(msg, s) {
			t.Errorf("the error %q contains the secret %q", msg, s)
		}
	}
	for _, w := range []string{"vault: secret [redacted] refused; pushed=[redacted], previous [redacted]", "env [redacted] and flex1xyz stay apart"} {
		if !strings.Contains(msg, w) {
			t.Errorf("the error %q does not contain %q", msg, w)
		}
	}
}

// failingSecrets is a secret store that cannot be read.
type failingSecrets struct{ providers.Secrets }

func (failingSecrets) Get(context.Context, string) (string, error) {
	return "", errors.New("the keyring is locked")
}

func TestStderrHiddenWhenSecretsUnknown(t *testing.T) {
	cmd := script(t, `echo "refused Zq7-canary-16chr" >&2; exit 1`)
	p := newProvider(t, &providers.ProfileConfig{Command: []string{cmd}}, failingSecrets{&memSecrets{}}, nil)
	_, err := p.Fetch(t.Context())
	if err == nil || strings.Contains(err.Error(), "canary") || !strings.Contains(err.Error(), "stderr is not shown") {
		t.Errorf("Fetch: got %v, want the failure without its stderr", err)
	}
}
