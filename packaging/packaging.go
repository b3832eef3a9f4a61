// Package packaging holds the files that install authagent into a desktop session: the
// systemd user units, the XDG autostart entry of the tray and the nfpm package config. It
// embeds the first two so that `authagent install --user` writes exactly what packages
// ship. It has no logic.
package packaging

import "embed"

// Files holds systemd/authagent.socket, systemd/authagent.service and
// xdg/authagent-tray.desktop. Their commands name /usr/bin/authagent.
//
//go:embed systemd/authagent.socket systemd/authagent.service xdg/authagent-tray.desktop
var Files embed.FS

// InstalledBinary is the path the embedded files use for the binary.
const InstalledBinary = "/usr/bin/authagent"
