#!/bin/bash
# Does MPICH's ping-pong across two nodes hang as often bare as under ctr? Rounds of
# `srun --mpi=pmi2 -N2 -n2 PINGPONG --quick` on the test cluster (scripts/cluster.sh up
# first), as the test user: bare (bench/mpi/pingpong.c built with the host's mpicc.mpich)
# then ctr (plain srun ctr exec MPI-IMAGE /opt/ctr/pingpong.mpich), alternating, each with
# a timeout. A run still going then is diagnosed live (each rank's threads, kernel stack,
# descriptors, gdb backtrace, a few strace lines, its Unix sockets' peers) into
# OUT/MODE.ROUND.diag and cancelled. Prints the counts per mode (also OUT/summary).
#
#   bash bench/mpi/pmi2-finalize-loop.sh [ROUNDS=40] [TIMEOUT_S=30] [OUT=/tmp/pmi2-loop]
#
# CTR_TEST_USER (default ctrtest) runs the steps; the MPI image is the test suite's
# (test/helpers/mpi.ts: CACHE/mpi-*.sif, the newest). As root.
set -u
ROUNDS=${1:-40} T=${2:-30} OUT=${3:-/tmp/pmi2-loop}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
USER_=${CTR_TEST_USER:-ctrtest}
CACHE=${CTR_TEST_CACHE:-/var/tmp/ctr-test-cache}
IMG=$(ls -t "$CACHE"/mpi-*.sif 2>/dev/null | head -1)
[ -n "$IMG" ] || { echo "no MPI image in $CACHE: run test/slurm/mpi once" >&2; exit 1; }
ENV=$(bash "$ROOT/scripts/cluster.sh" env) || { echo "the test cluster is not up" >&2; exit 1; }
H=$(sed -n 's/^CTR_CLUSTER_HEAD=//p' <<<"$ENV"); CONF=$(sed -n 's/^SLURM_CONF=//p' <<<"$ENV")
DIR=$(sed -n 's/^CTR_CLUSTER_DIR=//p' <<<"$ENV")
HEAD=(nsenter --net=/proc/$H/ns/net --uts=/proc/$H/ns/uts --)
AS=("${HEAD[@]}" runuser -u "$USER_" -- env HOME=/home/$USER_ SLURM_CONF=$CONF)
W=$(mktemp -d "$DIR/shared/pmi2-loop.XXXXXX") && chown "$USER_": "$W"
mpicc.mpich -O2 -o "$W/pingpong.mpich" "$ROOT/bench/mpi/pingpong.c" && chmod 755 "$W/pingpong.mpich" || exit 1
mkdir -p "$OUT"
jobs_of_user() { "${HEAD[@]}" env SLURM_CONF="$CONF" squeue -h -u "$USER_" -o %i; }
diagnose() {
  for p in $(pgrep -u "$USER_"); do
    echo "== pid $p $(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | cut -c1-200)"
    echo "net: $(readlink /proc/$p/ns/net) user: $(readlink /proc/$p/ns/user)"
    for t in /proc/$p/task/*; do echo "task ${t##*/} $(awk '{print $3}' $t/stat) wchan=$(cat $t/wchan 2>/dev/null)"; done
    head -12 /proc/$p/stack 2>/dev/null
    ls -l /proc/$p/fd 2>/dev/null | awk 'NR>1{print $9,$10,$11}'
    case "$(cat /proc/$p/comm 2>/dev/null)" in pingpong*)
      timeout 20 gdb -p "$p" -batch -ex 'thread apply all bt' 2>&1 | grep -E '^#|^Thread' | head -40
      timeout 3 strace -f -tt -p "$p" 2>&1 | head -8
      nsenter --net=/proc/$p/ns/net ss -xpn 2>/dev/null | grep -E "pid=$p," ;;
    esac
  done
}
declare -A ok hang fail
for i in $(seq 1 "$ROUNDS"); do
  for mode in bare ctr; do
    if [ $mode = bare ]; then cmd=("$W/pingpong.mpich"); else cmd=("$ROOT/bin/ctr" exec "$IMG" /opt/ctr/pingpong.mpich); fi
    o="$OUT/$mode.$i"
    ( cd "$W" && exec "${AS[@]}" srun --mpi=pmi2 -N2 -n2 "${cmd[@]}" --quick ) >"$o.out" 2>"$o.err" &
    pid=$! end=$(( $(date +%s) + T ))
    while kill -0 $pid 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
    if kill -0 $pid 2>/dev/null; then
      hang[$mode]=$(( ${hang[$mode]:-0} + 1 ))
      echo "round $i $mode: still running after ${T}s: $o.diag" >&2
      diagnose >"$o.diag" 2>&1
      for j in $(jobs_of_user); do "${HEAD[@]}" env SLURM_CONF="$CONF" scancel "$j"; done
      for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
      kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
    elif wait $pid && grep -q '^done sizes=22 ok=1' "$o.out"; then
      ok[$mode]=$(( ${ok[$mode]:-0} + 1 )); rm -f "$o.out" "$o.err"
    else
      fail[$mode]=$(( ${fail[$mode]:-0} + 1 )); echo "round $i $mode: failed: $o.err" >&2
    fi
    for _ in $(seq 100); do [ -z "$(jobs_of_user)" ] && break; sleep 0.1; done
  done
done
rm -rf "$W"
for mode in bare ctr; do echo "$mode: rounds=$ROUNDS ok=${ok[$mode]:-0} hang=${hang[$mode]:-0} failed=${fail[$mode]:-0}"; done | tee "$OUT/summary"
