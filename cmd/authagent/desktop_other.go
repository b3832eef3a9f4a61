//go:build !((linux || freebsd || openbsd || netbsd) && !android)

package main

import (
	"context"

	"github.com/authagent/authagent/assets"
)

// openDesktop on macOS and Windows: no notifier yet (the login code shows in the menu),
// and a dark panel for --panel auto.
func openDesktop() (desktop, error) {
	return desktop{
		panel: func(context.Context) assets.Panel { return assets.DarkPanel },
		close: func() {},
	}, nil
}
