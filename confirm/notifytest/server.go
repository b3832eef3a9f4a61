// Package notifytest is a desktop notification server for tests: it owns
// org.freedesktop.Notifications on a (private) D-Bus bus, records each notification, and
// answers it as told, with the signals a real server sends (ActionInvoked,
// NotificationClosed). The confirm package's tests and the end-to-end tests in tests/ ask
// the user through it. It is no part of the agent.
package notifytest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"
)

const (
	name  = "org.freedesktop.Notifications"
	path  = dbus.ObjectPath("/org/freedesktop/Notifications")
	iface = "org.freedesktop.Notifications"
)

// Answer is what the user does with the next notifications.
type Answer string

const (
	Allow   Answer = "allow"   // clicks Allow: ActionInvoked "allow", then NotificationClosed 2
	Deny    Answer = "deny"    // clicks Deny: ActionInvoked "deny", then NotificationClosed 2
	Dismiss Answer = "dismiss" // closes it: NotificationClosed 2 (dismissed by the user)
	Expire  Answer = "expire"  // lets it expire: NotificationClosed 1
	Ignore  Answer = ""        // does nothing: no signal
)

// Note is one Notify call as the server got it.
type Note struct {
	ID      uint32
	AppName string
	Icon    string
	Summary string
	Body    string
	Actions []string
	Hints   map[string]dbus.Variant
	Timeout int32
}

// Server is the notification server. Its methods are safe for concurrent use.
type Server struct {
	conn *dbus.Conn
	caps []string

	mu     sync.Mutex
	answer Answer
	early  bool
	next   uint32
	notes  []Note
	closed []uint32
	seen   chan struct{} // closed and replaced by each Notify
}

// Start serves org.freedesktop.Notifications on conn with the given capabilities
// (GetCapabilities; a real one lists "actions" when it shows buttons). It answers Ignore
// until SetAnswer says otherwise.
func Start(conn *dbus.Conn, caps ...string) (*Server, error) {
	s := &Server{conn: conn, caps: caps, seen: make(chan struct{})}
	if err := conn.ExportMethodTable(map[string]any{
		"Notify":            s.notify,
		"CloseNotification": s.closeNotification,
		"GetCapabilities":   func() ([]string, *dbus.Error) { return s.caps, nil },
		"GetServerInformation": func() (string, string, string, string, *dbus.Error) {
			return "notifytest", "authagent", "1", "1.2", nil
		},
	}, path, iface); err != nil {
		return nil, err
	}
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil {
		return nil, err
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return nil, fmt.Errorf("%s is owned already (reply %d)", name, reply)
	}
	return s, nil
}

// SetAnswer sets what the user does with the notifications that come next. With early,
// the signals are sent before Notify's reply (a fast user, or a server that answers
// before it replies), else after it.
func (s *Server) SetAnswer(a Answer, early bool) {
	s.mu.Lock()
	s.answer, s.early = a, early
	s.mu.Unlock()
}

// Notes are the notifications raised so far, oldest first.
func (s *Server) Notes() []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Note(nil), s.notes...)
}

// Closed are the ids CloseNotification was called with, in order.
func (s *Server) Closed() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint32(nil), s.closed...)
}

// Seen returns a channel that is closed at the next Notify call.
func (s *Server) Seen() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

func (s *Server) notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s.mu.Lock()
	s.next++
	id := s.next
	s.notes = append(s.notes, Note{ID: id, AppName: app, Icon: icon, Summary: summary, Body: body, Actions: actions, Hints: hints, Timeout: timeout})
	answer, early := s.answer, s.early
	close(s.seen)
	s.seen = make(chan struct{})
	s.mu.Unlock()
	if early {
		s.emit(id, answer)
	} else {
		go s.emit(id, answer)
	}
	return id, nil
}

func (s *Server) emit(id uint32, a Answer) {
	switch a {
	case Allow, Deny:
		s.conn.Emit(path, iface+".ActionInvoked", id, string(a))
		s.conn.Emit(path, iface+".NotificationClosed", id, uint32(2))
	case Dismiss:
		s.conn.Emit(path, iface+".NotificationClosed", id, uint32(2))
	case Expire:
		s.conn.Emit(path, iface+".NotificationClosed", id, uint32(1))
	}
}

func (s *Server) closeNotification(id uint32) *dbus.Error {
	s.mu.Lock()
	s.closed = append(s.closed, id)
	s.mu.Unlock()
	s.conn.Emit(path, iface+".NotificationClosed", id, uint32(3))
	return nil
}

// busConfig is a session bus that activates no services: the only notification server on
// it is the one a test starts.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// Bus starts a dbus-daemon of the test's own and returns its address; it stops with the
// test. Without dbus-daemon the test is skipped, except under CI=true, where it fails.
func Bus(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dbus-daemon is not installed (apt-get install dbus, or scripts/deps.sh)")
		}
		t.Skip("dbus-daemon is not installed (apt-get install dbus, or scripts/deps.sh)")
	}
	dir, err := os.MkdirTemp("", "notify-bus-") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(addr) == "" {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// Connect opens a connection to the bus at addr that closes with the test.
func Connect(t testing.TB, addr string) *dbus.Conn {
	t.Helper()
	c, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
