package tray

import (
	"context"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/authagent/authagent/assets"
)

// DetectPanel guesses the panel's kind from the desktop's colour scheme, as the XDG desktop
// portal tells it (org.freedesktop.appearance color-scheme: 1 prefers dark, 2 light).
// Panels are dark more often than not, so that is the answer when the desktop does not say.
func DetectPanel(ctx context.Context, conn *dbus.Conn) assets.Panel {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	obj := conn.Object("org.freedesktop.portal.Desktop", "/org/freedesktop/portal/desktop")
	var v dbus.Variant
	err := obj.CallWithContext(ctx, "org.freedesktop.portal.Settings.ReadOne", 0, "org.freedesktop.appearance", "color-scheme").Store(&v)
	if err != nil {
		// Portals before version 2 have only Read, which wraps the value once more.
		if err = obj.CallWithContext(ctx, "org.freedesktop.portal.Settings.Read", 0, "org.freedesktop.appearance", "color-scheme").Store(&v); err != nil {
			return assets.DarkPanel
		}
		if inner, ok := v.Value().(dbus.Variant); ok {
			v = inner
		}
	}
	if scheme, ok := v.Value().(uint32); ok && scheme == 2 {
		return assets.LightPanel
	}
	return assets.DarkPanel
}
