// ctr checkpoint / ctr restore with CRIU, as the unprivileged test user: a counting
// process in a container is checkpointed, killed, restored in a fresh container, and
// carries on from where it was, to its own exit status. CRIU is the 4.1.1 that
// scripts/setup.sh --test builds (bookworm's 3.17 has no --unprivileged mode); it needs
// no capability, since ctr runs it inside the container's namespaces.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { access, chmod, readFile, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { ctr, userTmp } from '../helpers/user.js';

const CRIU = '/opt/ctr-test/criu/criu';
const env = { CTR_CRIU: CRIU };

/** The count so far: the log's lines, each the next number from 1 (checked). */
async function counted(log: string): Promise<number> {
  let text = '';
  try {
    text = await readFile(log, 'utf8');
  } catch {
    return 0;
  }
  const lines = text.split('\n').filter(Boolean);
  lines.forEach((l, i) => assert.is(l, String(i + 1), `line ${i + 1} of the count`));
  return lines.length;
}

async function until(what: string, ok: () => Promise<boolean>, ms = 20000): Promise<void> {
  for (const end = Date.now() + ms; !(await ok());) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The ctr-init pid of the container whose ctr runs under runuser ROOT. */
async function initBelow(root: number): Promise<number> {
  let init = 0;
  await until('the container\'s ctr-init', async () => {
    const { stdout } = await import('execa').then(({ execa }) => execa('ps', ['-e', '-o', 'pid=,ppid=,comm=']));
    const rows = stdout.split('\n').map((l) => l.trim().split(/\s+/)).map(([p, pp, c]) => ({ p: Number(p), pp: Number(pp), c }));
    const below = new Set([root]);
    for (let grew = true; grew;) {
      grew = false;
      for (const r of rows) if (below.has(r.pp) && !below.has(r.p)) { below.add(r.p); grew = true; }
    }
    init = rows.find((r) => r.c === 'ctr-init' && below.has(r.p))?.p ?? 0;
    return init !== 0;
  });
  return init;
}

const Checkpoint = suite('ctr checkpoint/restore');
let sif: string, dir: string;

/** A --checkpointable container counting 1..TO into DIR/log (then TAIL), once it has
 * counted AT: the log, the running ctr, and its container's init. */
async function counting(to: number, at: number, tail = '') {
  await writeFile(join(dir, 'count.sh'), `exec </dev/null >/out/log 2>&1\ni=0\nwhile [ $i -lt ${to} ]; do i=$((i+1)); echo $i; sleep 0.1; done\n${tail}`);
  const log = join(dir, 'log');
  const run = ctr(['exec', '--checkpointable', '--bind', `${dir}:/out`, sif, 'sh', '/out/count.sh'], { env });
  const init = await initBelow(run.pid!);
  await until(`a count of ${at}`, async () => (await counted(log)) >= at);
  return { log, run, init };
}

Checkpoint.before(async () => {
  await access(CRIU, constants.X_OK).catch(() => {
    throw new Error(`no CRIU at ${CRIU}: run scripts/setup.sh --test (it builds CRIU 4.1.1 there)`);
  });
  sif = await busyboxSif();
});
Checkpoint.before.each(async () => {
  dir = await userTmp('ctr-ck-');
  await chmod(dir, 0o755);
});
Checkpoint.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

Checkpoint('a counting process is checkpointed, killed, restored, and counts on to its own exit status', async () => {
  const { log, run, init } = await counting(60, 10, 'exit 7\n');

  const ck = await ctr(['checkpoint', String(init), join(dir, 'ck')], { env });
  assert.is(ck.stderr, '');
  assert.is(ck.exitCode, 0);
  const first = await run;
  assert.is(first.exitCode, 137, 'the checkpointed command was killed');
  const at = await counted(log);
  assert.ok(at >= 10 && at < 60, `stopped mid-count (at ${at})`);
  await new Promise((r) => setTimeout(r, 500));
  assert.is(await counted(log), at, 'nothing counts while checkpointed');

  const restored = await ctr(['restore', '--bind', `${dir}:/out`, sif, join(dir, 'ck')], { env });
  assert.is(restored.stderr, '');
  assert.is(restored.exitCode, 7, 'ctr restore exits with the restored command\'s status');
  assert.is(await counted(log), 60, `counted on from ${at}, every number once`);

  // The log has moved on since: CRIU refuses to restore over it, and says why in one line.
  const again = await ctr(['restore', '--bind', `${dir}:/out`, sif, join(dir, 'ck')], { env });
  assert.is(again.exitCode, 255);
  assert.match(again.stderr as string, /^ctr: error: CRIU could not restore the checkpoint \(exit 1\): Error \(criu\/files-reg\.c:\d+\): File out\/log has bad size \d+ \(expect \d+\) \(log: .*restore\.log\)\n$/);
});

Checkpoint('--leave-running: the command goes on after the checkpoint', async () => {
  const { log, run, init } = await counting(30, 5);
  const ck = await ctr(['checkpoint', '--leave-running', String(init), join(dir, 'ck')], { env });
  assert.is(ck.exitCode, 0, ck.stderr as string);
  const done = await run;
  assert.is(done.exitCode, 0);
  assert.is(await counted(log), 30);
  await access(join(dir, 'ck', 'inventory.img'));
});

Checkpoint('a container not started with --checkpointable: one error', async () => {
  const run = ctr(['exec', sif, 'sleep', '30'], { env });
  const init = await initBelow(run.pid!);
  const r = await ctr(['checkpoint', String(init), join(dir, 'ck')], { env });
  assert.is(r.exitCode, 255);
  assert.match(r.stderr as string, /^ctr: error: container of process \d+: not checkpointable .*\nctr: hint: start it with ctr exec --checkpointable/);
  run.kill('SIGTERM');
  await run;
});

Checkpoint('CRIU missing, a process that is no container, an instance, a directory with no checkpoint: one error each', async () => {
  const missing = await ctr(['checkpoint', '1', join(dir, 'ck')], { env: { CTR_CRIU: '/nonexistent/criu' } });
  assert.is(missing.exitCode, 255);
  assert.match(missing.stderr as string, /^ctr: error: process 1: not a ctr container/);
  const run = ctr(['exec', '--checkpointable', sif, 'sleep', '30'], { env });
  const init = await initBelow(run.pid!);
  const nocriu = await ctr(['checkpoint', String(init), join(dir, 'ck')], { env: { CTR_CRIU: '/nonexistent/criu' } });
  assert.is(nocriu.exitCode, 255);
  assert.is((nocriu.stderr as string).split('\n')[0], 'ctr: error: CTR_CRIU=/nonexistent/criu: not an executable file');
  assert.match(nocriu.stderr as string, /ctr: hint: install CRIU 4\.0 or later/);
  run.kill('SIGTERM');
  await run;
  const instance = await ctr(['instance', 'start', '--checkpointable', sif, 'ck'], { env });
  assert.is(instance.exitCode, 255);
  assert.match(instance.stderr as string, /^ctr: error: instance start --checkpointable: instances cannot be checkpointed/);
  const fake = await ctr(['exec', '--checkpointable', '--fakeroot', sif, 'true'], { env });
  assert.is(fake.exitCode, 255);
  assert.match(fake.stderr as string, /^ctr: error: --checkpointable with --fakeroot: not supported/);
  const empty = await ctr(['restore', sif, dir], { env });
  assert.is(empty.exitCode, 255);
  assert.match(empty.stderr as string, /^ctr: error: checkpoint directory .*: holds no checkpoint \(no inventory\.img\)\n/);
});

Checkpoint.run();
