//go:build cgo || !darwin

package tray

import (
	"context"
	"errors"
	"sync"
	"time"

	"fyne.io/systray"

	"github.com/authagent/authagent/assets"
)

// This file is the only one that touches fyne.io/systray and its globals.

// ShowOptions say how the icon looks.
type ShowOptions struct {
	Panel    assets.Panel // the icons drawn for this kind of panel; default: dark
	IconSize int          // pixels; the host scales the icon to fit. Default: 22.
}

// Show puts t in the system tray (a StatusNotifierItem with its menu over
// com.canonical.dbusmenu, on Linux) and runs it until ctx ends or the user picks Quit.
// It can run once per process: systray keeps its state in globals.
func Show(ctx context.Context, t *Tray, o ShowOptions) error {
	if o.Panel == "" {
		o.Panel = assets.DarkPanel
	}
	if o.IconSize <= 0 {
		o.IconSize = 22
	}
	if err := checkHost(ctx, t); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	r := newRenderer(systrayMenu{}, func(action string) {
		if action == ActQuit {
			cancel()
			return
		}
		go t.Do(ctx, action)
	})
	var (
		mu      sync.Mutex             // guards status and tooltip
		status  = assets.StatusNoAgent // the icon set before Run, below
		tooltip string
		first   = make(chan struct{})
		once    sync.Once
	)
	show := func(m Menu) {
		mu.Lock()
		if m.Status != status {
			setIcon(m.Status, o)
			status = m.Status
		}
		if m.Tooltip != tooltip {
			systray.SetTooltip(m.Tooltip)
			tooltip = m.Tooltip
		}
		mu.Unlock()
		r.render(m.Items)
		once.Do(func() { close(first) })
	}
	// systray builds its D-Bus properties from the icon and tooltip just after onReady
	// returns, and drops SetIcon/SetTooltip calls made while it does: set both once more
	// after that, so a change that came in between is not lost until the next event.
	reassert := func() {
		mu.Lock()
		defer mu.Unlock()
		setIcon(status, o)
		systray.SetTooltip(tooltip)
	}
	done := make(chan error, 1)
	onReady := func() {
		go func() {
			done <- t.Run(ctx, show)
			systray.Quit()
		}()
		// The host asks for the menu once this returns: have one ready. The first menu
		// comes as soon as the agent answers or refuses.
		select {
		case <-first:
		case <-time.After(2 * time.Second):
		}
		time.AfterFunc(time.Second, reassert)
	}
	// The title set before Run is also the item's Id, which hosts use to remember it.
	systray.SetTitle("authagent")
	setIcon(assets.StatusNoAgent, o)
	systray.Run(onReady, cancel)
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("the tray did not stop within 5s")
	}
}

func setIcon(s assets.Status, o ShowOptions) {
	png := assets.Icon(s, o.Panel, o.IconSize)
	if icon, err := hostIcon(png); err == nil {
		png = icon
	}
	systray.SetIcon(png)
}

// systrayMenu is the menuBackend of fyne systray.
type systrayMenu struct{}

type systrayEntry struct{ *systray.MenuItem }

func (e systrayEntry) clicks() <-chan struct{} { return e.ClickedCh }

func (systrayMenu) add(parent menuEntry, title, tooltip string) menuEntry {
	if parent == nil {
		return systrayEntry{systray.AddMenuItem(title, tooltip)}
	}
	return systrayEntry{parent.(systrayEntry).AddSubMenuItem(title, tooltip)}
}

func (systrayMenu) addSeparator(parent menuEntry) {
	if parent == nil {
		systray.AddSeparator()
		return
	}
	parent.(systrayEntry).AddSeparator()
}

func (systrayMenu) reset() { systray.ResetMenu() }
