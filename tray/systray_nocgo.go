//go:build darwin && !cgo

package tray

import (
	"context"
	"errors"

	"github.com/authagent/authagent/assets"
)

// ErrNoTray means this binary has no tray: fyne.io/systray needs cgo on macOS, and it
// was built without.
var ErrNoTray = errors.New("this authagent was built without the tray (it needs cgo on macOS)")

// Built says whether this binary has the tray; it lacks it on macOS without cgo.
const Built = false

// ShowOptions say how the icon looks.
type ShowOptions struct {
	Panel    assets.Panel
	IconSize int
}

// Show returns ErrNoTray: this binary was built without cgo.
func Show(context.Context, *Tray, ShowOptions) error { return ErrNoTray }
