// Ported from Apptainer's e2e/actions/actions.go and the flag table of
// cmd/internal/cli/action_flags.go (their cases, our tests), plus e2e/imgbuild's
// executable SIF: exec's exit codes, --no-home, --containall, shell -s, --cwd, -f,
// --no-mount, --scratch, ./img.sif, and the mounts around the working directory. Where ctr
// deliberately differs (README "Coming from Apptainer"), the case asserts ctr's behaviour
// and says so.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CTR_ROOT } from '../helpers/paths.js';
import { TEST_USER, userIds, userTmp } from '../helpers/user.js';
import { apptainerBusyboxSif, ctrUser, ownLeftovers, run } from './fixture.js';

const ctx = { dir: '', bb: '', home: '', ctrSif: '' };
const Actions = suite('compat actions');

Actions.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-actions-');
  ctx.home = (await userIds()).home;
  ctx.bb = await apptainerBusyboxSif();
  ctx.ctrSif = path.join(ctx.dir, 'ctr-written.sif');
  const r = await ctrUser(['build', ctx.ctrSif, ctx.bb], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
});
Actions.after.each(async () => assert.equal(await ownLeftovers(), [], 'processes left behind'));
Actions.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

const exec = (args: string[], env: Record<string, string> = {}, cwd = ctx.dir) => ctrUser(['exec', ...args], env, cwd);

for (const [name, argv, code] of [['True', ['true'], 0], ['TrueAbsPAth', ['/bin/true'], 0], ['False', ['false'], 1], ['FalseAbsPath', ['/bin/false'], 1]] as const) {
  Actions(`e2e/actions/actions.go actionExec :: ${name}`, async () => {
    const r = await exec([ctx.bb, ...argv]);
    assert.is(r.stderr, '');
    assert.is(r.code, code);
  });
}

Actions('e2e/actions/actions.go actionExec :: NoCommand (ctr: exit 255 and one line; Apptainer exits 1)', async () => {
  const r = await exec([ctx.bb]);
  assert.is(r.code, 255);
  assert.is(r.stderr, 'ctr: error: no command given\nctr: hint: usage: ctr exec [flags] IMAGE COMMAND [ARG...]\n');
});

Actions('e2e/actions/actions.go actionExec :: a missing command exits 127, a non-executable one 126 (documented difference)', async () => {
  const missing = await exec([ctx.bb, 'no-such-command']);
  assert.is(missing.code, 127);
  assert.is(missing.stderr, 'ctr: error: command not found in image: no-such-command\n');
  const notExec = await exec([ctx.bb, '/etc/passwd']);
  assert.is(notExec.code, 126);
  assert.is(notExec.stderr, 'ctr: error: cannot execute /etc/passwd: Permission denied\n');
});

Actions('e2e/actions/actions.go actionExec :: NoHome', async () => {
  const r = await exec(['--no-home', ctx.bb, 'ls', '-ld', ctx.home]);
  assert.is(r.code, 1);
});

Actions('e2e/actions/actions.go actionExec :: ContainAllPID (ctr keeps its init: the command is not PID 1, documented difference)', async () => {
  const r = await exec(['--containall', '--no-init', ctx.bb, 'sh', '-c', 'echo $$; echo "[$OUTSIDE]"; ls -A /tmp | wc -l'], { OUTSIDE: 'x' });
  assert.is(r.stderr, '');
  assert.is(r.stdout, '2\n[]\n0\n');
});

Actions('e2e/actions/actions.go actionShell :: shell -s PROGRAM runs PROGRAM as the shell', async () => {
  const r = await ctrUser(['shell', '-s', '/bin/echo', ctx.bb, 'from', 'the', 'shell'], {}, ctx.dir);
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'from the shell\n');
});

Actions('cmd/internal/cli/action_flags.go :: --cwd is --pwd; -f is --fakeroot', async () => {
  const r = await exec(['--cwd', '/etc', ctx.bb, 'pwd']);
  assert.is(r.stdout, '/etc\n');
  const f = await exec(['-f', ctx.bb, 'id', '-u']);
  assert.is(f.stdout, '0\n', f.stderr);
});

Actions('e2e/actions/actions.go actionNoMount :: --no-mount home, tmp, cwd and a destination (/etc/hosts)', async () => {
  const marker = path.join('/tmp', `ctr-compat-nomount-${process.pid}`);
  fs.writeFileSync(marker, 'host tmp\n');
  try {
    const home = await exec(['--no-mount', 'home', ctx.bb, 'test', '-d', ctx.home]);
    assert.is(home.code, 1, 'no home directory');
    const tmp = await exec(['--no-mount', 'tmp', ctx.bb, 'test', '-e', marker]);
    assert.is(tmp.code, 1, 'the image\'s own /tmp');
    const withTmp = await exec([ctx.bb, 'test', '-e', marker]);
    assert.is(withTmp.code, 0, 'the host\'s /tmp by default');
    // The cwd (under /tmp here) would show through the /tmp bind: leave out both.
    const cwd = await exec(['--no-mount', 'cwd,tmp', ctx.bb, 'test', '-d', ctx.dir]);
    assert.is(cwd.code, 1, 'no cwd bind');
    const hosts = await exec(['--no-mount', '/etc/hosts', ctx.bb, 'wc', '-c', '/etc/hosts']);
    assert.is(hosts.stdout.trim(), '0 /etc/hosts', 'the image\'s empty /etc/hosts');
    const bad = await exec(['--no-mount', 'proc', ctx.bb, 'true']);
    assert.is(bad.stderr, 'ctr: error: --no-mount proc: ctr always mounts /proc, /sys and /dev\n');
    assert.is(bad.code, 255);
  } finally {
    fs.rmSync(marker, { force: true });
  }
});

Actions('e2e/actions/actions.go relWorkdirScratch :: --scratch DIR is an empty writable directory', async () => {
  const r = await exec(['--scratch', '/scratch', ctx.bb, 'sh', '-c', 'ls -A /scratch | wc -l; touch /scratch/f && echo written']);
  assert.is(r.stderr, '');
  assert.is(r.stdout, '0\nwritten\n');
});

Actions('e2e/actions/actions.go actionBinds :: with the cwd at $HOME, a custom --home is not hidden by the cwd bind', async () => {
  const alt = path.join(ctx.dir, 'alt-home');
  fs.mkdirSync(alt);
  fs.writeFileSync(path.join(alt, 'marker'), 'custom home\n');
  const { uid, gid } = await userIds();
  fs.chownSync(alt, uid, gid);
  const r = await exec(['--home', `${alt}:${ctx.home}`, ctx.bb, 'sh', '-c', 'cat marker; pwd'], {}, ctx.home);
  assert.is(r.stderr, '');
  assert.is(r.stdout, `custom home\n${ctx.home}\n`);
});

Actions('internal/pkg/runtime/engine/apptainer/container_linux.go :: a missing default working directory warns and starts in /', async () => {
  const r = await exec(['--contain', '--no-home', ctx.bb, 'sh', '-c', 'pwd; echo "$PWD"']);
  assert.is(r.stdout, '/\n/\n');
  assert.is(r.stderr, `ctr: warning: working directory ${ctx.home} does not exist in the container: starting in /\n`);
  const asked = await exec(['--pwd', '/nonexistent', ctx.bb, 'pwd']);
  assert.is(asked.code, 255, 'a directory the user asked for must exist');
});

Actions('e2e/actions/actions.go relWorkdirScratch :: --contain --workdir ./sub --scratch keeps /tmp and the scratch dir in the workdir', async () => {
  fs.mkdirSync(path.join(ctx.dir, 'mysubdir'));
  const { uid, gid } = await userIds();
  fs.chownSync(path.join(ctx.dir, 'mysubdir'), uid, gid);
  const r = await exec(['--contain', '--workdir', './mysubdir', '--scratch', '/myscratch', ctx.bb, 'sh', '-c',
    'echo t > /tmp/t; echo v > /var/tmp/v; echo s > /myscratch/s']);
  assert.is(r.stderr, '');
  assert.is(r.code, 0);
  const w = path.join(ctx.dir, 'mysubdir');
  assert.is(fs.readFileSync(path.join(w, 'tmp/t'), 'utf8'), 't\n');
  assert.is(fs.readFileSync(path.join(w, 'var_tmp/v'), 'utf8'), 'v\n');
  assert.is(fs.readFileSync(path.join(w, 'scratch/myscratch/s'), 'utf8'), 's\n');
});

Actions('e2e/actions/actions.go actionUmask :: the caller\'s umask is kept; --no-umask gives 0022', async () => {
  const inherited = await run('runuser', ['-u', TEST_USER, '--', 'sh', '-c', `umask 0000; exec env HOME=${ctx.home} "$0" "$@"`,
    `${CTR_ROOT}/bin/ctr`, 'exec', ctx.bb, 'sh', '-c', 'umask'], { cwd: ctx.dir });
  assert.is(inherited.stdout, '0000\n', inherited.stderr);
  const reset = await run('runuser', ['-u', TEST_USER, '--', 'sh', '-c', `umask 0000; exec env HOME=${ctx.home} "$0" "$@"`,
    `${CTR_ROOT}/bin/ctr`, 'exec', '--no-umask', ctx.bb, 'sh', '-c', 'umask'], { cwd: ctx.dir });
  assert.is(reset.stdout, '0022\n', reset.stderr);
});

for (const [which, img] of [['Apptainer\'s launch line (siftool-made)', () => ctx.bb], ['ctr-written SIF', () => ctx.ctrSif]] as const) {
  Actions(`e2e/imgbuild/imgbuild.go testSIFHeaderAndExecute :: ./img.sif runs through run-singularity (${which})`, async () => {
    const head = Buffer.alloc(31);
    const fd = fs.openSync(img(), 'r');
    fs.readSync(fd, head, 0, 31, 0);
    fs.closeSync(fd);
    assert.is(head.toString('latin1'), '#!/usr/bin/env run-singularity\n');
    const copy = path.join(ctx.dir, `exe-${which.length}.sif`);
    fs.copyFileSync(img(), copy);
    fs.chmodSync(copy, 0o755);
    const r = await run('runuser', ['-u', TEST_USER, '--', 'env', `HOME=${ctx.home}`, `PATH=${CTR_ROOT}/bin:/usr/bin:/bin`, copy, 'echo', '-n', 'hello'], { cwd: ctx.dir });
    assert.is(r.stderr, '');
    assert.is(r.stdout, 'hello');
  });
}

Actions.run();
