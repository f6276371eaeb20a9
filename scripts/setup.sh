#!/usr/bin/env bash
# Set up ctr on a fresh Debian bookworm machine (run as root): the system packages ctr
# and its tests use, Node dependencies, and the build. Safe to run again; installs only
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runtime: FUSE, libsquashfs for building images; the launcher links libsquashfuse and
# libfuse3 statically for its built-in FUSE server (squashfuse_ll is the fallback).
# Tests: squashfs-tools(-ng) as independent oracles, busybox for test images, the SIF
# reference tool's sources (scripts/siftool.sh builds it with Go).
# Benchmarks: Charliecloud and bubblewrap as peers, hyperfine.
PKGS=(squashfuse fuse3 libsquashfs1 squashfs-tools squashfs-tools-ng busybox-static
      golang-go golang-github-sylabs-sif-dev charliecloud-runtime bubblewrap hyperfine
      mmdebstrap procps attr python3 make gcc libc6-dev docker-registry skopeo umoci apache2-utils openssl
      slurm-wlm munge libslurm-dev libpmix-dev
      openmpi-bin libopenmpi-dev mpich libmpich-dev zstd
      libsquashfuse-dev libfuse3-dev libzstd-dev liblz4-dev liblzma-dev liblzo2-dev zlib1g-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: these Debian packages are missing and only root can install them: ${missing[*]}" >&2; exit 1; }
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as docker-registry and munge start their services on install (the
  # registry on every interface). The tests start their own, on loopback, with their
  # own configuration: keep the packaged ones from starting.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Real systems ship /dev/fuse as 0666; some fresh machines have 0600.
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && [ "$(stat -c %a /dev/fuse)" != 666 ]; then
  chmod 0666 /dev/fuse
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-fund --no-audit --loglevel=error
fi
npm run -s build
