#!/usr/bin/env bash
# Set up ctr and run the built-in example: build images/busybox.def into a SIF and run
# it, rootless. As root, the example runs as an unprivileged user (ctrdemo, created if
# missing), which is how ctr is meant to be used.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --example
repo=$(pwd)
as_user=()
if [ "$(id -u)" = 0 ]; then
  id -u ctrdemo >/dev/null 2>&1 || useradd --create-home --shell /bin/sh ctrdemo
  as_user=(runuser -u ctrdemo --)
fi
out=/var/tmp/ctr-example-$("${as_user[@]}" id -un)
"${as_user[@]}" mkdir -p "$out"
# The user must reach the built ctr; a checkout under a private directory (/root) isn't.
if ! "${as_user[@]}" test -r "$repo/bin/ctr"; then
  install=/var/tmp/ctr-example-install
  rm -rf "$install" && mkdir -p "$install/native"
  cp -a package.json bin dist node_modules "$install/" && cp -a native/build "$install/native/"
  chmod -R a+rX "$install"
  repo=$install
fi
ctr=("$repo/bin/ctr")
# The user may not be able to read a checkout under /root: give it the definition file.
"${as_user[@]}" tee "$out/busybox.def" <images/busybox.def >/dev/null
set -x
cd "$out"
"${as_user[@]}" "${ctr[@]}" build --force busybox.sif busybox.def
"${as_user[@]}" "${ctr[@]}" inspect busybox.sif
"${as_user[@]}" "${ctr[@]}" run busybox.sif
"${as_user[@]}" "${ctr[@]}" exec busybox.sif sh -c 'echo "inside: $(id -un), cwd $(pwd), image $CTR_NAME"; cat /opt/hello/message'
