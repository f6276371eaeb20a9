// MPI through ctr, two ranks on this machine, as the unprivileged test user: the host's
// mpirun (Open MPI 4.1, MPICH 4.0) starts one ctr per rank, through `ctr exec` and
// through a plan file, and the ranks play ping-pong (bench/mpi/pingpong.c) from 8 B to
// 16 MiB, checking every byte they receive. The ranks of one job step share one
// container by default (native/launch_join.c): same user namespace, so Open MPI's
// single-copy transfers (CMA, process_vm_readv) work and it has nothing to warn about.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { mpiImage, parsePingpong, PINGPONG_SIZES } from '../helpers/mpi.js';
import { CTR_BIN, CTR_MAIN } from '../helpers/paths.js';
import { asUser, ctr, userTmp } from '../helpers/user.js';

/** Nothing MPI-shaped should outlive a job: /dev/shm (the container's /dev is the host's)
 * and Open MPI's session directories and vader segments under /tmp. */
async function shmAndSessions(): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir('/dev/shm')) out.push(`/dev/shm/${e}`);
  for (const e of await readdir('/tmp')) {
    if (!/^(ompi|vader|ucx|mpich|hydra|pmix)/i.test(e)) continue;
    out.push(`/tmp/${e}`);
    if (e.startsWith('ompi.')) for (const s of await readdir(`/tmp/${e}`).catch(() => [])) out.push(`/tmp/${e}/${s}`);
  }
  return out.sort();
}

/** Mounts of squashfuse visible on the host (there should never be any). */
async function hostFuseMounts(): Promise<string[]> {
  return (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes('squashfuse'));
}

const NOISE = /CMA|process_vm_readv|single-copy|show_help/;

interface Mpi {
  name: string;
  mpirun: string[];
  /** The variable that holds each rank's number. */
  rankVar: string;
  binary: string;
  /** mpirun's exit status when rank 1 dies of SIGKILL: directly (plan file), or with Node
   * in front of it (ctr exec, which exits 128+9). */
  killedStatus: number;
  killedStatusExec: number | number[];
  /** What running a container per rank (--no-join) does with this MPI. */
  noJoin: { title: string; check: (r: Awaited<ReturnType<typeof asUser>>) => void };
}

// Without join every rank has its own user namespace: Open MPI can't use CMA between
// them, says so, and falls back. The fallback livelocks from 4 MiB on (FIELD-NOTES), so
// only small messages here. Open MPI 4.1.4 prints its warning from the rank that first
// tries CMA, aggregated by mpirun: sometimes garbled into "ORTE_ERROR_LOG ... show_help.c"
// (with bare `unshare -U` ranks too), sometimes lost when the job ends first. So: whatever
// it prints is about CMA or that garbling, and nothing else goes wrong.
const openMpiNoJoin: Mpi['noJoin'] = {
  title: 'different namespaces; Open MPI falls back (and may warn about CMA)',
  check(r) {
    const pp = parsePingpong(String(r.stdout));
    assert.is(r.exitCode, 0, String(r.stderr));
    assert.is(pp.ns.user?.same, false);
    assert.is(pp.ns.mnt?.same, false);
    assert.is(new Set(pp.ns.user.inodes).size, 2);
    assert.equal(pp.sizes.map((s) => s.size), PINGPONG_SIZES.filter((s) => s <= 65536));
    assert.ok(pp.done);
    const err = String(r.stderr).trim();
    if (err) assert.match(err, /\bCMA\b|ORTE_ERROR_LOG: .*show_help\.c/, err);
  },
};

// MPICH (ch4:ucx) can't even start without join: UCX's shared memory transport opens the
// peer's /proc/PID/fd/N, which a process in a sibling user namespace may not.
const mpichNoJoin: Mpi['noJoin'] = {
  title: 'MPI_Init fails on UCX shared memory',
  check(r) {
    assert.is.not(r.exitCode, 0);
    assert.match(String(r.stdout) + String(r.stderr), /UCX\s+ERROR.*Shared memory error/);
    assert.equal(parsePingpong(String(r.stdout)).sizes, []);
  },
};

const MPIS: Mpi[] = [
  { name: 'Open MPI', mpirun: ['mpirun.openmpi', '-n', '2', '--oversubscribe'], rankVar: 'OMPI_COMM_WORLD_RANK', binary: '/opt/ctr/pingpong.openmpi',
    killedStatus: 137, killedStatusExec: 137, noJoin: openMpiNoJoin },
  { name: 'MPICH', mpirun: ['mpirun.mpich', '-n', '2'], rankVar: 'PMI_RANK', binary: '/opt/ctr/pingpong.mpich',
    // Hydra reports the first rank it reaps: the dead one (137 from ctr's Node, which
    // exits 128+9) or the one it killed itself (signal 9): whichever wins the race.
    killedStatus: 9, killedStatusExec: [137, 9], noJoin: mpichNoJoin },
];

/** Start rank R last, so that the other rank is the first on the node: it binds the
 * rendezvous and starts the container's holder (native/launch_join.c). */
const delayRank = (m: Mpi, r: number, cmd: string[]) =>
  ['sh', '-c', `[ "$${m.rankVar}" = ${r} ] && sleep 1; exec "$0" "$@"`, ...cmd];

function mpiSuite(m: Mpi) {
  const S = suite(m.name);
  let img: string, work: string, plan: string, noJoinPlan: string, shmBefore: string[];
  const mpirun = (cmd: string[], timeoutS = 180) =>
    asUser('timeout', ['-s', 'KILL', String(timeoutS), ...m.mpirun, ...cmd], { cwd: work });

  S.before(async () => {
    img = await mpiImage();
    work = await userTmp('ctr-mpi-');
    plan = join(work, 'job.plan');
    noJoinPlan = join(work, 'nojoin.plan');
    for (const [file, flags] of [[plan, []], [noJoinPlan, ['--no-join']]] as const) {
      const r = await ctr(['plan', '-o', file, ...flags, img], { cwd: work });
      assert.is(r.stderr, '', `ctr plan ${flags.join(' ')}`);
      assert.is(r.exitCode, 0);
    }
  });
  S.before.each(async () => {
    await killUserProcesses();
    shmBefore = await shmAndSessions();
  });
  // Checked in each test rather than here: a failing hook would stop the whole suite.
  const nothingLeft = async () => {
    assert.equal(await leftovers(), [], 'processes left behind');
    assert.equal(await shmAndSessions(), shmBefore, 'shared memory or session files left behind');
    assert.equal(await hostFuseMounts(), [], 'squashfuse mounts on the host');
  };
  S.after.each(async () => {
    await killUserProcesses();
  });

  const allSizes = async (how: string, cmd: string[]) => {
    const r = await mpirun([...cmd, m.binary, '--quick']);
    const pp = parsePingpong(String(r.stdout));
    assert.is(r.exitCode, 0, `${how}: ${String(r.stdout).slice(-2000)}${r.stderr}`);
    assert.equal(pp.sizes.map((s) => s.size), PINGPONG_SIZES, `${how}: every size`);
    assert.ok(pp.sizes.every((s) => s.ok && s.iters === 3), `${how}: every size verified`);
    assert.ok(pp.done, `${how}: done`);
    assert.is(pp.ns.user?.same, true, `${how}: one user namespace: ${JSON.stringify(pp.ns)}`);
    assert.is(pp.ns.mnt?.same, true, `${how}: one mount namespace`);
    assert.is(pp.ns.user.inodes.length, 2);
    assert.not.match(String(r.stderr), NOISE, `${how}: no single-copy warning`);
    assert.is(r.stderr, '', `${how}: stderr`);
    await nothingLeft();
  };

  S('ctr exec :: 8 B–16 MiB exchanged and verified in one shared container, no CMA warning', async () => {
    await allSizes('ctr exec', [process.execPath, CTR_MAIN, 'exec', img]);
  });

  // bin/ctr: each rank's launcher asks Node for the plan, then runs the rank itself, with
  // the rank's PMI descriptors and parent (Hydra's proxy) its own.
  S('bin/ctr exec :: 8 B–16 MiB exchanged and verified in one shared container, no CMA warning', async () => {
    await allSizes('bin/ctr exec', [CTR_BIN, 'exec', img]);
  });

  S('plan file :: 8 B–16 MiB exchanged and verified in one shared container, no CMA warning', async () => {
    await allSizes('plan file', [plan]);
  });

  // Rank 1 kills itself with SIGKILL on reaching 1 MiB, while rank 0 waits for it.
  const killed = async (how: string, cmd: string[], status: number | number[]) => {
    const r = await mpirun([...cmd, m.binary, '--quick', '--die-at', '1M'], 60);
    const pp = parsePingpong(String(r.stdout));
    assert.ok([status].flat().includes(r.exitCode ?? -1), `${how}: exit ${r.exitCode}, expected ${status}: ${String(r.stdout).slice(-1500)}${r.stderr}`);
    // Every size below 1 MiB completes before rank 1 dies, but the launcher may kill rank 0
    // before it forwards rank 0's last lines (seen with MPICH's Hydra in CI: 256 KiB was
    // the last line printed), so the check is that sizes were exchanged and none at 1 MiB.
    const sizes = pp.sizes.map((s) => s.size);
    assert.ok(sizes.length > 0 && sizes.every((s) => s < 1024 * 1024), `stopped before 1 MiB: ${sizes.join(' ')}`);
    assert.ok(pp.sizes.every((s) => s.ok), 'every size before the kill verified');
    assert.is(pp.done, false);
    assert.is(pp.ns.user?.same, true);
    await nothingLeft();
  };

  S('rank killed :: plan file, the rank that did not start the container dies; mpirun ends, nothing is left', async () => {
    await killed('plan file', delayRank(m, 1, [plan]), m.killedStatus);
  });

  S('rank killed :: plan file, the rank that started the container dies; mpirun ends, nothing is left', async () => {
    await killed('plan file', delayRank(m, 0, [plan]), m.killedStatus);
  });

  S('rank killed :: ctr exec, the rank that started the container dies; mpirun ends, nothing is left', async () => {
    await killed('ctr exec', delayRank(m, 0, [process.execPath, CTR_MAIN, 'exec', img]), m.killedStatusExec);
  });

  S(`--no-join :: a container per rank (plan file): ${m.noJoin.title}`, async () => {
    m.noJoin.check(await mpirun([noJoinPlan, m.binary, '--quick', '--max', '64K']));
    await nothingLeft();
  });

  return S;
}

mpiSuite(MPIS[0]).run();
mpiSuite(MPIS[1]).run();

// The holder of a shared container is forked by the first rank. Launchers watch their
// ranks through the descriptors they gave them (MPICH's Hydra waits for EOF on each
// rank's stdout and stderr and for its PMI socket to close before it reaps the rank), so
// the holder must keep none of them: else a rank that dies stays "alive" to Hydra for
// as long as the holder lives, and the holder lives as long as the other ranks, which
// wait for the dead one: the job hangs ("rank killed" above, MPICH).
const Holder = suite('join holder');
Holder.after.each(async () => {
  await killUserProcesses();
});

Holder("descriptors :: the first rank's stdout and stderr reach EOF when it exits, while the holder waits for the rest", async () => {
  const img = await mpiImage();
  const work = await userTmp('ctr-mpi-');
  const plan = join(work, 'tagged.plan');
  const p = await ctr(['plan', '-o', plan, '--join-tag', `t${process.pid}`, '--join-count', '2', img], { cwd: work });
  assert.is(p.exitCode, 0, String(p.stderr));
  // One rank of two: the holder lingers (JOIN_LINGER_MS, 10 s) for the other. execa
  // resolves when the rank has exited AND its stdout and stderr pipes are closed.
  const t0 = Date.now();
  const r = await asUser(plan, ['/bin/echo', 'hello'], { cwd: work, timeout: 30_000 });
  const ms = Date.now() - t0;
  assert.is(r.stdout, 'hello\n');
  assert.is(r.exitCode, 0);
  assert.ok(ms < 3000, `the rank's pipes stayed open ${ms} ms after it exited (held by the container's holder)`);
});

Holder.run();
