// Package packaging holds the files that install authagent into a desktop session: the
// systemd user units, the XDG autostart entry of the tray and the nfpm package config. It
// embeds the first two so that `authagent install --user` writes exactly what packages
// ship, and it states the layout of the two binaries: the one-shot front at
// PREFIX/bin/authagent, which answers the credential helpers itself and hands every other
// command to the full binary at PREFIX/libexec/authagent/authagent.
package packaging

import (
	"embed"
	"os"
	"path/filepath"
)

// Files holds systemd/authagent.socket, systemd/authagent.service and
// xdg/authagent-tray.desktop. Their commands name /usr/bin/authagent.
//
//go:embed systemd/authagent.socket systemd/authagent.service xdg/authagent-tray.desktop
var Files embed.FS

// InstalledBinary is the path the embedded files use for the binary.
const InstalledBinary = "/usr/bin/authagent"

// fullFromFront is where the full binary is, relative to the front's directory.
var fullFromFront = filepath.Join("..", "libexec", "authagent", "authagent")

// FullBinary is the full authagent binary that belongs to the front at front:
// PREFIX/libexec/authagent/authagent for PREFIX/bin/authagent.
func FullBinary(front string) string {
	return filepath.Join(filepath.Dir(front), fullFromFront)
}

// Front is the one-shot front that hands its commands to the full binary at full, when
// there is one (full is PREFIX/libexec/authagent/authagent and PREFIX/bin/authagent
// exists); otherwise full itself, which answers every command on its own (`go install`).
// Git and the units should run the front: it starts fastest.
func Front(full string) string {
	dir := filepath.Dir(full)
	if filepath.Base(full) != "authagent" || filepath.Base(dir) != "authagent" || filepath.Base(filepath.Dir(dir)) != "libexec" {
		return full
	}
	front := filepath.Join(filepath.Dir(filepath.Dir(dir)), "bin", "authagent")
	if fi, err := os.Stat(front); err != nil || !fi.Mode().IsRegular() {
		return full
	}
	return front
}
