package confirm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/authagent/authagent/agent"
)

// The Desktop Notifications Specification's names (tray/notify.go uses the same).
const (
	notificationsName  = "org.freedesktop.Notifications"
	notificationsPath  = dbus.ObjectPath("/org/freedesktop/Notifications")
	notificationsIface = "org.freedesktop.Notifications"
)

// The actions of a question, as the specification pairs them: key, label.
const (
	ActionAllow = "allow"
	ActionDeny  = "deny"
)

// NotificationClosed reasons (Desktop Notifications Specification).
const (
	closedExpired   = 1
	closedDismissed = 2
)

// Desktop is an agent.Confirmer that asks through a desktop notification with Allow and
// Deny actions (org.freedesktop.Notifications on the session bus) and waits for the
// ActionInvoked or NotificationClosed signal of that notification, sent by the notification
// server itself. Deny, and a notification the user dismissed, deny; a notification that
// expires, or one still open when ctx ends (it is then closed), is no answer
// (agent.ErrNoAnswer). A bus that cannot be reached, or a notification server that shows
// no actions, is an error: the user cannot be asked. Its zero value is ready to use and
// connects on first use, without a lock held, so a bus that does not answer holds up only
// the questions that wait for it, each until its own context ends; Close ends the
// connection.
type Desktop struct {
	// Connect opens a connection to the session bus that lives until ctx ends (as
	// dbus.WithContext does: ending ctx closes it, also while it is being made); nil
	// means SessionBus.
	Connect func(ctx context.Context) (*dbus.Conn, error)

	mu      sync.Mutex
	conn    *dbus.Conn
	end     context.CancelFunc     // ends conn
	markup  bool                   // the server reads bodies as markup: escape them
	waiting map[uint32]chan signal // questions by notification id
	early   map[uint32]signal      // signals that came before their Notify call returned
	order   []uint32               // early's ids, oldest first, to bound it
}

// signal is an ActionInvoked (action set) or NotificationClosed (reason set) of one id.
type signal struct {
	sender string
	action string
	reason uint32
}

// maxEarly bounds the signals kept for ids nobody waits for yet: the bus delivers the
// signals of every program's notifications.
const maxEarly = 64

// Confirm asks the user req.Question() and waits for the answer until ctx ends; the
// notification expires at ctx's deadline.
func (d *Desktop) Confirm(ctx context.Context, req agent.ConfirmRequest) (bool, error) {
	conn, markup, err := d.connection(ctx)
	if err != nil {
		return false, err
	}
	// Only the notification server may answer: any program on the bus can send a signal
	// named ActionInvoked.
	var owner string
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, notificationsName).Store(&owner); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("find the notification server: %w: %w", agent.ErrNoAnswer, ctx.Err())
		}
		return false, fmt.Errorf("no notification server on the session bus (%s): %w", notificationsName, err)
	}
	body := req.Question() + " Allow it only if you started that program for this."
	if markup {
		body = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(body)
	}
	expire := int32(0) // never, where the server allows; the agent's deadline closes it
	if dl, ok := ctx.Deadline(); ok {
		expire = int32(min(max(time.Until(dl)/time.Millisecond, 1), math.MaxInt32))
	}
	hints := map[string]dbus.Variant{"urgency": dbus.MakeVariant(byte(2))} // critical
	// The Notify call may outlive ctx by lateReply: a server that raised the notification
	// just as the question ended still gets it closed, instead of leaving a question on
	// screen that nobody waits for.
	callCtx, endCall := context.WithTimeout(context.WithoutCancel(ctx), lateReply)
	call := conn.Object(notificationsName, notificationsPath).GoWithContext(callCtx, notificationsIface+".Notify", 0, make(chan *dbus.Call, 1),
		"authagent", uint32(0), "dialog-password", summary(req), body,
		[]string{ActionAllow, "Allow", ActionDeny, "Deny"}, hints, expire)
	select {
	case <-call.Done:
		endCall()
	case <-ctx.Done():
		go func() {
			defer endCall()
			var id uint32
			if c := <-call.Done; c.Err == nil && c.Store(&id) == nil {
				closeNotification(conn, id)
			}
		}()
		return false, fmt.Errorf("notify: %w: %w", agent.ErrNoAnswer, ctx.Err())
	}
	var id uint32
	if err := call.Store(&id); err != nil {
		return false, fmt.Errorf("notify: %w", err)
	}

	answers := make(chan signal, 4)
	d.mu.Lock()
	if s, ok := d.early[id]; ok {
		answers <- s
		delete(d.early, id)
	}
	d.waiting[id] = answers
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.waiting, id)
		d.mu.Unlock()
	}()

	for {
		select {
		case s := <-answers:
			if s.sender != owner {
				continue
			}
			switch {
			case s.action == ActionAllow:
				return true, nil
			case s.action == ActionDeny:
				return false, nil
			case s.action != "":
				continue // "default" (a click on the body) and others: keep waiting
			case s.reason == closedDismissed:
				return false, nil
			case s.reason == closedExpired:
				return false, fmt.Errorf("the notification expired: %w", agent.ErrNoAnswer)
			}
			return false, fmt.Errorf("the notification was closed unanswered: %w", agent.ErrNoAnswer)
		case <-ctx.Done():
			closeNotification(conn, id)
			return false, fmt.Errorf("%w: %w", agent.ErrNoAnswer, ctx.Err())
		case <-conn.Context().Done():
			return false, errors.New("the session bus connection closed while the question was open")
		}
	}
}

// lateReply bounds how long a Notify call is waited for after its question ended, and
// closeTimeout a CloseNotification call.
const (
	lateReply    = 10 * time.Second
	closeTimeout = 2 * time.Second
)

// closeNotification takes notification id off the screen; a server that does not answer
// within closeTimeout is left alone.
func closeNotification(conn *dbus.Conn, id uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	conn.Object(notificationsName, notificationsPath).CallWithContext(ctx, notificationsIface+".CloseNotification", 0, id)
}

// summary is the notification's title: "Allow python3 to use profile work?". The file
// name is quoted like the body's path when it holds control characters, so that it cannot
// forge the title.
func summary(req agent.ConfirmRequest) string {
	return fmt.Sprintf("Allow %s to use profile %s?", req.Program(), req.Profile)
}

// connection is the open connection to the session bus, made (with its signal match and
// dispatcher) when there is none or the last one closed. It is made without d.mu held and
// given up when ctx ends; when two questions make one at once, the first made is kept.
func (d *Desktop) connection(ctx context.Context) (*dbus.Conn, bool, error) {
	d.mu.Lock()
	if d.conn != nil && d.conn.Connected() {
		conn, markup := d.conn, d.markup
		d.mu.Unlock()
		return conn, markup, nil
	}
	d.mu.Unlock()

	life, end := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, end) // the question ended: close the connection being made
	conn, markup, err := d.dial(ctx, life)
	if !stop() {
		end()
		return nil, false, fmt.Errorf("connect to the session bus: it did not answer before the question's deadline (%v)", ctx.Err())
	}
	if err != nil {
		end()
		return nil, false, err
	}
	ch := make(chan *dbus.Signal, 64)
	conn.Signal(ch)

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil && d.conn.Connected() { // another question connected meanwhile
		end()
		return d.conn, d.markup, nil
	}
	if d.end != nil {
		d.end()
	}
	d.conn, d.end, d.markup = conn, end, markup
	d.waiting, d.early, d.order = map[uint32]chan signal{}, map[uint32]signal{}, nil
	go d.dispatch(conn, ch)
	return conn, markup, nil
}

// dial connects to the session bus for the lifetime life, checks that a notification
// server with actions runs there, and watches its signals; markup: it reads bodies as
// markup.
func (d *Desktop) dial(ctx, life context.Context) (_ *dbus.Conn, markup bool, _ error) {
	connect := d.Connect
	if connect == nil {
		connect = SessionBus
	}
	conn, err := connect(life)
	if err != nil {
		return nil, false, fmt.Errorf("connect to the session bus: %w", err)
	}
	var caps []string
	err = conn.Object(notificationsName, notificationsPath).CallWithContext(ctx, notificationsIface+".GetCapabilities", 0).Store(&caps)
	if err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("no notification server on the session bus (%s): %w", notificationsName, err)
	}
	if !slices.Contains(caps, "actions") {
		conn.Close()
		return nil, false, errors.New("the notification server shows no actions (buttons), so it cannot ask Allow or Deny")
	}
	for _, member := range []string{"ActionInvoked", "NotificationClosed"} {
		if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(notificationsPath),
			dbus.WithMatchInterface(notificationsIface), dbus.WithMatchMember(member)); err != nil {
			conn.Close()
			return nil, false, fmt.Errorf("watch notification signals: %w", err)
		}
	}
	return conn, slices.Contains(caps, "body-markup"), nil
}

// dispatch hands each notification signal to the question waiting for its id, or keeps it
// for one whose Notify call has not returned yet.
func (d *Desktop) dispatch(conn *dbus.Conn, ch chan *dbus.Signal) {
	for {
		var sig *dbus.Signal
		select {
		case sig = <-ch:
		case <-conn.Context().Done():
			conn.RemoveSignal(ch)
			return
		}
		if sig == nil || len(sig.Body) < 2 {
			continue
		}
		id, ok := sig.Body[0].(uint32)
		if !ok {
			continue
		}
		s := signal{sender: sig.Sender}
		switch sig.Name {
		case notificationsIface + ".ActionInvoked":
			s.action, _ = sig.Body[1].(string)
		case notificationsIface + ".NotificationClosed":
			s.reason, _ = sig.Body[1].(uint32)
		default:
			continue
		}
		d.mu.Lock()
		if d.conn == conn {
			if w, ok := d.waiting[id]; ok {
				select {
				case w <- s:
				default:
				}
			} else if _, seen := d.early[id]; !seen {
				d.early[id] = s
				d.order = append(d.order, id)
				if len(d.order) > maxEarly {
					delete(d.early, d.order[0])
					d.order = d.order[1:]
				}
			}
		}
		d.mu.Unlock()
	}
}

// SessionBus connects to the user's session bus: $DBUS_SESSION_BUS_ADDRESS, else
// $XDG_RUNTIME_DIR/bus, for as long as ctx lasts (ending ctx closes the connection, also
// while it is being made). Unlike dbus.ConnectSessionBus it starts no bus (dbus-launch)
// and changes no environment variable of the agent.
func SessionBus(ctx context.Context) (*dbus.Conn, error) {
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		dir := os.Getenv("XDG_RUNTIME_DIR")
		if dir == "" {
			return nil, errors.New("no session bus: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset")
		}
		path := filepath.Join(dir, "bus")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no session bus: DBUS_SESSION_BUS_ADDRESS is unset and %w", err)
		}
		addr = "unix:path=" + path
	}
	return dbus.Connect(addr, dbus.WithContext(ctx))
}

// Close ends the connection to the session bus; a later Confirm connects again.
func (d *Desktop) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return nil
	}
	err := d.conn.Close()
	d.end()
	d.conn, d.end = nil, nil
	return err
}
