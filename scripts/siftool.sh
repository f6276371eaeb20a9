#!/usr/bin/env bash
# siftool, the command-line tool of Sylabs' SIF reference implementation (sif v2): the
# tests' independent oracle for SIF files (`siftool list|info|header|dump|new|add ...`).
#
#   bash scripts/siftool.sh ARGS...   run it (building it first if needed)
#   bash scripts/siftool.sh --build   only build it; print the binary's path
#
# It is built from the Go sources Debian ships in golang-github-sylabs-sif-dev (the same
# package holds the reference test images the SIF tests read), with Debian's golang-go,
# in GOPATH mode: no network. Missing packages are installed when run as root. The
# binary is cached under $CTR_TEST_CACHE (default /var/tmp/ctr-test-cache), named after
# the package's version, so an upgrade rebuilds it.
set -euo pipefail
pkgs=(golang-go golang-github-sylabs-sif-dev)
src=/usr/share/gocode/src/github.com/sylabs/sif
cache=${CTR_TEST_CACHE:-/var/tmp/ctr-test-cache}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "siftool: needs the Debian packages ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  }
fi

version=$(dpkg-query -W -f='${Version}' golang-github-sylabs-sif-dev)
bin=$cache/siftool-${version//[^A-Za-z0-9.+-]/_}
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Debian installs the v2 module under its v1 import path: GOPATH mode needs the /v2
  # name as well, and a main package of our own (Debian ships the library, not the tool).
  mkdir -p "$work/gopath/src/github.com/sylabs/sif" "$work/gopath/src/ctr-siftool"
  ln -s "$src" "$work/gopath/src/github.com/sylabs/sif/v2"
  cat >"$work/gopath/src/ctr-siftool/main.go" <<'EOF'
// siftool: Sylabs' siftool commands under a bare cobra root.
package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/sylabs/sif/v2/pkg/siftool"
)

func main() {
	root := &cobra.Command{Use: "siftool", SilenceUsage: true}
	if err := siftool.AddCommands(root); err != nil {
		os.Stderr.WriteString("siftool: " + err.Error() + "\n")
		os.Exit(2)
	}
	if root.Execute() != nil {
		os.Exit(1)
	}
}
EOF
  (cd "$work/gopath/src/ctr-siftool" &&
    GOPATH="$work/gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOCACHE="$work/gocache" \
      go build -o "$work/siftool" .) || { echo "siftool: building it from $src failed" >&2; exit 2; }
  # Several tests may build it at once: each renames its own complete binary into place.
  chmod 755 "$work/siftool"
  mv -f "$work/siftool" "$bin.$$" && mv -f "$bin.$$" "$bin"
  rm -rf "$work"
  trap - EXIT
fi
if [ "${1-}" = --build ]; then
  echo "$bin"
  exit 0
fi
exec "$bin" "$@"
