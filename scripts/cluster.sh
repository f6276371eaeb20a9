#!/usr/bin/env bash
# A multi-node Slurm cluster on this one machine, for the tests (as root).
#
#   bash scripts/cluster.sh up [N]     bring up N nodes (default 3); idempotent
#   bash scripts/cluster.sh status     say what is up; exit 0 only when every node is idle
#   bash scripts/cluster.sh down       stop it and remove everything it made
#   bash scripts/cluster.sh env        print the variables its users need (KEY=VALUE)
#
# Each node is a set of namespaces held by a `sleep` process: its own network namespace
# (eth0, a veth whose peer is on a bridge in the head's network namespace, an address in
# SUBNET), its own UTS namespace (hostname ctrnI, so slurmd finds its NodeName), and its
# own mount namespace with private /tmp, /var/tmp, /var/spool (SlurmdSpoolDir is
# /var/spool/slurmd, as sites have it) and /dev/shm, a sysfs of its own network
# namespace, a boot id of its own, and a hosts file naming every node.
# The rest of the file system (the checkout, the test images: CTR_CLUSTER_SHARE, a colon
# list, rebound over the private directories) is the cluster's shared file system. The
# head (a network and UTS namespace, hostname ctrhead) runs slurmctld and is the submit
# host: srun/sbatch run there (`nsenter --net --uts`, see `env`). One munged, with its
# own key and socket, serves every node (slurm.conf's AuthInfo names the socket). No
# address or route is ever added to this machine's own network namespace.
#
# All state lives in CTR_CLUSTER_DIR (default /var/lib/ctr-cluster): slurm.conf, the
# plugstack.conf naming ctr's plugin (from CTR_ROOT, default this checkout), the pids of
# what it started, logs per daemon in log/, and shared/ (mode 1777, seen by every node).
# `down` kills what runs in the cluster's namespaces and the munged it started, by pid,
# and removes the directory; the namespaces, links and mounts go with their processes.
set -euo pipefail

STATE=${CTR_CLUSTER_DIR:-/var/lib/ctr-cluster}
ROOT=${CTR_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
SUBNET=${CTR_CLUSTER_SUBNET:-10.213.7}   # /24, inside the cluster's namespaces only
SHARE=${CTR_CLUSTER_SHARE:-/var/tmp/ctr-test-cache}
prog=cluster
die() { echo "$prog: error: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (it makes namespaces and starts Slurm's daemons)"

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pidof_file() { cat "$1" 2>/dev/null || true; }
# A holder's pid, only while it is still our `sleep infinity` in namespaces of its own
# (a pid file outliving its process must not name some other process).
holder() {
  local p; p=$(pidof_file "$STATE/pids/$1")
  [ -n "$p" ] && [ "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" = "sleep infinity " ] &&
    [ "$(readlink "/proc/$p/ns/net")" != "$(readlink /proc/$$/ns/net)" ] && echo "$p"
  return 0
}
nodes() { cat "$STATE/nodes" 2>/dev/null || echo 0; }
in_head() { nsenter --net="/proc/$(holder head)/ns/net" --uts="/proc/$(holder head)/ns/uts" -- "$@"; }
in_node() { local h; h=$(holder "n$1"); shift
            nsenter --net="/proc/$h/ns/net" --uts="/proc/$h/ns/uts" --mount="/proc/$h/ns/mnt" -- "$@"; }
sinfo_states() { in_head env SLURM_CONF="$STATE/slurm.conf" sinfo -h -N -o '%N %t' 2>/dev/null; }

# Every node idle, every holder and daemon alive.
healthy() {
  local n; n=$(nodes)
  [ "$n" -gt 0 ] || return 1
  alive "$(holder head)" && alive "$(pidof_file "$STATE/run/slurmctld.pid")" &&
    alive "$(pidof_file "$STATE/munge/munged.pid")" || return 1
  for i in $(seq 1 "$n"); do
    alive "$(holder "n$i")" && alive "$(pidof_file "$STATE/run/slurmd-ctrn$i.pid")" || return 1
  done
  [ "$(sinfo_states | awk '$2 != "idle"' | wc -l)" = 0 ] && [ "$(sinfo_states | wc -l)" = "$n" ]
}

# The processes in holder PID's network namespace: everything the cluster runs (daemons,
# steps, tasks, their containers) is in the head's or a node's one. Never this machine's
# own: a holder whose network namespace is ours yields nothing.
ns_members() {
  local h=$1 net p
  net=$(readlink "/proc/$h/ns/net" 2>/dev/null) || return 0
  [ -n "$net" ] && [ "$net" != "$(readlink /proc/$$/ns/net)" ] || return 0
  local pat=${net//[/\\[}; pat=${pat//]/\\]}  # net:[N], literally, as a find -lname pattern
  for p in $(find /proc/[0-9]*/ns/net -maxdepth 0 -lname "$pat" 2>/dev/null); do
    p=${p#/proc/}; p=${p%%/*}
    if [ "$p" != "$h" ] && [ "$p" != $$ ]; then echo "$p"; fi
  done
  return 0  # under set -e, in $(...) of an assignment: a false test last must not end `down`
}

stop_pids() {  # TERM, up to 5 s, then KILL
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 50); do
    local left=0 p
    for p in "$@"; do alive "$p" && left=1; done
    [ "$left" = 0 ] && return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
}

down() {
  [ -d "$STATE" ] || return 0
  local h members=()
  for h in $(ls "$STATE/pids" 2>/dev/null); do
    local pid; pid=$(holder "$h")
    alive "$pid" || continue
    # shellcheck disable=SC2207
    members+=($(ns_members "$pid"))
  done
  stop_pids "${members[@]}"
  local holders=()
  for h in $(ls "$STATE/pids" 2>/dev/null); do alive "$(holder "$h")" && holders+=("$(holder "$h")"); done
  stop_pids "${holders[@]}"
  local m; m=$(pidof_file "$STATE/munge/munged.pid")
  # Only the munged that serves this cluster's socket.
  if alive "$m" && tr '\0' ' ' <"/proc/$m/cmdline" | grep -qF -- "--socket=$STATE/munge/"; then stop_pids "$m"; fi
  rm -rf "$STATE"
}

write_conf() {
  local n=$1 i
  {
    echo "ClusterName=ctrcluster"
    echo "SlurmctldHost=ctrhead($SUBNET.1)"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "AuthInfo=socket=$STATE/munge/munge.socket.2"
    echo "StateSaveLocation=$STATE/ctld"
    echo "SlurmdSpoolDir=/var/spool/slurmd"
    echo "SlurmctldPidFile=$STATE/run/slurmctld.pid"
    echo "SlurmdPidFile=$STATE/run/slurmd-%n.pid"
    echo "SlurmctldLogFile=$STATE/log/slurmctld.log"
    echo "SlurmdLogFile=$STATE/log/slurmd-%n.log"
    echo "SlurmdParameters=config_overrides"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "JobCompType=jobcomp/none"
    echo "MpiDefault=none"
    echo "ReturnToService=2"
    echo "KillWait=5"
    echo "PlugStackConfig=$STATE/plugstack.conf"
    for i in $(seq 1 "$n"); do
      echo "NodeName=ctrn$i NodeAddr=$SUBNET.$((10 + i)) CPUs=2 State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=ctrn[1-$n] Default=YES MaxTime=INFINITE State=UP"
  } >"$STATE/slurm.conf"
  echo "required $ROOT/native/build/ctr_spank.so ctr=$ROOT/bin/ctr stage_dir=/tmp" >"$STATE/plugstack.conf"
  {
    echo "127.0.0.1 localhost"
    echo "$SUBNET.1 ctrhead"
    for i in $(seq 1 "$n"); do echo "$SUBNET.$((10 + i)) ctrn$i"; done
  } >"$STATE/hosts"
}

start_munge() {
  install -d -o munge -g munge -m 0700 "$STATE/munge"
  mungekey -c -k "$STATE/munge/munge.key" -b 1024 2>/dev/null
  chown munge:munge "$STATE/munge/munge.key"
  # The socket's directory must be searchable by the users that authenticate.
  chmod 0755 "$STATE/munge"
  install -o munge -g munge -m 0640 /dev/null "$STATE/log/munged.log"
  runuser -u munge -- /usr/sbin/munged --socket="$STATE/munge/munge.socket.2" \
    --key-file="$STATE/munge/munge.key" --pid-file="$STATE/munge/munged.pid" \
    --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/munged.seed" 9>&- \
    || die "munged did not start (see $STATE/log/munged.log)"
}

# A holder: `sleep infinity` in new namespaces (unshare execs it, so its pid is theirs).
start_holder() {
  local name=$1; shift
  setsid unshare "$@" -- sleep infinity </dev/null >/dev/null 2>&1 9>&- &
  echo $! >"$STATE/pids/$name"
  for _ in $(seq 50); do
    [ -n "$(holder "$name")" ] && return 0
    sleep 0.02
  done
  die "the $name holder did not get its namespaces"
}

# Node I's mounts, in its own mount namespace: private directories, then the shared
# paths rebound over them, the hosts file.
node_mounts() {
  local i=$1 keep="$STATE/keep/n$1" p k=0
  mkdir -p "$keep"
  in_node "$1" sh -euc '
    keep=$1 share=$2 hosts=$3
    mount --make-rprivate /
    k=0
    IFS=:
    for p in $share; do [ -d "$p" ] && mkdir -p "$keep/$k" && mount --rbind "$p" "$keep/$k"; k=$((k + 1)); done
    for d in /tmp /var/tmp /dev/shm; do mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$d"; done
    mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /var/spool
    k=0
    for p in $share; do
      if mountpoint -q "$keep/$k" 2>/dev/null; then mkdir -p "$p" && mount --move "$keep/$k" "$p"; fi
      k=$((k + 1))
    done
    mount --bind "$hosts" /etc/hosts
    # A sysfs of the node'"'"'s own network namespace (its eth0 and MAC, as UCX and hwloc
    # read them there), with the cgroup hierarchies moved over from the old one.
    mkdir -p "$keep/cgroup"
    mount --rbind /sys/fs/cgroup "$keep/cgroup"
    mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
    mount --move "$keep/cgroup" /sys/fs/cgroup
    # A boot id of its own: UCX (MPICH ch4:ucx) takes one boot id for one machine and
    # would reach a rank on another node through shared memory and /proc/PID/fd.
    cat /proc/sys/kernel/random/uuid >"$keep.boot_id"
    mount --bind "$keep.boot_id" /proc/sys/kernel/random/boot_id
  ' sh "$keep" "$SHARE" "$STATE/hosts"
}

up() {
  local n=${1:-3} t
  for t in ip nsenter unshare setsid flock slurmctld slurmd munged mungekey sinfo; do
    command -v "$t" >/dev/null || die "$t not found (bash scripts/setup.sh --test installs it)"
  done
  [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "N must be 1..99, not '$n'"
  # Reused only as it is: healthy, N nodes, and serving this checkout (its plugstack.conf
  # names ROOT's plugin; the nodes share SHARE), else a suite would test another build.
  if healthy && [ "$(nodes)" = "$n" ] && [ "$(cat "$STATE/for" 2>/dev/null)" = "$ROOT $SHARE" ]; then return 0; fi
  [ -d "$STATE" ] && { log "a cluster here is not healthy, has $(nodes) nodes or serves another checkout: taking it down first"; down; }
  mkdir -p "$STATE"/{pids,run,log,ctld,keep}
  echo "$ROOT $SHARE" >"$STATE/for"
  install -d -m 1777 "$STATE/shared"
  echo "$n" >"$STATE/nodes"
  local p IFS_=$IFS
  IFS=:; for p in $SHARE; do mkdir -p "$p"; done; IFS=$IFS_
  write_conf "$n"
  start_munge

  start_holder head --net --uts
  nsenter --net="/proc/$(holder head)/ns/net" --uts="/proc/$(holder head)/ns/uts" sh -euc '
    hostname ctrhead
    ip link set lo up
    ip link add br0 type bridge
    ip addr add "$1.1/24" dev br0
    ip link set br0 up
  ' sh "$SUBNET"
  for i in $(seq 1 "$n"); do
    start_holder "n$i" --net --uts --mount
    nsenter --net="/proc/$(holder head)/ns/net" ip link add "veth$i" type veth peer name eth0 netns "$(holder "n$i")"
    nsenter --net="/proc/$(holder head)/ns/net" sh -euc 'ip link set "$1" master br0 && ip link set "$1" up' sh "veth$i"
    in_node "$i" sh -euc '
      hostname "ctrn$1"
      ip link set lo up
      ip addr add "$2.$((10 + $1))/24" dev eth0
      ip link set eth0 up
    ' sh "$i" "$SUBNET"
    node_mounts "$i"
  done
  export SLURM_CONF="$STATE/slurm.conf"
  in_head slurmctld -i -f "$SLURM_CONF" 9>&- || die "slurmctld did not start (see $STATE/log/slurmctld.log)"
  for i in $(seq 1 "$n"); do
    in_node "$i" slurmd -f "$SLURM_CONF" 9>&- || die "slurmd on ctrn$i did not start (see $STATE/log/slurmd-ctrn$i.log)"
  done
  for _ in $(seq 300); do
    healthy && return 0
    sleep 0.1
  done
  sinfo_states >&2 || true
  die "the nodes did not become idle in 30 s (logs: $STATE/log)"
}

status() {
  if [ ! -d "$STATE" ]; then echo "down"; return 1; fi
  echo "state: $STATE ($(nodes) nodes)"
  local h
  for h in $(ls "$STATE/pids"); do
    if alive "$(holder "$h")"; then
      echo "$h: holder $(holder "$h"), processes: $(ns_members "$(holder "$h")" | tr '\n' ' ')"
    else echo "$h: gone"; fi
  done
  sinfo_states || echo "slurmctld: not answering"
  healthy
}

case ${1:-} in
  up) exec 9>"$STATE.lock"; flock 9; up "${2:-3}" ;;
  down) exec 9>"$STATE.lock"; flock 9; down; rm -f "$STATE.lock" ;;
  status) status ;;
  env)
    [ -d "$STATE" ] || die "not up"
    echo "SLURM_CONF=$STATE/slurm.conf"
    echo "CTR_CLUSTER_DIR=$STATE"
    echo "CTR_CLUSTER_NODES=$(nodes)"
    echo "CTR_CLUSTER_HEAD=$(holder head)"
    for i in $(seq 1 "$(nodes)"); do echo "CTR_CLUSTER_N$i=$(holder "n$i")"; done ;;
  *) echo "usage: $0 up [N] | down | status | env" >&2; exit 2 ;;
esac
