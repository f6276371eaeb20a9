// Start-up of `/bin/true` in a container: bare metal, ctr's plan file (C launcher
// alone), `ctr exec` (native/build/ctr, the launcher as ctr, as make install puts it in
// PREFIX/bin; also through bin/ctr, the sh script; a miss starts Node from ctr's
// start-up snapshot for planning;
// and from plain Node, without the snapshot), Charliecloud's ch-run on the same
// SquashFS bytes, and bubblewrap on the unpacked tree. Every container start is a
// fresh namespace and a fresh FUSE mount ("cold" mount, warm page cache).
// `ctr exec` runs three ways: from the launcher's plan cache (warm: every round but the
// first), with it off (CTR_PLAN_CACHE=0: Node plans every time, as before the cache),
// and as a first launch (the cache emptied before each run: Node plans, and the plan
// is stored). Then whole 32-rank jobs under mpirun, the same ways.
// As root, everything runs as an unprivileged user (BENCH_USER, default ctrbench).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { asUser, CTR, CTR_BIN, CTR_FRONT, image, planFile, pythonTree, USER, WORK } from './images.js';
import { measure, REPO, save, table, type Contender } from './lib.js';

const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const rounds = Number(process.env.BENCH_ROUNDS ?? (process.argv.includes('--full') ? 200 : 40));
export async function startup(): Promise<string> {
  const { sif, sqfs, dir } = image('busybox', join(REPO, 'images/busybox.def'));
  const plan = planFile({ sif, sqfs, dir }, 'busybox');
  const work = WORK;
  const user = USER;
  const ctr = CTR;
  // Node parses every certificate NODE_EXTRA_CA_CERTS names at start-up (~70 ms for
  // Debian's bundle, which this machine sets). Node's own bare start-up is without it,
  // so every contender runs without it; two extra rows show the cost when it is set.
  const env: NodeJS.ProcessEnv = { ...process.env, USER: user ?? process.env.USER ?? 'user' };
  delete env.NODE_EXTRA_CA_CERTS;
  // Plan caches of the benchmark's own (XDG_RUNTIME_DIR/ctr/plans), private to its user.
  const cacheDir = (name: string) => {
    const d = join(work, name);
    mkdirSync(d, { recursive: true, mode: 0o700 });
    if (user) {
      const [uid, gid] = ['-u', '-g'].map((f) => Number(spawnSync('id', [f, user], { encoding: 'utf8' }).stdout));
      chownSync(d, uid, gid);
    }
    chmodSync(d, 0o700);
    return d;
  };
  const warm = { ...env, XDG_RUNTIME_DIR: cacheDir('plancache-warm') };
  const first = cacheDir('plancache-first');
  const off = { ...env, CTR_PLAN_CACHE: '0' };
  // The first launch and the one without a cache both go through the same sh, which
  // empties the first one's cache.
  const emptied = (cmd: string[]) => asUser(['sh', '-c', `rm -rf ${first}/ctr; exec "$@"`, 'sh', ...cmd]);
  const contenders: Contender[] = [
    { name: 'bare /bin/true', cmd: asUser(['/bin/true']), env },
    { name: 'ctr plan file', cmd: asUser([plan, '/bin/true']), cwd: work, env },
    { name: 'ctr exec (SIF), plan cache warm', cmd: asUser([CTR_FRONT, 'exec', sif, '/bin/true']), cwd: work, env: warm },
    { name: 'ctr exec (SIF) through bin/ctr (sh), plan cache warm', cmd: asUser([CTR_BIN, 'exec', sif, '/bin/true']), cwd: work, env: warm },
    { name: 'ctr exec (SIF), first launch (plan cache empty)', cmd: emptied([CTR_BIN, 'exec', sif, '/bin/true']), cwd: work, env: { ...env, XDG_RUNTIME_DIR: first } },
    { name: 'ctr exec (SIF), plan cache off (as before it)', cmd: emptied([CTR_BIN, 'exec', sif, '/bin/true']), cwd: work, env: off },
    { name: 'ctr exec, plain Node (no snapshot)', cmd: asUser([...ctr, 'exec', sif, '/bin/true']), cwd: work, env: off },
    { name: 'node -e 0 (reference)', cmd: asUser([process.execPath, '-e', '0']), env },
  ];
  if (process.env.NODE_EXTRA_CA_CERTS) {
    contenders.push(
      { name: 'ctr exec, NODE_EXTRA_CA_CERTS set', cmd: asUser([CTR_BIN, 'exec', sif, '/bin/true']), cwd: work, env: { ...off, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS } },
      { name: 'node -e 0, NODE_EXTRA_CA_CERTS set', cmd: asUser([process.execPath, '-e', '0']), env: { ...env, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS } },
    );
  }
  if (has('ch-run')) contenders.push({ name: 'ch-run (same SquashFS)', cmd: asUser(['ch-run', sqfs, '--', '/bin/true']), cwd: work, env });
  if (has('bwrap')) {
    contenders.push({ name: 'bwrap (unpacked tree)', cmd: asUser(['bwrap', '--unshare-user', '--ro-bind', dir, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true']), cwd: work, env });
  }
  // "Repeated": a launch into a container that is already up, as every rank but the
  // first of a job step on a node does (native/launch_join.c): a member that sleeps
  // holds it, and each measured launch joins it (setns) instead of building one.
  const joinPlan = planFile({ sif, sqfs, dir }, 'busybox-join', ['--join-tag', `bench-${process.pid}`]);
  const [cmd, ...args] = asUser([joinPlan, '/bin/sleep', '600']);
  const holder = spawn(cmd, args, { cwd: work, env, detached: true, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000));
  contenders.splice(2, 0, { name: 'ctr plan file, joining a running container (repeated)', cmd: asUser([joinPlan, '/bin/true']), cwd: work, env });
  let rows;
  try {
    rows = measure(contenders, rounds);
  } finally {
    process.kill(-holder.pid!, 'SIGTERM');
  }
  const md = table(`Start-up of /bin/true (${rounds} interleaved rounds, ${hostname()})`, rows);
  const jobs = mpiJobs(sif, plan, work, env, warm, off);
  const py = pythonStartup(work, env, warm);
  const flags = await save({ name: 'startup', date: new Date().toISOString(), host: hostname(), rows: [...rows, ...jobs.rows, ...py.rows] });
  const at = (name: string) => rows.find((r) => r.name === name)!;
  const planRow = at('ctr plan file');
  const ch = rows.find((r) => r.name.startsWith('ch-run'));
  const node = at('node -e 0 (reference)');
  const execRow = at('ctr exec (SIF), plan cache warm');
  const shRow = at('ctr exec (SIF) through bin/ctr (sh), plan cache warm');
  const firstRow = at('ctr exec (SIF), first launch (plan cache empty)');
  const offRow = at('ctr exec (SIF), plan cache off (as before it)');
  const notes = [
    ch ? `plan file / ch-run: ${(planRow.medianMs / ch.medianMs).toFixed(2)}× (target ≤ 1.0×)` : 'ch-run not installed',
    `ctr exec, plan cache warm / plan file: ${(execRow.medianMs / planRow.medianMs).toFixed(2)}× (target ≤ 1.1×; ` +
      `through bin/ctr's sh ${(shRow.medianMs / planRow.medianMs).toFixed(2)}×)`,
    ch ? `ctr exec, plan cache warm / ch-run: ${(execRow.medianMs / ch.medianMs).toFixed(2)}× (target ≤ 1.0×)` : '',
    `ctr exec, first launch / plan cache off: ${(firstRow.medianMs / offRow.medianMs).toFixed(2)}× (target ≤ 1.0×)`,
    `ctr exec without the cache − node start-up: ${(offRow.medianMs - node.medianMs).toFixed(1)} ms (target ≤ 30 ms)`,
    ...jobs.notes,
    ...py.notes,
    ...flags,
  ].filter(Boolean);
  return md + '\n' + jobs.md + '\n' + py.md + '\n' + notes.map((n) => `- ${n}`).join('\n') + '\n';
}

/**
 * `python3 -c pass`: an interpreter of 6.8 MB and its libraries, read cold through a fresh
 * FUSE mount on every start. With and without the launcher's read-ahead of the command's
 * file (fuse_prefetch, CTR_PREFETCH=0), against ch-run on the same SquashFS bytes.
 */
function pythonStartup(work: string, env: NodeJS.ProcessEnv, warm: NodeJS.ProcessEnv) {
  const img = image('python', () => pythonTree());
  const plan = planFile(img, 'python');
  const pyRounds = Number(process.env.BENCH_PY_ROUNDS ?? (process.argv.includes('--full') ? 60 : 20));
  const cmd = ['/usr/bin/python3', '-c', 'pass'];
  const contenders: Contender[] = [
    { name: 'bare python3 -c pass (host)', cmd: asUser(cmd), cwd: work, env },
    { name: 'ctr plan file', cmd: asUser([plan, ...cmd]), cwd: work, env },
    { name: 'ctr plan file, no read-ahead of the command (CTR_PREFETCH=0)', cmd: asUser([plan, ...cmd]), cwd: work, env: { ...env, CTR_PREFETCH: '0' } },
    { name: 'ctr exec (SIF), plan cache warm', cmd: asUser([CTR_FRONT, 'exec', img.sif, ...cmd]), cwd: work, env: warm },
  ];
  const hasCh = has('ch-run');
  if (hasCh) contenders.push({ name: 'ch-run (same SquashFS)', cmd: asUser(['ch-run', img.sqfs, '--', ...cmd]), cwd: work, env });
  const rows = measure(contenders, pyRounds);
  const r = (n: string) => rows.find((x) => x.name === n)!.medianMs;
  const notes = [`python3 -c pass, plan file: read-ahead on / off ${(r(contenders[1].name) / r(contenders[2].name)).toFixed(2)}×`];
  if (hasCh) {
    notes.push(`python3 -c pass, plan file / ch-run: ${(r(contenders[1].name) / r('ch-run (same SquashFS)')).toFixed(2)}×; ` +
      `ctr exec (plan cache warm) / ch-run: ${(r(contenders[3].name) / r('ch-run (same SquashFS)')).toFixed(2)}×`);
  }
  return {
    md: table(`Start-up of python3 -c pass (${pyRounds} interleaved rounds, ${hostname()})`, rows.map((x) => ({ ...x, name: `python: ${x.name}` }))),
    rows: rows.map((x) => ({ ...x, name: `python: ${x.name}` })),
    notes,
  };
}

/** Whole jobs of 32 ranks on this node (Open MPI, oversubscribed), each rank /bin/true. */
function mpiJobs(sif: string, plan: string, work: string, env: NodeJS.ProcessEnv, warm: NodeJS.ProcessEnv, off: NodeJS.ProcessEnv) {
  const mpirun = ['mpirun.openmpi', '-np', '32', '--oversubscribe'];
  const jobRounds = Number(process.env.BENCH_JOB_ROUNDS ?? (process.argv.includes('--full') ? 15 : 5));
  if (!has('mpirun.openmpi')) return { md: '', rows: [], notes: ['mpirun.openmpi not installed: no job rows'] };
  const jobs: Contender[] = [
    { name: 'mpirun -np 32 bare /bin/true', cmd: asUser([...mpirun, '/bin/true']), cwd: work, env },
    { name: 'mpirun -np 32 ctr plan file', cmd: asUser([...mpirun, plan, '/bin/true']), cwd: work, env },
    { name: 'mpirun -np 32 ctr exec, plan cache warm', cmd: asUser([...mpirun, CTR_FRONT, 'exec', sif, '/bin/true']), cwd: work, env: warm },
    { name: 'mpirun -np 32 ctr exec, plan cache off (as before it)', cmd: asUser([...mpirun, CTR_BIN, 'exec', sif, '/bin/true']), cwd: work, env: off },
  ];
  const rows = measure(jobs, jobRounds, 1);
  const r = (n: string) => rows.find((x) => x.name === n)!.medianMs;
  return {
    md: table(`32-rank jobs, each rank /bin/true (${jobRounds} interleaved rounds, ${hostname()})`, rows),
    rows,
    notes: [`mpirun -np 32 ctr exec (plan cache warm) / plan file: ${(r(jobs[2].name) / r(jobs[1].name)).toFixed(2)}× (target ≤ 1.3×; ` +
      `without the cache ${(r(jobs[3].name) / r(jobs[1].name)).toFixed(2)}×)`],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(await startup());
}
