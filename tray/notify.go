package tray

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"
)

// Notifier raises and closes desktop notifications. DBusNotifier is the real one.
type Notifier interface {
	Notify(ctx context.Context, n Notification) (id uint32, err error)
	CloseNotification(ctx context.Context, id uint32) error
}

// Notification is one desktop notification.
type Notification struct {
	Summary, Body string
	Replaces      uint32 // the id of a notification this one takes the place of, or 0
	Sticky        bool   // stays until closed, where the server allows
}

// The Desktop Notifications Specification's names.
const (
	notificationsName  = "org.freedesktop.Notifications"
	notificationsPath  = dbus.ObjectPath("/org/freedesktop/Notifications")
	notificationsIface = "org.freedesktop.Notifications"
)

// DBusNotifier talks to the notification server (org.freedesktop.Notifications) on a
// D-Bus session bus.
type DBusNotifier struct {
	conn *dbus.Conn

	once   sync.Once
	markup bool // the server reads the body as markup, so it must be escaped
}

// NewDBusNotifier returns a Notifier on conn, a session bus connection.
func NewDBusNotifier(conn *dbus.Conn) *DBusNotifier { return &DBusNotifier{conn: conn} }

// Notify raises n and returns the id the server gave it.
func (d *DBusNotifier) Notify(ctx context.Context, n Notification) (uint32, error) {
	obj := d.conn.Object(notificationsName, notificationsPath)
	d.once.Do(func() {
		var caps []string
		if obj.CallWithContext(ctx, notificationsIface+".GetCapabilities", 0).Store(&caps) == nil {
			d.markup = slices.Contains(caps, "body-markup")
		}
	})
	body := n.Body
	if d.markup {
		body = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(body)
	}
	hints := map[string]dbus.Variant{"desktop-entry": dbus.MakeVariant("authagent-tray")}
	timeout := int32(-1) // the server's default
	if n.Sticky {
		timeout = 0
	}
	var id uint32
	err := obj.CallWithContext(ctx, notificationsIface+".Notify", 0,
		"authagent", n.Replaces, "dialog-password", n.Summary, body, []string{}, hints, timeout).Store(&id)
	if err != nil {
		return 0, fmt.Errorf("notify: %w", err)
	}
	return id, nil
}

// CloseNotification takes notification id off the screen.
func (d *DBusNotifier) CloseNotification(ctx context.Context, id uint32) error {
	call := d.conn.Object(notificationsName, notificationsPath).CallWithContext(ctx, notificationsIface+".CloseNotification", 0, id)
	if call.Err != nil {
		return fmt.Errorf("close notification %d: %w", id, call.Err)
	}
	return nil
}
