#!/usr/bin/env bash
# Set up ctr on a Debian bookworm machine: the system packages, Node dependencies, and
# the build. Safe to run again; installs only what is missing (installing needs root).
#
#   bash scripts/setup.sh            what running and building images needs
#   bash scripts/setup.sh --example  that, and busybox-static (scripts/example.sh's image)
#   bash scripts/setup.sh --test     that, and what the tests and benchmarks use
#                                    (scripts/test.sh: Slurm, MPI, a registry, Go...)
set -euo pipefail
cd "$(dirname "$0")/.."
size=run
case ${1-} in
  '') ;;
  --example) size=example ;;
  --test) size=test ;;
  *) echo "setup: unknown option '$1' (use --example or --test, or nothing)" >&2; exit 2 ;;
esac

# Running images: FUSE and squashfuse_ll (the launcher's fallback FUSE server), and
# libsquashfs, through which ctr writes SquashFS for `ctr build` and `ctr pull`.
PKGS=(squashfuse fuse3 libsquashfs1)
# Building the launcher: it links libsquashfuse and libfuse3 (and the compressors they
# use) statically for its in-process FUSE server.
PKGS+=(gcc make libc6-dev libsquashfuse-dev libfuse3-dev
       libzstd-dev liblz4-dev liblzma-dev liblzo2-dev zlib1g-dev)
# --fakeroot over the user's subordinate ids (/etc/subuid): the setuid newuidmap and
# newgidmap. Optional for users: without them fake root fakes the privileged calls.
PKGS+=(uidmap)
# The example image is Debian's static busybox (`Bootstrap: busybox`).
[ "$size" = run ] || PKGS+=(busybox-static)
if [ "$size" = test ]; then
  # Tests: squashfs-tools(-ng) as independent oracles, the SIF reference tool's sources
  # (scripts/siftool.sh builds it with Go), mmdebstrap for `Bootstrap: debootstrap`, a
  # registry and skopeo/umoci for pulls, Slurm (with the SPANK plugin's headers) and
  # both MPIs for the Slurm and MPI tests; iproute2 for the test cluster's network
  # namespaces (scripts/cluster.sh; nsenter, unshare and flock are util-linux).
  # losetup (mount) for the CDI tests' and the I/O limits' loop device.
  # Benchmarks: Charliecloud and bubblewrap as peers, hyperfine. man-db and zsh: the
  # generated man pages and zsh completion are checked by the real programs.
  PKGS+=(squashfs-tools squashfs-tools-ng golang-go golang-github-sylabs-sif-dev
         mmdebstrap procps attr python3 zstd openssl bsdutils mount
         docker-registry skopeo umoci apache2-utils
         slurm-wlm munge libslurm-dev libpmix-dev iproute2 util-linux
         openmpi-bin libopenmpi-dev mpich libmpich-dev
         charliecloud-runtime bubblewrap hyperfine mount
         man-db zsh tzdata)  # tzdata: /etc/localtime, a default bind the compat tests check
  # Optional runtime extras, which the tests use: --network slirp4netns; --overlay IMG
  # (fuse2fs serves the ext3 image, fuse-overlayfs the root; e2fsprogs makes and checks it).
  PKGS+=(slirp4netns fuse2fs fuse-overlayfs e2fsprogs)
  # ctr checkpoint/restore needs CRIU 4.0 or later (--unprivileged); bookworm's is 3.17,
  # which also fails on kernels with a [vvar_vclock] mapping (6.13 and later). The
  # tests build trixie's 4.1.1 (below) with its build dependencies.
  PKGS+=(libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
         python3-protobuf libnl-3-dev libcap-dev libnet1-dev uuid-dev libgnutls28-dev
         libnftables-dev libbsd-dev pkgconf curl xz-utils)
fi

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

# The name-clash check (test/cli/name.test.ts) needs containerd's own `ctr`: Debian's
# containerd package installs /usr/bin/ctr. Taken out of the package into a directory of
# its own, not installed: no one else's PATH gets it, and no daemon comes with it.
if [ "$size" = test ]; then
  cd_root=/opt/ctr-test/containerd
  if [ ! -x "$cd_root/usr/bin/ctr" ]; then
    [ "$(id -u)" = 0 ] || { echo "setup: only root can put containerd's ctr in $cd_root" >&2; exit 1; }
    dl=$(mktemp -d) && chmod 755 "$dl"
    (cd "$dl" && apt-get download -q containerd >/dev/null 2>&1) || { echo "setup: apt-get download containerd failed" >&2; exit 1; }
    mkdir -p "$cd_root"
    dpkg-deb --fsys-tarfile "$dl"/containerd_*.deb | tar -x -C "$cd_root" ./usr/bin/ctr
    rm -rf "$dl"
  fi
fi

# CRIU 4.1.1 for the checkpoint tests (test/cli/checkpoint), built once from Debian
# trixie's source (checked against its sha256) into a directory of its own, as containerd's
# ctr above: the tests name it with CTR_CRIU. It needs no capability: ctr runs it inside
# the container's namespaces, with the container's (native/launch_criu.c).
if [ "$size" = test ]; then
  criu_dir=/opt/ctr-test/criu criu_ver=4.1.1
  criu_sha=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
  if ! "$criu_dir/criu" --version 2>/dev/null | grep -qx "Version: $criu_ver"; then
    [ "$(id -u)" = 0 ] || { echo "setup: only root can build CRIU into $criu_dir" >&2; exit 1; }
    echo "setup: building CRIU $criu_ver into $criu_dir (a few minutes)"
    src=$(mktemp -d)
    curl -fsSL -o "$src/criu.tar.xz" "https://deb.debian.org/debian/pool/main/c/criu/criu_$criu_ver.orig.tar.xz"
    echo "$criu_sha  $src/criu.tar.xz" | sha256sum -c --quiet
    tar -xJf "$src/criu.tar.xz" -C "$src"
    make -s -C "$src/criu-$criu_ver" -j"$(nproc)" criu >"$src/build.log" 2>&1 || { tail -20 "$src/build.log" >&2; echo "setup: building CRIU failed (log: $src/build.log)" >&2; exit 1; }
    mkdir -p "$criu_dir"
    install -m 755 "$src/criu-$criu_ver/criu/criu" "$criu_dir/criu"
    rm -rf "$src"
  fi
fi

# Node 20 or later (Debian bookworm's own nodejs is 18: use NodeSource's or nvm's).
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || major=
if [ -z "$major" ] || [ "$major" -lt 20 ] || ! command -v npm >/dev/null; then
  echo "setup: ctr needs node 20 or later and npm in PATH (found: $(node --version 2>/dev/null || echo none)); Debian bookworm's nodejs is 18: install Node 20+ from NodeSource or nvm" >&2
  exit 1
fi

# Real systems ship /dev/fuse and /dev/net/tun (slirp4netns) as 0666; some fresh
# machines have 0600.
for dev in /dev/fuse /dev/net/tun; do
  if [ "$(id -u)" = 0 ] && [ -c "$dev" ] && [ "$(stat -c %a "$dev")" != 666 ]; then
    chmod 0666 "$dev"
  fi
done

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-fund --no-audit --loglevel=error
fi
npm run -s build
