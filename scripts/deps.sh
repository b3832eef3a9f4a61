#!/usr/bin/env bash
# Installs the system programs authagent's tests and demo use, when missing: a D-Bus
# daemon, gnome-keyring (the real Secret Service), git and curl. Go modules come through
# `go` itself. Needs root (or sudo) only when something is missing.
set -euo pipefail

missing=()
command -v dbus-daemon >/dev/null || missing+=(dbus)
command -v dbus-run-session >/dev/null || missing+=(dbus)
command -v gnome-keyring-daemon >/dev/null || missing+=(gnome-keyring)
command -v secret-tool >/dev/null || missing+=(libsecret-tools)
command -v git >/dev/null || missing+=(git)
command -v curl >/dev/null || missing+=(curl ca-certificates)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null || missing+=(openssh-client)
command -v systemd-socket-activate >/dev/null || missing+=(systemd)
command -v man >/dev/null || missing+=(man-db)
# tray tests: a virtual X display, a panel that hosts StatusNotifierItems, a clicker and a
# screenshot tool (check for `import`: some images ship a stand-in `convert`)
command -v Xvfb >/dev/null || missing+=(xvfb)
command -v xdotool >/dev/null || missing+=(xdotool)
command -v import >/dev/null || missing+=(imagemagick)
command -v xfce4-panel >/dev/null || missing+=(xfce4-panel)
ls /usr/lib/*/xfce4/xfconf/xfconfd >/dev/null 2>&1 || missing+=(xfconf)
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || missing+=(golang-go)

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
