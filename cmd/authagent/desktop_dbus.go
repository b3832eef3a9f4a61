//go:build (linux || freebsd || openbsd || netbsd) && !android

package main

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/authagent/authagent/assets"
	"github.com/authagent/authagent/tray"
)

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
