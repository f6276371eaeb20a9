// Nothing left running or mounted, however a container ends: normal exit, the command
// killed, the launcher killed, ctr (node) signalled, Ctrl-C, a failed launch. Processes
// are those of the test user; mounts are checked in the host's mount namespace.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { constants as os } from 'node:os';
import { busyboxSif } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { CTR_BIN } from '../helpers/paths.js';
import { asUser, ctr, TEST_USER } from '../helpers/user.js';

/**
 * The pid of the process named COMM below ROOT (the runuser that ctr() started), waiting
 * for it to appear. Looked up by ancestry, not by user alone: other work may run as the
 * same user at the same time.
 */
async function descendant(root: number, comm: string, timeoutMs = 5000): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await execa('ps', ['-e', '-o', 'pid=,ppid=,comm='], { reject: false });
    const rows = r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).map(([pid, ppid, c]) => ({ pid: Number(pid), ppid: Number(ppid), c }));
    const below = new Set([root]);
    for (let grew = true; grew;) {
      grew = false;
      for (const row of rows) if (below.has(row.ppid) && !below.has(row.pid)) { below.add(row.pid); grew = true; }
    }
    const hit = rows.find((row) => row.c === comm && below.has(row.pid) && row.pid !== root);
    if (hit) return hit.pid;
    if (Date.now() > until) throw new Error(`no process ${comm} below ${root} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

async function hostMounts(): Promise<string[]> {
  return (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ').slice(3, 6).join(' ')).sort();
}

const Cleanup = suite('ctr cleanup');
let sif: string, mountsBefore: string[];

Cleanup.before(async () => {
  sif = await busyboxSif();
});
Cleanup.before.each(async () => {
  mountsBefore = await hostMounts();
});
Cleanup.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
  assert.equal(await hostMounts(), mountsBefore, 'host mounts changed');
});

Cleanup('normal exit :: not even a zombie FUSE server, right after return (ps with no wait)', async () => {
  const ps = async () => (await execa('ps', ['-u', TEST_USER, '-o', 'pid=,stat=,comm='], { reject: false })).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  for (let i = 0; i < 5; i++) {
    // Zombies of an earlier test file's killed processes wait for PID 1, which reaps
    // only now and then here: what counts is what this launch left.
    const before = new Set((await ps()).map((l) => l.split(/\s+/)[0]));
    const r = await ctr(['exec', sif, 'true']);
    assert.is(r.exitCode, 0);
    assert.equal((await ps()).filter((l) => !before.has(l.split(/\s+/)[0])), [], `round ${i}`);
  }
});

Cleanup('normal exit :: nothing left', async () => {
  const r = await ctr(['exec', sif, 'sh', '-c', 'echo done']);
  assert.is(r.stdout, 'done\n');
  assert.is(r.exitCode, 0);
  assert.equal(await leftovers(1000), [], 'nothing running a second later');
});

Cleanup('command killed :: kill -9 of the command inside gives 137, nothing left', async () => {
  const r = await ctr(['exec', sif, 'sh', '-c', 'kill -9 $$; echo not reached']);
  assert.is(r.stdout, '');
  assert.is(r.exitCode, 137);
});

Cleanup('command killed :: SIGKILL of the command while it sleeps; status 137, the FUSE server gone', async () => {
  const run = ctr(['exec', sif, 'sleep', '100']);
  const pid = await descendant(run.pid!, 'sleep');
  await descendant(run.pid!, 'ctr-fuse'); // the launcher's built-in FUSE server
  process.kill(pid, 'SIGKILL');
  const r = await run;
  assert.is(r.exitCode, 137);
  assert.equal(await leftovers(3000), [], 'FUSE server gone within 3 s');
});

// bin/ctr (the usual way) execs the launcher, which asks Node for the plan: ctr *is* the
// launcher. With CTR_NO_SNAPSHOT=1 (or main.js) Node plans and starts the launcher, and
// stays to relay signals and report the status. Both must clean up the same way.
const MODES = [
  { name: 'bin/ctr', env: {}, ctrProcess: 'ctr-launch' },
  { name: 'plain Node', env: { CTR_NO_SNAPSHOT: '1' }, ctrProcess: 'node' },
] as const;

/** The status a caller sees: the exit code, or 128+N when the process it ran was killed by signal N. */
const status = (r: { exitCode?: number; signal?: string }) =>
  r.exitCode ?? (r.signal ? 128 + (os.signals as Record<string, number>)[r.signal] : -1);

for (const m of MODES) {
  Cleanup(`launcher killed :: ${m.name}: SIGKILL of ctr-launch itself: the command, its children and the FUSE server all go`, async () => {
    const run = ctr(['exec', sif, 'sh', '-c', 'sleep 100 & sleep 100; :'], { env: m.env });
    await descendant(run.pid!, 'sleep');
    await descendant(run.pid!, 'ctr-fuse');
    process.kill(await descendant(run.pid!, 'ctr-launch'), 'SIGKILL');
    const r = await run;
    assert.is(status(r), 137);
    assert.equal(await leftovers(3000), [], 'nothing of the container left within 3 s');
  });

  Cleanup(`ctr signalled :: ${m.name}: SIGTERM to ctr (${m.ctrProcess}) reaches the command, status 143`, async () => {
    const run = ctr(['exec', sif, 'sleep', '100'], { env: m.env });
    await descendant(run.pid!, 'sleep');
    process.kill(await descendant(run.pid!, m.ctrProcess), 'SIGTERM');
    const r = await run;
    assert.is(r.stderr, '');
    assert.is(status(r), 143);
  });

  Cleanup(`ctrl-c :: ${m.name}: SIGINT to the whole process group, no tty, status 130`, async () => {
    // Its own process group (detached), as a shell job would be; the outer sh traps INT
    // so that it survives to report ctr's status (a trap, unlike ignoring, is reset on exec).
    const run = asUser('env', [...Object.entries(m.env).map(([k, v]) => `${k}=${v}`), 'sh', '-c', 'trap : INT; "$@"; echo "status=$?"', 'sh', CTR_BIN, 'exec', sif, 'sleep', '100'],
      { detached: true });
    await descendant(run.pid!, 'sleep');
    process.kill(-run.pid!, 'SIGINT');
    const r = await run;
    assert.is(r.stdout, 'status=130\n');
    assert.is(r.stderr, '');
  });
}

Cleanup('failed launch :: a missing bind source leaves nothing', async () => {
  const r = await ctr(['exec', '-B', '/nonexistent-ctr-src', sif, 'true']);
  assert.is(r.stderr, 'ctr: error: bind source /nonexistent-ctr-src: No such file or directory\n');
  assert.is(r.exitCode, 255);
});

Cleanup('failed launch :: the launcher failing after the FUSE server started leaves nothing', async () => {
  const r = await ctr(['exec', '--pwd', '/no/such/dir', sif, 'true']);
  assert.is(r.stderr, 'ctr: error: cannot change to directory /no/such/dir inside the container: No such file or directory\n');
  assert.is(r.exitCode, 255);
});

Cleanup('many runs :: twenty runs in a row leave no FUSE server behind', async () => {
  for (let i = 0; i < 20; i++) {
    const r = await ctr(['exec', sif, 'true']);
    assert.is(r.exitCode, 0);
  }
  assert.equal(await leftovers(1000), []);
});

Cleanup.run();
