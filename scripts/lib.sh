# Sourced by the scripts in this directory: how they find a Go that can build authagent.
#
# go.mod names the exact Go release authagent is built with. Any Go from 1.21 on can
# fetch that release by itself (GOTOOLCHAIN=auto downloads it through the module proxy
# into the module cache), so the scripts need a Go >= 1.21, not the exact one. Debian 12's
# own golang-go is 1.19, too old; deps.sh installs golang-1.23-go from bookworm-backports
# when no Go >= 1.21 is found.

# go_fetches_toolchains GO: whether the go command GO is 1.21 or newer. It runs outside the
# module, so that the check itself does not fetch anything.
go_fetches_toolchains() {
  local v minor
  v=$(cd / && GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  [ "${v%%.*}" = 1 ] || return 1
  minor=${v#1.}
  minor=${minor%%[!0-9]*}
  [ -n "$minor" ] && [ "$minor" -ge 21 ]
}

# find_go prints the path of a Go >= 1.21: the one on PATH, the official one in
# /usr/local/go, or a Debian golang-1.2x-go package.
find_go() {
  local g
  for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go-1.2[1-9]/bin/go; do
    if [ -n "$g" ] && [ -x "$g" ] && go_fetches_toolchains "$g"; then
      echo "$g"
      return 0
    fi
  done
  return 1
}

# use_go puts the Go that find_go finds first on PATH and lets it fetch the release
# go.mod names (GOTOOLCHAIN=auto, in case the environment or a go.env says local).
use_go() {
  local g
  g=$(find_go) || { echo "no Go >= 1.21 found; run scripts/deps.sh" >&2; return 1; }
  export PATH="$(dirname "$g"):$PATH"
  export GOTOOLCHAIN=auto
}

# apt_get runs apt-get as root (through sudo when not root), never asking (sudo resets the
# environment, so the frontend goes through env), and waiting up to 10 minutes for a dpkg
# lock another program holds: on a machine just booted, unattended-upgrades often does.
apt_get() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"
}
