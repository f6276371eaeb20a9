// Start-up of `/bin/true` in a container: bare metal, ctr's plan file (C launcher
// alone), `ctr exec` (bin/ctr: Node from ctr's start-up snapshot + planning + launcher;
// and from plain Node, without the snapshot), Charliecloud's ch-run on the same
// SquashFS bytes, and bubblewrap on the unpacked tree. Every container start is a
// fresh namespace and a fresh FUSE mount ("cold" mount, warm page cache).
// As root, everything runs as an unprivileged user (BENCH_USER, default ctrbench).
import { spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { asUser, CTR, CTR_BIN, image, planFile, USER, WORK } from './images.js';
import { measure, REPO, save, table, type Contender } from './lib.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? (process.argv.includes('--full') ? 200 : 40));
export async function startup(): Promise<string> {
  const { sif, sqfs, dir } = image('busybox', join(REPO, 'images/busybox.def'));
  const plan = planFile({ sif, sqfs, dir }, 'busybox');
  const work = WORK;
  const user = USER;
  const ctr = CTR;
  const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
  // Node parses every certificate NODE_EXTRA_CA_CERTS names at start-up (~70 ms for
  // Debian's bundle, which this machine sets). Node's own bare start-up is without it,
  // so every contender runs without it; two extra rows show the cost when it is set.
  const env: NodeJS.ProcessEnv = { ...process.env, USER: user ?? process.env.USER ?? 'user' };
  delete env.NODE_EXTRA_CA_CERTS;
  const contenders: Contender[] = [
    { name: 'bare /bin/true', cmd: asUser(['/bin/true']), env },
    { name: 'ctr plan file', cmd: asUser([plan, '/bin/true']), cwd: work, env },
    { name: 'ctr exec (SIF)', cmd: asUser([CTR_BIN, 'exec', sif, '/bin/true']), cwd: work, env },
    { name: 'ctr exec, plain Node (no snapshot)', cmd: asUser([...ctr, 'exec', sif, '/bin/true']), cwd: work, env },
    { name: 'node -e 0 (reference)', cmd: asUser([process.execPath, '-e', '0']), env },
  ];
  if (process.env.NODE_EXTRA_CA_CERTS) {
    contenders.push(
      { name: 'ctr exec, NODE_EXTRA_CA_CERTS set', cmd: asUser([CTR_BIN, 'exec', sif, '/bin/true']), cwd: work, env: { ...env, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS } },
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
  const flags = await save({ name: 'startup', date: new Date().toISOString(), host: hostname(), rows });
  const planRow = rows.find((r) => r.name === 'ctr plan file')!;
  const ch = rows.find((r) => r.name.startsWith('ch-run'));
  const node = rows.find((r) => r.name === 'node -e 0 (reference)')!;
  const execRow = rows.find((r) => r.name === 'ctr exec (SIF)')!;
  const notes = [
    ch ? `plan file / ch-run: ${(planRow.medianMs / ch.medianMs).toFixed(2)}× (target ≤ 1.0×)` : 'ch-run not installed',
    `ctr exec − node start-up: ${(execRow.medianMs - node.medianMs).toFixed(1)} ms (target ≤ 30 ms)`,
    ...flags,
  ];
  return md + '\n' + notes.map((n) => `- ${n}`).join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(await startup());
}
