//go:build !((linux || freebsd || openbsd || netbsd) && !android)

package main

import (
	"context"

	"github.com/authagent/authagent/assets"
	"github.com/authagent/authagent/tray"
)

// desktop is what the tray uses of the desktop session besides the icon itself.
type desktop struct {
	notifier tray.Notifier                      // nil: no notifications
	panel    func(context.Context) assets.Panel // the panel's colour scheme, for --panel auto
	close    func()
}

// openDesktop on macOS and Windows: no notifier yet (the login code shows in the menu),
// and a dark panel for --panel auto.
func openDesktop() (desktop, error) {
	return desktop{
		panel: func(context.Context) assets.Panel { return assets.DarkPanel },
		close: func() {},
	}, nil
}
