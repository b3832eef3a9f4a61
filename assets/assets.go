// Package assets holds authagent's icons as PNGs embedded with go:embed: a key with a status
// dot, for each tray status, for light and dark panels, at the sizes tray protocols use.
// It draws nothing at run time; gen_icons.go drew the committed PNGs (go generate). It does
// not decide which status to show: that is the tray's business.
package assets

import (
	"embed"
	"fmt"
)

//go:generate go run gen_icons.go

//go:embed icons/*.png
var icons embed.FS

// Status is what the tray icon says at a glance, worst state first in this list's reverse.
type Status string

// The statuses an icon is drawn for.
const (
	StatusOK         Status = "ok"         // every profile is usable
	StatusRefreshing Status = "refreshing" // something is being refreshed
	StatusLogin      Status = "login"      // a login is needed or waits for the user
	StatusError      Status = "error"      // a profile failed and has nothing usable
	StatusNoAgent    Status = "noagent"    // no agent answers on the socket
)

// Panel is the kind of panel an icon is drawn for: a dark key on a light panel, a light
// key on a dark one.
type Panel string

// The panels icons are drawn for.
const (
	LightPanel Panel = "light"
	DarkPanel  Panel = "dark"
)

// sizes are the pixel sizes drawn, smallest first: what StatusNotifierItem hosts, XEmbed
// trays and the notification area ask for at common panel heights and scales.
var sizes = [...]int{16, 22, 24, 32, 48}

// Sizes lists the pixel sizes the icons are drawn at, smallest first.
func Sizes() []int { return sizes[:] }

// Icon returns the PNG for s on panel p at the smallest drawn size of at least size
// pixels (the largest when size is bigger than all). It returns nil for an unknown status
// or panel.
func Icon(s Status, p Panel, size int) []byte {
	px := sizes[len(sizes)-1]
	for _, z := range sizes {
		if z >= size {
			px = z
			break
		}
	}
	b, err := icons.ReadFile(fmt.Sprintf("icons/%s-%s-%d.png", s, p, px))
	if err != nil {
		return nil
	}
	return b
}
