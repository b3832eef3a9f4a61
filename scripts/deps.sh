#!/usr/bin/env bash
# Installs what authagent's demo or tests need, when missing, on Debian 12:
#
#   scripts/deps.sh demo   a Go that can build authagent, a D-Bus daemon and gnome-keyring
#                          (the real Secret Service the demo stores its key in), curl
#   scripts/deps.sh test   all of that, plus what the tests drive: git, an SSH server and
#                          client, systemd-socket-activate, man, and for the tray tests a
#                          virtual X display, a desktop panel, a clicker and a screenshot tool
#
# Go: see scripts/lib.sh. Without a Go >= 1.21 it installs golang-1.23-go from Debian's
# bookworm-backports, which then fetches the exact release go.mod names. Go modules come
# through `go` itself. Needs root (or sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
what=${1:-test}
case $what in
demo | test) ;;
*)
  echo "usage: scripts/deps.sh demo|test" >&2
  exit 2
  ;;
esac

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! find_go >/dev/null; then
  if ! grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release; then
    echo "authagent needs Go 1.21 or newer to build (it fetches the release go.mod names by itself)." >&2
    echo "Install one from https://go.dev/dl/ or your distribution, then run this again." >&2
    exit 1
  fi
  echo "installing Go: golang-1.23-go from bookworm-backports (it fetches $(sed -n 's/^go //p' go.mod) by itself)" >&2
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
      $sudo tee /etc/apt/sources.list.d/authagent-bookworm-backports.sources >/dev/null
  fi
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends -t bookworm-backports golang-1.23-go ca-certificates >/dev/null
fi

missing=()
command -v dbus-daemon >/dev/null || missing+=(dbus)
command -v dbus-run-session >/dev/null || missing+=(dbus)
command -v gnome-keyring-daemon >/dev/null || missing+=(gnome-keyring)
command -v secret-tool >/dev/null || missing+=(libsecret-tools)
command -v curl >/dev/null || missing+=(curl ca-certificates)
if [ "$what" = test ]; then
  # go test -race needs cgo, so a C compiler
  command -v gcc >/dev/null || missing+=(gcc libc6-dev)
  command -v git >/dev/null || missing+=(git)
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
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
