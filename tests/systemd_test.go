package tests

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
)

// TestSocketActivation starts the agent the way authagent.socket does: systemd (here its
// systemd-socket-activate tool) owns the listening socket and starts `authagent serve` on
// the first connection, passing the socket as LISTEN_FDS.
func TestSocketActivation(t *testing.T) {
	needTools(t, "systemd-socket-activate")
	e := newEnv(t, startSession(t))
	if err := os.MkdirAll(filepath.Dir(e.sock()), 0o700); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd := exec.Command("systemd-socket-activate", "-l", e.sock(), "-E", "AUTHAGENT_SOCK", "-E", "XDG_CONFIG_HOME",
		"-E", "XDG_STATE_HOME", "-E", "HOME", "-E", "DBUS_SESSION_BUS_ADDRESS", authagentBin, "serve")
	cmd.Env, cmd.Dir = e.environ(), e.dir
	cmd.Stdout, cmd.Stderr = out, out
	p := startProcess(t, cmd)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(e.sock()); err == nil {
			break
		}
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("systemd-socket-activate did not create %s:\n%s", e.sock(), out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(out.String(), "agent listening") {
		t.Fatal("the agent started before anyone connected")
	}
	// The first connection starts the agent, and that very connection is answered.
	c := &ipc.Client{Socket: e.sock()}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatalf("first connection: %v\n%s", err, out)
	}
	// The agent logs before it serves, but its output reaches out through a pipe that
	// exec copies on its own goroutine: the line may arrive after the answer.
	waitFor(t, "the agent saying it took its socket from systemd", func() bool {
		return strings.Contains(out.String(), "(from systemd)")
	})
	// systemd-socket-activate execs the agent in its own process.
	if st.PID != cmd.Process.Pid {
		t.Errorf("status pid %d, want %d (the activated process)", st.PID, cmd.Process.Pid)
	}
	runOK(t, e, "k", "add", "hub", "--provider", "apikey", "--host", "api.example.com")
	if got := strings.TrimSpace(runOK(t, e, "", "token", "hub").stdout); got != "k" {
		t.Errorf("token through the activated socket = %q", got)
	}
}

// TestNotifyReady plays systemd's notify socket for a Type=notify service.
func TestNotifyReady(t *testing.T) {
	e := newEnv(t, startSession(t))
	notify := filepath.Join(shortTempDir(t), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// WatchdogSec=1s as systemd would pass it: the agent pings every half interval.
	a := startAgent(t, e.with("NOTIFY_SOCKET", notify).with("WATCHDOG_USEC", "1000000"))
	read := func(want string) string {
		t.Helper()
		buf := make([]byte, 4096)
		for {
			conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %s on NOTIFY_SOCKET: %v", want, err)
			}
			if msg := string(buf[:n]); strings.Contains(msg, want) {
				return msg
			}
		}
	}
	msg := read("READY=1")
	if !strings.Contains(msg, "STATUS=") {
		t.Errorf("READY message without STATUS: %q", msg)
	}
	read("WATCHDOG=1")
	a.Signal(syscall.SIGTERM)
	read("STOPPING=1")
}
