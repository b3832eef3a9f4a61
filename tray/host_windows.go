package tray

import "context"

// checkHost has nothing to check: the Windows notification area is always there.
func checkHost(context.Context, *Tray) error { return nil }

// hostIcon wraps png in an .ico file, the only format systray loads on Windows.
func hostIcon(png []byte) ([]byte, error) { return icoFromPNG(png) }
