// Escapes a hostile image or a hostile neighbour tried, each closed (issue 10's audit):
// every case here failed before its fix. Run as the unprivileged test user, in the
// default mode, with --fakeroot (both ways of being root) and as a rank (Slurm's
// variables set, so the container is joined rather than owned), as Charliecloud's
// ch-run_isolation.bats does.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { chown, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { busyboxDir, busyboxSif } from '../helpers/images.js';
import { craftedImage, plantFifo, plantLink, plantSparse, privcalls, slowdeath } from '../helpers/fixtures.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { CTR_BIN, LAUNCHER } from '../helpers/paths.js';
import { asNamed, asUser, ctr, ensureUser, OTHER_USER, TEST_USER, userIds, userTmp } from '../helpers/user.js';

/** The modes every case runs in: flags and environment. */
const RANK = { SLURM_JOB_ID: '4242', SLURM_STEP_ID: '0' };
const MODES: Array<{ name: string; flags: string[]; env: Record<string, string> }> = [
  { name: 'default', flags: [], env: {} },
  { name: 'contain', flags: ['--contain'], env: {} },
  { name: 'fakeroot subuid', flags: ['--fakeroot', '--fakeroot-mode', 'subuid'], env: {} },
  { name: 'fakeroot seccomp', flags: ['--fakeroot', '--fakeroot-mode', 'seccomp'], env: {} },
  { name: 'rank', flags: [], env: RANK },
  { name: 'rank fakeroot', flags: ['--fakeroot'], env: RANK },
];

const Escape = suite('escapes');
let sif: string, pc: string, home: string;

Escape.before(async () => {
  sif = await busyboxSif();
  pc = await privcalls();
  ({ home } = await userIds());
});
Escape.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

/** `ctr exec` run by a shell in a pseudo-terminal (script(1)), so the container's stdin
 * is a terminal it shares with that shell; everything the terminal showed comes back. */
async function inTerminal(cmd: string, env: Record<string, string> = {}): Promise<string> {
  const envs = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
  const r = await asUser('script', ['-qec', `${envs ? `env ${envs} ` : ''}${cmd}`, '/dev/null'], { cwd: '/' });
  return String(r.stdout).replace(/\r/g, '');
}

Escape('TIOCSTI :: no mode can push keystrokes into the terminal (the host shell can, here)', async () => {
  // The control: on this host (legacy_tiocsti=1) the same program succeeds, and the byte
  // it pushed shows up as terminal input.
  const host = await inTerminal(`${pc} sti; ${pc} sti-high`);
  assert.match(host, /sti: ok/, 'the host allows TIOCSTI: the test can tell');
  for (const m of MODES) {
    const out = await inTerminal(`${CTR_BIN} exec ${m.flags.join(' ')} -B ${pc}:/privcalls ${sif} sh -c '/privcalls sti; /privcalls sti-high; /privcalls linux'`, m.env);
    assert.is(out, 'sti: Operation not permitted\nsti-high: Operation not permitted\nlinux: Operation not permitted\n', m.name);
  }
});

Escape('image symlinks :: destinations that lead through /proc or into host binds create nothing on the host', async () => {
  const img = await craftedImage(`links-${TEST_USER}`, async (root) => {
    // /etc/localtime through the host's /proc bind to the launcher's old root; /etc/hosts
    // into the host's /tmp, bound earlier; both are optional binds, so they are skipped.
    await plantLink(root, 'etc/localtime', `/proc/self/root/oldroot${home}/ctr-escape/x/y/file`);
    await plantLink(root, 'etc/hosts', '/tmp/ctr-escape-hosts');
  });
  await rm(join(home, 'ctr-escape'), { recursive: true, force: true });
  await rm('/tmp/ctr-escape-hosts', { force: true });
  for (const m of MODES) {
    const r = await ctr(['exec', ...m.flags, img, 'echo', 'ran'], { cwd: '/', env: m.env });
    assert.is(r.stdout, 'ran\n', m.name);
    // (--contain's /tmp is a tmpfs of ctr's own: /etc/hosts may land there)
    assert.is(r.stderr, (m.name === 'contain' ? '' : "ctr: warning: skipping /etc/hosts: its place in the image (/tmp/ctr-escape-hosts) can't be used: " +
      'a mount point would have to be made in a host directory bound into the container\n') +
      `ctr: warning: skipping /etc/localtime: its place in the image (/proc/self/root/oldroot${home}/ctr-escape/x/y/file) can't be used: ` +
      'Too many levels of symbolic links\n', m.name);
    assert.ok(!existsSync(join(home, 'ctr-escape')), `${m.name}: nothing made in the user's home`);
    assert.ok(!existsSync('/tmp/ctr-escape-hosts'), `${m.name}: nothing made in the host's /tmp`);
  }
});

Escape('image symlinks :: /etc/passwd pointing at a host file is refused, not merged from the host', async () => {
  const secret = join(home, 'ctr-secret');
  await writeFile(secret, 'secret:x:1:1::/:/bin/sh\n');
  const { uid, gid } = await userIds();
  await chown(secret, uid, gid);
  const img = await craftedImage(`passwd-link-${TEST_USER}`, (root) => plantLink(root, 'etc/passwd', `/proc/self/root/oldroot${home}/ctr-secret`));
  const r = await ctr(['exec', img, 'cat', '/etc/passwd'], { cwd: '/' });
  assert.is(r.stdout, '');
  assert.is(r.stderr, `ctr: error: cannot mount on /etc/passwd (/proc/self/root/oldroot${home}/ctr-secret in the image): ` +
    'Too many levels of symbolic links\n');
  assert.is(r.exitCode, 255);
  await rm(secret);
});

Escape('image files :: a FIFO or a sparse 1 GiB /etc/passwd is one error line, at once; a FIFO env script is skipped', async () => {
  const fifo = await craftedImage('passwd-fifo', (root) => plantFifo(root, 'etc/passwd'));
  const sparse = await craftedImage('passwd-sparse', (root) => plantSparse(root, 'etc/passwd', 2 ** 30));
  const env = await craftedImage('env-fifo', (root) => plantFifo(root, '.singularity.d/env/50-fifo.sh'));
  for (const [img, why] of [[fifo, 'not a regular file'], [sparse, 'larger than 16 MiB']]) {
    const r = await ctr(['exec', img, 'true'], { cwd: '/', timeout: 20000 });
    assert.is(r.stderr, `ctr: error: cannot read the image's /etc/passwd: ${why}\n`);
    assert.is(r.exitCode, 255);
  }
  const r = await ctr(['exec', env, 'sh', '-c', 'echo "$IMAGE_VAR"'], { cwd: '/', timeout: 20000 });
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'from the image\n');
});

Escape('fakeroot :: read-only binds stay read-only and /proc stays mounted, in every fake-root mode', async () => {
  const d = await userTmp();
  for (const m of MODES.filter((x) => x.flags.includes('--fakeroot'))) {
    const r = await ctr(['exec', ...m.flags, '-B', `${d}:/data:ro`, sif, 'sh', '-c',
      'mount -o remount,rw /data; umount /data; umount /proc; umount -l /proc; touch /data/x; test -e /proc/self/status && echo proc'],
    { cwd: '/', env: m.env });
    assert.is(r.stdout, 'proc\n', m.name);
    assert.is(r.stderr, 'mount: permission denied (are you root?)\n' +
      "umount: can't unmount /data: Invalid argument\n" +
      "umount: can't unmount /proc: Invalid argument\n" +
      "umount: can't unmount /proc: Invalid argument\n" +
      "touch: /data/x: Read-only file system\n", m.name);
  }
  await rm(d, { recursive: true });
});

Escape("FUSE server :: its working directory and root lead nowhere (rank mode, where the host's /proc is in view)", async () => {
  const d = await userTmp();
  for (const flags of [[], ['--fakeroot']]) {
    // cwd: a host directory the server used to keep as its own working directory.
    const r = await ctr(['exec', ...flags, sif, 'sh', '-c',
      'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = ctr-fuse ] || continue; echo server; readlink $p/cwd; ls $p/cwd/ $p/root/; done'],
    { cwd: d, env: RANK });
    // Every FUSE server in view (this container's, and any other of the user's): none
    // lets the rank in (busybox readlink fails silently).
    const servers = String(r.stdout).split('\n').filter(Boolean);
    assert.ok(servers.length >= 1 && servers.every((l) => l === 'server'), flags.join(' '));
    const lines = String(r.stderr).split('\n').filter(Boolean);
    assert.is(lines.length, 2 * servers.length, flags.join(' '));
    for (const l of lines) assert.match(l, /^ls: \/proc\/\d+\/(cwd|root)\/: Permission denied$/, flags.join(' '));
  }
  await rm(d, { recursive: true });
});

Escape('join :: another user holding the rendezvous name gets one error line, not a hang or their container', async () => {
  const other = await ensureUser(OTHER_USER);
  const { uid } = await userIds();
  // Learn the name the launcher will use (CTR_DEBUG changes no plan word, so not the name).
  const probe = await ctr(['exec', sif, 'true'], { cwd: '/', env: { ...RANK, CTR_DEBUG: '1' } });
  const name = /joining (ctr-join\.\d+\.[0-9a-f]+)/.exec(String(probe.stderr))?.[1];
  assert.ok(name, 'the launcher names its rendezvous');
  await leftovers();
  const squatter = asNamed(OTHER_USER, '/usr/bin/python3', ['-c',
    `import socket,time; s=socket.socket(socket.AF_UNIX); s.bind(b"\\0${name}"); s.listen(8); print("bound", flush=True); time.sleep(30)`]);
  await new Promise<void>((resolve) => squatter.stdout?.on('data', () => resolve()));
  const r = await ctr(['exec', sif, 'echo', 'joined'], { cwd: '/', env: RANK, timeout: 30000 });
  squatter.kill('SIGKILL');
  await squatter.catch(() => undefined);
  assert.is(r.stdout, '');
  assert.is(r.stderr, `ctr: error: the node's join rendezvous ${name} is held by another user (uid ${other.uid})\n` +
    'ctr: hint: --no-join runs this rank in a container of its own; tell your administrator\n');
  assert.is(r.exitCode, 255);
  // (Before, every rank blocked for ever: the 30 s time-out would have left stderr empty.)

  assert.ok(uid !== other.uid);
});

Escape('writable-tmpfs :: bounded: 64 MiB by default (Apptainer\'s), ENOSPC inside past it; --writable-tmpfs-size raises it', async () => {
  const r = await ctr(['exec', '--writable-tmpfs', sif, 'sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=100 2>&1 | grep -o "No space left on device"'], { cwd: '/' });
  assert.is(r.stdout, 'No space left on device\n');
  const big = await ctr(['exec', '--writable-tmpfs', '--writable-tmpfs-size', '200M', sif, 'sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null && stat -c %s /big'], { cwd: '/' });
  assert.is(big.stdout, `${100 * 2 ** 20}\n`);
});

Escape('writable-tmpfs :: a bad size is one error line', async () => {
  const r = await ctr(['exec', '--writable-tmpfs', '--writable-tmpfs-size', 'lots', sif, 'true'], { cwd: '/' });
  assert.is(r.stderr, 'ctr: error: --writable-tmpfs-size "lots": expected a size such as 64M, 1G or 512K (a plain number is MiB)\n');
  assert.is(r.exitCode, 255);
});

Escape('keyring :: --contain gives the container a session keyring of its own; otherwise it is the user\'s', async () => {
  // One shell for all three: every runuser starts a session keyring of its own (pam_keyinit).
  const bind = `-B ${pc}:/privcalls ${sif} /privcalls keyring`;
  const r = await asUser('sh', ['-c', `${pc} keyring; ${CTR_BIN} exec ${bind}; ${CTR_BIN} exec --contain ${bind}`], { cwd: '/' });
  const [host, plain, contained] = String(r.stdout).split('\n');
  assert.match(host, /^keyring: \d+$/);
  assert.is(plain, host, 'the default keeps the session keyring (Kerberos, AFS tokens)');
  assert.match(contained, /^keyring: \d+$/);
  assert.is.not(contained, host, '--contain: a new one');
});

Escape('init :: a launcher killed between forking init and init\'s PR_SET_PDEATHSIG leaves nothing running', async () => {
  // slowdeath.so makes init sleep just before its prctl; the launcher is killed then.
  // (A directory image: with a FUSE image the command would die with the server anyway.)
  const d = await userTmp();
  const plan = join(d, 'dir.plan');
  assert.is((await ctr(['plan', '-o', plan, await busyboxDir()], { cwd: d })).exitCode, 0);
  const run = asUser('env', [`LD_PRELOAD=${await slowdeath()}`, LAUNCHER, '--plan', plan, 'sleep', '30'], { cwd: '/' });
  await new Promise((r) => setTimeout(r, 500));
  const top = await execa('pgrep', ['-o', '-u', TEST_USER, '-f', `^${LAUNCHER} --plan`], { reject: false });
  assert.ok(Number(top.stdout) > 0, 'the launcher is running');
  process.kill(Number(top.stdout), 'SIGKILL');
  await run;
  await new Promise((r) => setTimeout(r, 2500)); // init wakes up and must see it is alone
  assert.equal(await leftovers(0), [], 'neither init nor the command outlives the launcher');
  await rm(d, { recursive: true });
});

Escape.run();
