package confirm

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/confirm/notifytest"
)

// setup starts a private bus with a notification server of caps on it, and a Desktop that
// asks on that bus.
func setup(t *testing.T, caps ...string) (*Desktop, *notifytest.Server, string) {
	t.Helper()
	addr := notifytest.Bus(t)
	srv, err := notifytest.Start(notifytest.Connect(t, addr), caps...)
	if err != nil {
		t.Fatal(err)
	}
	d := &Desktop{Connect: func(ctx context.Context) (*dbus.Conn, error) { return dbus.Connect(addr, dbus.WithContext(ctx)) }}
	t.Cleanup(func() { d.Close() })
	return d, srv, addr
}

var work = agent.ConfirmRequest{
	Profile: "work", Operation: agent.OpCredential, Host: "api.example.com",
	Caller: &agent.Caller{PID: 4242, Exe: "/usr/bin/python3", Dev: 1, Ino: 2},
}

// TestDesktopAnswers: through the notification D-Bus interface, Allow allows; Deny and a
// dismissed notification deny; an expired notification, and one open when the context
// ends, are no answer (agent.ErrNoAnswer), and the latter is closed. Signals sent before
// Notify's reply count too. The notification asks with Allow and Deny actions, critical
// urgency, names the program and the profile, and expires at the context's deadline.
func TestDesktopAnswers(t *testing.T) {
	d, srv, _ := setup(t, "actions", "body")
	for _, tc := range []struct {
		answer   notifytest.Answer
		early    bool
		deadline time.Duration
		allowed  bool
		noAnswer bool
	}{
		{notifytest.Allow, false, time.Minute, true, false},
		{notifytest.Allow, true, time.Minute, true, false},
		{notifytest.Deny, false, time.Minute, false, false},
		{notifytest.Deny, true, time.Minute, false, false},
		{notifytest.Dismiss, false, time.Minute, false, false},
		{notifytest.Expire, false, time.Minute, false, true},
		{notifytest.Ignore, false, time.Minute, false, true}, // the context ends once the server has it
	} {
		name := string(tc.answer)
		if name == "" {
			name = "ignore"
		}
		if tc.early {
			name += " before the reply"
		}
		t.Run(name, func(t *testing.T) {
			srv.SetAnswer(tc.answer, tc.early)
			before := len(srv.Notes())
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			if tc.answer == notifytest.Ignore {
				// Whether or not Notify's reply is back by then, the notification is closed.
				seen := srv.Seen()
				go func() { <-seen; cancel() }()
			}
			ok, err := d.Confirm(ctx, work)
			switch {
			case tc.allowed && (!ok || err != nil):
				t.Fatalf("Confirm = %v, %v; want allowed", ok, err)
			case !tc.allowed && !tc.noAnswer && (ok || err != nil):
				t.Fatalf("Confirm = %v, %v; want denied", ok, err)
			case tc.noAnswer && (ok || !errors.Is(err, agent.ErrNoAnswer)):
				t.Fatalf("Confirm = %v, %v; want no answer", ok, err)
			}
			notes := srv.Notes()
			if len(notes) != before+1 {
				t.Fatalf("%d notifications raised, want 1", len(notes)-before)
			}
			n := notes[len(notes)-1]
			if n.Summary != "Allow python3 to use profile work?" {
				t.Errorf("summary %q", n.Summary)
			}
			if want := "/usr/bin/python3 (pid 4242) asks for the token of profile work, for api.example.com."; !strings.Contains(n.Body, want) {
				t.Errorf("body %q lacks %q", n.Body, want)
			}
			if want := []string{"allow", "Allow", "deny", "Deny"}; !slices.Equal(n.Actions, want) {
				t.Errorf("actions %q, want %q", n.Actions, want)
			}
			if u, _ := n.Hints["urgency"].Value().(byte); u != 2 {
				t.Errorf("urgency hint %v, want 2 (critical)", n.Hints["urgency"])
			}
			if n.Timeout <= 0 || n.Timeout > int32(tc.deadline/time.Millisecond) {
				t.Errorf("expire timeout %dms, want up to the deadline %v", n.Timeout, tc.deadline)
			}
			closed := slices.Contains(srv.Closed(), n.ID)
			if tc.answer == notifytest.Ignore {
				// Closed at once, or when a Notify reply that came after the end arrives.
				for deadline := time.Now().Add(30 * time.Second); !closed && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
					closed = slices.Contains(srv.Closed(), n.ID)
				}
			}
			if wantClosed := tc.answer == notifytest.Ignore; closed != wantClosed {
				t.Errorf("CloseNotification(%d) called: %v, want %v", n.ID, closed, wantClosed)
			}
		})
	}
}

// TestDesktopForgedAnswer: an ActionInvoked "allow" for the question's id from a bus client
// that is not the notification server is ignored.
func TestDesktopForgedAnswer(t *testing.T) {
	d, srv, addr := setup(t, "actions")
	forger := notifytest.Connect(t, addr)
	srv.SetAnswer(notifytest.Ignore, false)
	seen := srv.Seen()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var ok bool
	go func() {
		var err error
		ok, err = d.Confirm(ctx, work)
		done <- err
	}()
	<-seen
	id := srv.Notes()[0].ID
	for range 3 {
		if err := forger.Emit("/org/freedesktop/Notifications", "org.freedesktop.Notifications.ActionInvoked", id, "allow"); err != nil {
			t.Fatal(err)
		}
	}
	err := <-done
	if ok || !errors.Is(err, agent.ErrNoAnswer) {
		t.Fatalf("Confirm = %v, %v; want no answer: a forged Allow must not count", ok, err)
	}
}

// TestDesktopConcurrent: questions open at once are answered each by its own signals.
func TestDesktopConcurrent(t *testing.T) {
	d, srv, _ := setup(t, "actions")
	srv.SetAnswer(notifytest.Allow, true)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			ok, err := d.Confirm(context.Background(), work)
			if err == nil && !ok {
				err = errors.New("denied")
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestDesktopCannotAsk: a bus without a notification server, and a server that shows no
// actions, are errors that say so, not denials or missing answers.
func TestDesktopCannotAsk(t *testing.T) {
	t.Run("no server", func(t *testing.T) {
		addr := notifytest.Bus(t)
		d := &Desktop{Connect: func(ctx context.Context) (*dbus.Conn, error) { return dbus.Connect(addr, dbus.WithContext(ctx)) }}
		defer d.Close()
		ok, err := d.Confirm(context.Background(), work)
		if ok || err == nil || errors.Is(err, agent.ErrNoAnswer) || !strings.Contains(err.Error(), "no notification server") {
			t.Fatalf("Confirm = %v, %v; want an error that names the missing server", ok, err)
		}
	})
	t.Run("no actions", func(t *testing.T) {
		d, srv, _ := setup(t, "body", "body-markup")
		ok, err := d.Confirm(context.Background(), work)
		if ok || err == nil || errors.Is(err, agent.ErrNoAnswer) || !strings.Contains(err.Error(), "shows no actions") {
			t.Fatalf("Confirm = %v, %v; want an error about actions", ok, err)
		}
		if n := len(srv.Notes()); n != 0 {
			t.Fatalf("%d notifications raised without buttons", n)
		}
	})
	t.Run("no bus", func(t *testing.T) {
		d := &Desktop{Connect: func(ctx context.Context) (*dbus.Conn, error) {
			return dbus.Connect("unix:path=/nonexistent/bus", dbus.WithContext(ctx))
		}}
		ok, err := d.Confirm(context.Background(), work)
		if ok || err == nil || !strings.Contains(err.Error(), "connect to the session bus") {
			t.Fatalf("Confirm = %v, %v; want a connect error", ok, err)
		}
	})
}

// TestDesktopMarkup: a server that reads bodies as markup gets the question escaped, so a
// path cannot format the question.
func TestDesktopMarkup(t *testing.T) {
	d, srv, _ := setup(t, "actions", "body-markup")
	srv.SetAnswer(notifytest.Deny, false)
	req := work
	req.Caller = &agent.Caller{PID: 1, Exe: "/tmp/<b>git</b>"}
	if _, err := d.Confirm(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if body := srv.Notes()[0].Body; !strings.Contains(body, "/tmp/&lt;b&gt;git&lt;/b&gt; (pid 1)") {
		t.Fatalf("body %q: want the path escaped", body)
	}
}

// TestSessionBus: the session bus is $DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus;
// without either it is an error, and no bus is started.
func TestSessionBus(t *testing.T) {
	addr := notifytest.Bus(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	c, err := SessionBus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	path, _, _ := strings.Cut(strings.TrimPrefix(addr, "unix:path="), ",")
	dir, ok := strings.CutSuffix(path, "/bus")
	if !ok {
		t.Fatalf("the test bus's address %q is not unix:path=DIR/bus", addr)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", dir)
	c, err = SessionBus(context.Background())
	if err != nil {
		t.Fatalf("$XDG_RUNTIME_DIR/bus: %v", err)
	}
	c.Close()

	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if _, err := SessionBus(context.Background()); err == nil || !strings.Contains(err.Error(), "no session bus") {
		t.Fatalf("no bus: %v", err)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if _, err := SessionBus(context.Background()); err == nil || !strings.Contains(err.Error(), "are unset") {
		t.Fatalf("nothing set: %v", err)
	}
}

// TestDesktopTitleQuoted: a file name with a line break cannot forge the notification's
// title: it is quoted as in the body.
func TestDesktopTitleQuoted(t *testing.T) {
	d, srv, _ := setup(t, "actions", "body")
	srv.SetAnswer(notifytest.Deny, false)
	req := work
	req.Caller = &agent.Caller{PID: 1, Exe: "/tmp/git to use profile work?\nAllow bash"}
	if _, err := d.Confirm(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	n := srv.Notes()[0]
	if want := `Allow "git to use profile work?\nAllow bash" to use profile work?`; n.Summary != want {
		t.Fatalf("summary %q, want %q", n.Summary, want)
	}
	if strings.ContainsAny(n.Summary+n.Body, "\n") {
		t.Fatalf("a line break in summary %q or body %q", n.Summary, n.Body)
	}
}

// TestDesktopBusNotAnswering: a session bus that takes connections but never answers (a
// stopped dbus-daemon) holds a question only until its context ends, and holds no other
// question up meanwhile.
func TestDesktopBusNotAnswering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // never accepts: connections wait in the backlog, unanswered
	d := &Desktop{Connect: func(ctx context.Context) (*dbus.Conn, error) {
		return dbus.Connect("unix:path="+path, dbus.WithContext(ctx))
	}}
	defer d.Close()

	long, cancelLong := context.WithCancel(context.Background())
	longDone := make(chan error, 1)
	go func() {
		_, err := d.Confirm(long, work)
		longDone <- err
	}()
	for range 2 { // while the first one waits, and once more
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		done := make(chan error, 1)
		go func() {
			ok, err := d.Confirm(ctx, work)
			if ok {
				err = errors.New("allowed")
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "connect to the session bus: it did not answer before the question's deadline") {
				t.Fatalf("Confirm = %v; want an error that says the bus did not answer", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a question waits past its deadline for a bus that does not answer")
		}
		cancel()
	}
	select {
	case err := <-longDone:
		t.Fatalf("the question without a deadline ended (%v) before its context did", err)
	default:
	}
	cancelLong()
	select {
	case err := <-longDone:
		if err == nil {
			t.Fatal("no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a question stays after its context ended")
	}
}
