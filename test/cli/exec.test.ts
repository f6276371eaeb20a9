// ctr exec / run / shell on real images, as the unprivileged test user.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { busyboxDir, busyboxSif, busyboxSqfs } from '../helpers/images.js';
import { leftovers, killUserProcesses, userProcesses } from '../helpers/leftovers.js';
import { asUser, ctr, userIds, userTmp } from '../helpers/user.js';
import { CTR_MAIN } from '../helpers/paths.js';

const Exec = suite('ctr exec');
let sif: string, sqfs: string, dir: string;

Exec.before(async () => {
  [sif, sqfs, dir] = [await busyboxSif(), await busyboxSqfs(), await busyboxDir()];
});
Exec.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

Exec('image kinds :: SIF from siftool, bare SquashFS and directory all run', async () => {
  for (const img of [sif, sqfs, dir]) {
    const r = await ctr(['exec', img, 'cat', '/etc/image-release']);
    assert.is(r.stderr, '', img);
    assert.is(r.stdout, 'busybox test image\n', img);
    assert.is(r.exitCode, 0);
  }
});

Exec('FUSE server :: built in by default; CTR_FUSE=exec runs squashfuse_ll instead, same result', async () => {
  const inproc = await ctr(['exec', '--debug', sif, 'cat', '/etc/image-release']);
  assert.match(String(inproc.stderr), /FUSE server started \(in process\)/);
  const exec = await ctr(['exec', '--debug', sif, 'cat', '/etc/image-release'], { env: { CTR_FUSE: 'exec' } });
  assert.match(String(exec.stderr), /FUSE server started \(\/\S*squashfuse_ll\)/);
  assert.is(exec.stdout, inproc.stdout);
  assert.is(exec.stdout, 'busybox test image\n');
});

Exec('start-up snapshot :: bin/ctr starts exec from it; CTR_NO_SNAPSHOT=1 and main.js start plain Node; same result', async () => {
  const cmd = ['exec', '--debug', sif, 'sh', '-c', 'cat /etc/image-release; exit 7'];
  const snap = await ctr(cmd, { env: { CTR_PLAN_CACHE: '0' } }); // planned by Node, not cached
  const plain = await ctr(cmd, { env: { CTR_NO_SNAPSHOT: '1' } });
  const main = await asUser(process.execPath, [CTR_MAIN, ...cmd]);
  assert.match(String(snap.stderr), /started from the start-up snapshot/);
  assert.match(String(plain.stderr), /started from plain Node/);
  assert.match(String(main.stderr), /started from plain Node/);
  const planOf = (r: typeof snap) => /launch plan: (.*)/.exec(String(r.stderr))?.[1];
  assert.ok(planOf(snap));
  assert.is(planOf(snap), planOf(plain), 'the same plan');
  assert.is(planOf(snap), planOf(main), 'the same plan');
  for (const r of [snap, plain, main]) {
    assert.is(r.stdout, 'busybox test image\n');
    assert.is(r.exitCode, 7);
  }
  // Help and the other verbs go to plain Node (yargs), from the same entry point.
  const help = await ctr(['exec', '--help']);
  assert.match(String(help.stdout), /Usage: ctr exec/);
  assert.is(help.exitCode, 0);
  const version = await ctr(['--version']);
  assert.match(String(version.stdout), /^ctr \d+\.\d+\.\d+\n/);
});

Exec('launcher asks :: bin/ctr runs the launcher, which asks Node for the plan; no Node waits beside the container', async () => {
  const run = ctr(['exec', sif, 'sh', '-c', 'echo started; sleep 3; exit 9']);
  let procs: string[] = [];
  for (let i = 0; i < 100 && !procs.some((p) => /\bsleep$/.test(p)); i++) {
    await new Promise((r) => setTimeout(r, 50));
    procs = await userProcesses();
  }
  assert.ok(procs.some((p) => /\bsleep$/.test(p)), `the command runs: ${procs.join('; ')}`);
  assert.ok(procs.some((p) => /\bctr-launch$/.test(p)), `the launcher runs: ${procs.join('; ')}`);
  assert.not.ok(procs.some((p) => /\bnode$/.test(p)), `no Node process: ${procs.join('; ')}`);
  const r = await run;
  assert.is(r.stdout, 'started\n');
  assert.is(r.exitCode, 9);
});

Exec('identity :: the user is the same inside, with a passwd entry', async () => {
  const { uid, gid } = await userIds();
  const r = await ctr(['exec', sif, 'sh', '-c', 'id -u; id -g; id -un; grep ^ctrtest: /etc/passwd']);
  assert.is(r.stdout, `${uid}\n${gid}\nctrtest\nctrtest:x:${uid}:${gid}::/home/ctrtest:/bin/sh\n`);
});

Exec('exit status :: passes through', async () => {
  const r = await ctr(['exec', sif, 'sh', '-c', 'exit 42']);
  assert.is(r.exitCode, 42);
});

Exec('exit status :: a signal gives 128+N', async () => {
  const r = await ctr(['exec', sif, 'sh', '-c', 'kill -TERM $$']);
  assert.is(r.exitCode, 128 + 15);
});

Exec('command flags :: flags after IMAGE belong to the command', async () => {
  const r = await ctr(['exec', sif, 'ls', '-d', '-1', '/bin', '/etc']);
  assert.is(r.stdout, '/bin\n/etc\n');
});

Exec('stdin :: reaches the command', async () => {
  const r = await ctr(['exec', sif, 'wc', '-c'], { input: 'hello world' });
  assert.is(String(r.stdout).trim(), '11');
});

Exec('tty :: a terminal reaches the command, and an interactive shell works on it', async () => {
  // script(1) gives ctr a pseudo-terminal, as a user's terminal would.
  const ctrCmd = `${process.execPath} ${CTR_MAIN}`;
  const t = await asUser('script', ['-qec', `${ctrCmd} exec ${sif} sh -c 'test -t 0 && test -t 1 && tty'`, '/dev/null']);
  assert.match(String(t.stdout), /^\/dev\/pts\/\d+\r?\n$/);
  assert.is(t.exitCode, 0);
  const sh = await asUser('script', ['-qec', `${ctrCmd} shell ${sif}`, '/dev/null'], { input: 'echo "interactive: $-"; exit 5\n' });
  assert.match(String(sh.stdout), /ctr> .*\r?\ninteractive: [a-zA-Z]*i/);
  assert.is(sh.exitCode, 5);
});

Exec('run :: runs the runscript with the arguments', async () => {
  const r = await ctr(['run', sif, 'a', 'b c']);
  assert.is(r.stdout, 'runscript: a b c\n');
  assert.is(r.exitCode, 0);
});

Exec('shell :: starts the image shell, reading commands from stdin', async () => {
  const r = await ctr(['shell', sif], { input: 'echo "in shell: $PS1"; exit 3\n' });
  assert.is(r.stdout, 'in shell: ctr> \n');
  assert.is(r.exitCode, 3);
});

Exec('cwd :: the working directory is bound and entered', async () => {
  const work = await userTmp();
  const r = await ctr(['exec', sif, 'sh', '-c', 'pwd; echo made > here.txt'], { cwd: work });
  assert.is(r.stdout, `${work}\n`);
  const back = await ctr(['exec', sif, 'cat', `${work}/here.txt`]);
  assert.is(back.stdout, 'made\n');
});

Exec.run();
