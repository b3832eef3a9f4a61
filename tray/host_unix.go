//go:build (linux || freebsd || openbsd || netbsd) && !android

package tray

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// statusNotifierWatcher is where tray icons register; panels that show them own it.
const statusNotifierWatcher = "org.kde.StatusNotifierWatcher"

// checkHost fails without a D-Bus session bus, and warns when no panel hosts tray icons.
func checkHost(ctx context.Context, t *Tray) error {
	// systray takes the shared session bus and has no way to report that it is missing.
	bus, err := dbus.SessionBus()
	if err != nil {
		return fmt.Errorf("the tray needs a D-Bus session bus (is DBUS_SESSION_BUS_ADDRESS set?): %w", err)
	}
	var watched bool
	if bus.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, statusNotifierWatcher).Store(&watched) == nil && !watched {
		t.o.Log.Warn("no panel hosts tray icons yet (nothing owns " + statusNotifierWatcher + "); the icon appears when one starts. " +
			"On GNOME, enable the AppIndicator extension")
	}
	return nil
}

// hostIcon is a PNG icon as systray's StatusNotifierItem reads it right (a pixmap).
func hostIcon(png []byte) ([]byte, error) { return systrayIcon(png) }
