package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// silentSecretService owns org.freedesktop.secrets on a bus and never answers a method
// call: a Secret Service whose unlock prompt nobody completes.
type silentSecretService struct {
	calls chan dbus.ObjectPath // the object of each call received, while there is room
	quit  chan struct{}        // closed when the test ends, to let the held calls go
}

// LookupObject holds every call: godbus handles each one in a goroutine of its own and
// replies only once this returns.
func (s *silentSecretService) LookupObject(path dbus.ObjectPath) (dbus.ServerObject, bool) {
	select {
	case s.calls <- path:
	default:
	}
	<-s.quit
	return nil, false
}

func startSilentSecretService(t *testing.T, addr string) *silentSecretService {
	t.Helper()
	s := &silentSecretService{calls: make(chan dbus.ObjectPath, 16), quit: make(chan struct{})}
	t.Cleanup(func() { close(s.quit) }) // after the connection is closed
	conn, err := dbus.Connect(addr, dbus.WithHandler(s))
	if err != nil {
		t.Fatalf("connect to the test bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ownName(t, conn, "org.freedesktop.secrets")
	return s
}

// startedPID finds the pid in what `authagent start` prints ("echo Agent pid 123;").
func startedPID(out string) (int, bool) {
	m := regexp.MustCompile(`Agent pid (\d+);`).FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	pid, err := strconv.Atoi(m[1])
	return pid, err == nil && pid > 0
}

// The agent answers at once while a keyring that never answers is being checked, says so,
// and says the keyring may be locked once the check times out.
func TestStartWithSilentKeyring(t *testing.T) {
	t.Parallel()
	addr := startBus(t)
	svc := startSilentSecretService(t, addr)
	e := newEnv(t, nil).with("DBUS_SESSION_BUS_ADDRESS", addr)
	logPath := filepath.Join(e.vars["XDG_STATE_HOME"], "authagent", "agent.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("agent log:\n%s", b)
		}
	})

	t.Cleanup(func() {
		// Whether start succeeded or not: nothing it launched may outlive the test.
		if pid := serveProcess(e.sock()); pid != 0 {
			stopDetached(t, pid)
		}
	})
	r := run(t, e, "", "start")
	if r.code != 0 {
		t.Fatalf("authagent start with a keyring that never answers: %s", r)
	}
	pid, ok := startedPID(r.stdout)
	if !ok {
		t.Fatalf("authagent start printed no pid:\n%s", r)
	}

	st := agentStatus(t, e)
	if st.PID != pid {
		t.Errorf("status answers from pid %d, want the agent start launched (%d)", st.PID, pid)
	}
	if st.SecretStore.Kind != "keyring" {
		t.Errorf("status while the keyring is checked: secret store %+v, want kind keyring", st.SecretStore)
	}
	for _, want := range []string{"not answered yet", "locked", "unlock"} {
		if !strings.Contains(st.SecretStore.Warning, want) {
			t.Errorf("status while the keyring is checked: warning %q, want it to mention %q", st.SecretStore.Warning, want)
		}
	}
	if out := runOK(t, e, "", "status").stdout; !strings.Contains(out, "warning: "+st.SecretStore.Warning) {
		t.Errorf("authagent status does not show the warning %q:\n%s", st.SecretStore.Warning, out)
	}
	if r := runOK(t, e, "", "list"); !strings.Contains(r.stderr, st.SecretStore.Warning) {
		t.Errorf("authagent list does not show the warning %q:\n%s", st.SecretStore.Warning, r)
	}
	select {
	case path := <-svc.calls:
		t.Logf("the agent called the silent Secret Service at %s", path)
	case <-time.After(15 * time.Second):
		t.Fatal("the agent never called the Secret Service on the test bus")
	}

	// The probe gives up after agent.DefaultKeyringTimeout (15s) and keeps the keyring.
	deadline := time.Now().Add(45 * time.Second)
	for {
		st = agentStatus(t, e)
		if !strings.Contains(st.SecretStore.Warning, "not answered yet") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the secret store is still being checked after 45s: %+v", st.SecretStore)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.SecretStore.Kind != "keyring" || !st.SecretStore.Persistent {
		t.Errorf("status after the keyring timed out: secret store %+v, want kind keyring, persistent", st.SecretStore)
	}
	for _, want := range []string{"did not answer", "may be locked", "gnome-keyring-daemon --unlock"} {
		if !strings.Contains(st.SecretStore.Warning, want) {
			t.Errorf("status after the keyring timed out: warning %q, want it to mention %q", st.SecretStore.Warning, want)
		}
	}
	if st.PID != pid {
		t.Errorf("status answers from pid %d, want %d", st.PID, pid)
	}
}

// serveProcess returns the pid of the `authagent serve` that listens on sock, or 0.
func serveProcess(sock string) int {
	want := []byte("serve\x00--socket\x00" + sock + "\x00")
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, want) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if alive(pid) {
			return pid
		}
	}
	return 0
}

// When the agent it launched does not answer, `authagent start` fails and leaves no agent
// running behind it.
func TestStartStopsAgentThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// A config file whose read never ends, as on a hung network file system: the agent
	// blocks before it listens.
	config := filepath.Join(e.dir, "config.toml")
	if err := syscall.Mkfifo(config, 0o600); err != nil {
		t.Fatal(err)
	}
	var pid int
	t.Cleanup(func() {
		if pid != 0 && alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	type outcome struct {
		r   result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := runCmd(e.environ(), e.dir, "", authagentBin, "start", "--config", config)
		done <- outcome{r, err}
	}()
	t.Cleanup(func() { <-done }) // before the temporary directory goes

	waitFor(t, "the agent that start launched", func() bool {
		pid = serveProcess(e.sock())
		return pid != 0
	})
	var o outcome
	select {
	case o = <-done:
		done <- o
	case <-time.After(time.Minute):
		t.Fatal("authagent start did not return within a minute")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	if alive(pid) {
		t.Errorf("authagent start returned, and the agent it launched (pid %d) is still running", pid)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		t.Errorf("authagent start did not reap the agent it launched (pid %d): %s", pid, b)
	}
	if o.r.code == 0 {
		t.Fatalf("authagent start with an agent that never answers succeeded: %s", o.r)
	}
	logPath := filepath.Join(e.vars["XDG_STATE_HOME"], "authagent", "agent.log")
	for _, want := range []string{"did not answer", logPath, strconv.Itoa(pid)} {
		if !strings.Contains(o.r.stderr, want) {
			t.Errorf("authagent start: stderr does not mention %q:\n%s", want, o.r)
		}
	}
	if !strings.Contains(o.r.stderr, "was stopped") && !strings.Contains(o.r.stderr, "was killed") {
		t.Errorf("authagent start: stderr does not say that the agent was stopped:\n%s", o.r)
	}
}
