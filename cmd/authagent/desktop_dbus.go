//go:build (linux || freebsd || openbsd || netbsd) && !android

package main

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/authagent/authagent/assets"
	"github.com/authagent/authagent/tray"
)

// desktop is what the tray uses of the desktop session besides the icon itself.
type desktop struct {
	notifier tray.Notifier                      // nil: no notifications
	panel    func(context.Context) assets.Panel // the panel's colour scheme, for --panel auto
	close    func()
}

// openDesktop connects to the D-Bus session bus for notifications and the colour scheme.
func openDesktop() (desktop, error) {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return desktop{}, fmt.Errorf("the tray needs a D-Bus session bus (is DBUS_SESSION_BUS_ADDRESS set?): %w", err)
	}
	return desktop{
		notifier: tray.NewDBusNotifier(conn),
		panel:    func(ctx context.Context) assets.Panel { return tray.DetectPanel(ctx, conn) },
		close:    func() { conn.Close() },
	}, nil
}
