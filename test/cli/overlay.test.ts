// The writable layer's quotas and persistence: --writable-tmpfs's size, and --overlay
// with a directory or an ext3 image (ctr overlay create; native/launch_overlay.c), as
// the unprivileged test user. The image is also treated as hostile here.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { asUser, ctr, userIds, userTmp } from '../helpers/user.js';

const Overlay = suite('overlay');
let sif: string, dir: string, uid: number, gid: number;

/** e2fsck's verdict on an image, read-only: the image fuse2fs left must be clean. */
async function fsck(img: string): Promise<number> {
  return (await execa('/sbin/e2fsck', ['-fn', img], { reject: false })).exitCode ?? -1;
}

Overlay.before(async () => {
  sif = await busyboxSif();
  dir = await userTmp('ctr-ovl-');
  ({ uid, gid } = await userIds());
});
Overlay.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

Overlay('writable-tmpfs :: past --writable-tmpfs-size: ENOSPC inside, the layer is that size, nothing outside fills', async () => {
  const before = await readdir('/tmp');
  const r = await ctr(['exec', '--writable-tmpfs', '--writable-tmpfs-size', '16M', sif, 'sh', '-c',
    'dd if=/dev/zero of=/big bs=1M count=64 2>&1 | grep -o "No space left on device"; df -k / | tail -1 | while read fs size rest; do echo $size; done; stat -c %s /big'], { cwd: '/' });
  const [enospc, size, written] = String(r.stdout).trim().split('\n');
  assert.is(enospc, 'No space left on device', String(r.stderr));
  // The overlay's size is the scratch tmpfs's: 16 MiB (df shows the overlay's upper fs).
  assert.is(size, String(16 * 1024));
  assert.ok(Number(written) < 16 * 2 ** 20, `wrote ${written} bytes`);
  // The layer lived in the container's own mount namespace: gone, and nothing of it here.
  assert.equal((await readdir('/tmp')).filter((f) => !before.includes(f) && f.startsWith('big')), []);
});

Overlay('overlay create :: an ext3 image of the size asked, upper/ and work/ owned by the user; refuses to overwrite', async () => {
  const img = join(dir, 'made.img');
  const r = await ctr(['overlay', 'create', '--size', '8', img], { cwd: dir });
  assert.is(r.stderr, '');
  assert.is(r.exitCode, 0);
  assert.is((await stat(img)).size, 8 * 2 ** 20);
  const ls = await execa('/sbin/debugfs', ['-R', 'ls -l /', img]);
  assert.match(ls.stdout, new RegExp(`40755 \\(2\\)\\s+${uid}\\s+${gid}\\s+\\d+.* upper`));
  assert.match(ls.stdout, new RegExp(`40755 \\(2\\)\\s+${uid}\\s+${gid}\\s+\\d+.* work`));
  assert.is(await fsck(img), 0);
  const small = await ctr(['overlay', 'create', '--size', '1', join(dir, 'small.img')], { cwd: dir });
  assert.is(small.stderr, 'ctr: error: --size "1": an overlay image needs 2 MiB at least\n');
  assert.is(small.exitCode, 255);
  const verb = await ctr(['overlay', 'make', join(dir, 'x.img')], { cwd: dir });
  assert.is(verb.stderr, "ctr: error: unknown overlay command 'make'\nctr: hint: usage: ctr overlay create [--size SIZE] [--fakeroot] FILE\n");
  assert.equal((await readdir(dir)).filter((f) => f === 'small.img' || f === 'x.img'), []);
  const again = await ctr(['overlay', 'create', img], { cwd: dir });
  assert.is(again.stderr, `ctr: error: cannot create overlay image ${img}: File exists\n`);
  assert.is(again.exitCode, 255);
});

Overlay('--overlay IMG :: a file written in one run is there in the next; the image stays clean', async () => {
  const img = join(dir, 'keep.img');
  assert.is((await ctr(['overlay', 'create', '--size', '16', img], { cwd: dir })).exitCode, 0);
  const w = await ctr(['exec', '--overlay', img, sif, 'sh', '-c', 'echo kept > /kept && echo ok'], { cwd: '/' });
  assert.is(w.stdout, 'ok\n', String(w.stderr));
  assert.is(w.stderr, '');
  assert.is(await fsck(img), 0);
  const r = await ctr(['exec', '--overlay', img, sif, 'sh', '-c', 'cat /kept'], { cwd: '/' });
  assert.is(r.stdout, 'kept\n', String(r.stderr));
  const ls = await execa('/sbin/debugfs', ['-R', 'cat /upper/kept', img]);
  assert.is(ls.stdout, 'kept');
  // Only what the container wrote: the mount points of this run (proc, home...) are not kept.
  const names = await execa('/sbin/debugfs', ['-R', 'ls /upper', img]);
  assert.equal(names.stdout.split(/\s+/).filter((w) => /^[a-z.]+$/.test(w) && w !== '.' && w !== '..'), ['kept']);
});

Overlay('--overlay IMG :: its size is the quota: ENOSPC inside past it', async () => {
  const img = join(dir, 'quota.img');
  assert.is((await ctr(['overlay', 'create', '--size', '8', img], { cwd: dir })).exitCode, 0);
  const r = await ctr(['exec', '--overlay', img, sif, 'sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=32 2>&1 | grep -o "No space left on device"'], { cwd: '/' });
  assert.is(r.stdout, 'No space left on device\n', String(r.stderr));
  assert.is((await stat(img)).size, 8 * 2 ** 20);
  assert.is(await fsck(img), 0);
});

Overlay('--overlay IMG :: with --fakeroot, an image made with overlay create --fakeroot', async () => {
  const img = join(dir, 'root.img');
  assert.is((await ctr(['overlay', 'create', '--fakeroot', img], { cwd: dir })).exitCode, 0);
  for (const n of ['1', '2']) {
    const r = await ctr(['exec', '--fakeroot', '--overlay', img, sif, 'sh', '-c', `echo run${n} >> /root-log; rm -f /etc/image-release; ls /etc/image-release 2>&1; cat /root-log; id -u`], { cwd: '/' });
    assert.is(r.stdout, 'ls: /etc/image-release: No such file or directory\n' + (n === '1' ? 'run1\n0\n' : 'run1\nrun2\n0\n'), String(r.stderr));
  }
  assert.is(await fsck(img), 0);
});

/** The pid of the first process named COMM below ROOT (ps's process tree), waiting for it. */
async function below(root: number, comm: string): Promise<number> {
  for (const until = Date.now() + 10000; Date.now() < until; await new Promise((res) => setTimeout(res, 50))) {
    const rows = (await execa('ps', ['-e', '-o', 'pid=,ppid=,comm='])).stdout.split('\n').map((l) => l.trim().split(/\s+/));
    const tree = new Set([root]);
    for (let grew = true; grew;) {
      grew = false;
      for (const [pid, ppid] of rows) {
        if (tree.has(Number(ppid)) && !tree.has(Number(pid))) {
          tree.add(Number(pid));
          grew = true;
        }
      }
    }
    const hit = rows.find(([pid, , c]) => c === comm && tree.has(Number(pid)));
    if (hit) return Number(hit[0]);
  }
  throw new Error(`no ${comm} below ${root}`);
}

Overlay('--overlay IMG :: SIGKILL of the launcher: nothing left running, the image clean, what was written is kept', async () => {
  const img = join(dir, 'killed.img');
  assert.is((await ctr(['overlay', 'create', '--size', '16', img], { cwd: dir })).exitCode, 0);
  const run = ctr(['exec', '--overlay', img, sif, 'sh', '-c', 'echo before > /before && dd if=/dev/zero of=/big bs=1M count=4 2>/dev/null && sleep 100'], { cwd: '/' });
  await below(run.pid!, 'sleep');
  process.kill(await below(run.pid!, 'ctr-launch'), 'SIGKILL');
  await run;
  assert.equal(await leftovers(5000), [], 'fuse2fs, fuse-overlayfs and the FUSE server gone');
  assert.is(await fsck(img), 0);
  const r = await ctr(['exec', '--overlay', img, sif, 'sh', '-c', 'cat /before; stat -c %s /big'], { cwd: '/' });
  assert.is(r.stdout, `before\n${4 * 2 ** 20}\n`, String(r.stderr));
});

Overlay('--overlay IMG :: one container at a time: a second on the same image is refused', async () => {
  const img = join(dir, 'busy.img');
  assert.is((await ctr(['overlay', 'create', '--size', '8', img], { cwd: dir })).exitCode, 0);
  const first = ctr(['exec', '--overlay', img, sif, 'sleep', '3'], { cwd: '/' });
  await new Promise((res) => setTimeout(res, 1500));
  const second = await ctr(['exec', '--overlay', img, sif, 'true'], { cwd: '/' });
  assert.is(second.stderr, `ctr: error: overlay image ${img}: in use by another container\n`);
  assert.is(second.exitCode, 255);
  assert.is((await first).exitCode, 0);
});

Overlay('--overlay IMG :: hostile: an image whose upper/ is a symlink out of it is refused', async () => {
  const stage = await userTmp('ctr-ovl-stage-');
  const target = await userTmp('ctr-ovl-target-');
  await symlink(target, join(stage, 'upper'));
  await mkdir(join(stage, 'work'));
  await chown(join(stage, 'work'), uid, gid);
  const img = join(dir, 'evil.img');
  await asUser('/sbin/mkfs.ext3', ['-q', '-F', '-d', stage, '-E', `root_owner=${uid}:${gid}`, img, '8M']);
  const r = await ctr(['exec', '--overlay', img, sif, 'sh', '-c', 'echo x > /escaped'], { cwd: '/' });
  assert.is(r.stderr, `ctr: error: overlay ${img}: upper/ is not a directory: Not a directory\n`);
  assert.is(r.exitCode, 255);
  assert.equal(await readdir(target), []);
  // Not a file system at all: fuse2fs refuses it, and so do we, in one line.
  const junk = join(dir, 'junk.img');
  await writeFile(junk, randomBytes(4 << 20));
  await chown(junk, uid, gid);
  const j = await ctr(['exec', '--overlay', junk, sif, 'true'], { cwd: '/' });
  assert.is(j.stderr, `ctr: error: cannot mount overlay image ${junk}: fuse2fs exited with status 2\n` +
    'ctr: hint: is it an ext3 image made by ctr overlay create (or apptainer overlay create)?\n');
  assert.is(j.exitCode, 255);
});

Overlay('--overlay DIR :: upper/ and work/ made in it; a file written in one run is there in the next', async () => {
  const d = join(dir, 'ovdir');
  await mkdir(d);
  await chown(d, uid, gid);
  const w = await ctr(['exec', '--overlay', d, sif, 'sh', '-c', 'echo kept > /kept && echo ok'], { cwd: '/' });
  assert.is(w.stdout, 'ok\n', String(w.stderr));
  assert.equal((await readdir(d)).sort(), ['upper', 'work']);
  const r = await ctr(['exec', '--overlay', d, sif, 'cat', '/kept'], { cwd: '/' });
  assert.is(r.stdout, 'kept\n', String(r.stderr));
});

/** A bare SquashFS holding FILES (path -> content), made by mksquashfs (root-owned). */
async function layer(name: string, files: Record<string, string>): Promise<string> {
  const src = join(dir, `${name}.src`);
  for (const [f, content] of Object.entries(files)) {
    await mkdir(join(src, f, '..'), { recursive: true });
    await writeFile(join(src, f), content);
  }
  const out = join(dir, `${name}.sqfs`);
  await execa('mksquashfs', [src, out, '-noappend', '-all-root', '-quiet', '-no-progress']);
  await chmod(out, 0o644);
  return out;
}

Overlay('--overlay FILE:ro :: read-only SquashFS layers over the image, the last on top, under the writable layer', async () => {
  const a = await layer('a', { 'opt/extra/hello': 'from a\n', 'opt/extra/only-a': 'a\n' });
  const b = await layer('b', { 'opt/extra/hello': 'from b\n' });
  const show = 'cat /opt/extra/hello /opt/extra/only-a /etc/image-release';
  const r = await ctr(['exec', '--overlay', `${a}:ro`, '--overlay', `${b}:ro`, sif, 'sh', '-c', `${show}; touch /opt/extra/x`], { cwd: '/' });
  assert.is(r.stdout, 'from b\na\nbusybox test image\n');
  assert.is(r.stderr, "touch: /opt/extra/x: Read-only file system\n");
  const d = join(dir, 'ro-upper');
  await mkdir(d);
  await chown(d, uid, gid);
  for (const w of [['--writable-tmpfs'], ['--overlay', d]]) {
    const rw = await ctr(['exec', '--fakeroot', '--overlay', `${a}:ro`, ...w, sif, 'sh', '-c', `${show.replace('hello ', 'hello; echo changed > /opt/extra/hello; cat /opt/extra/hello ')}`], { cwd: '/' });
    assert.is(rw.stdout, 'from a\nchanged\na\nbusybox test image\n', `${w.join(' ')}: ${String(rw.stderr)}`);
  }
  const bad = await ctr(['exec', '--overlay', `${d}:ro`, sif, 'true'], { cwd: '/' });
  assert.is(bad.stderr, `ctr: error: --overlay ${d}:ro: a read-only overlay must be a SquashFS image (bare, or a SIF)\n` +
    'ctr: hint: bind a directory instead: -B DIR:DST:ro\n');
  assert.is(bad.exitCode, 255);
});

Overlay('errors :: a missing overlay, and --overlay with --writable-tmpfs, are one line each', async () => {
  const m = await ctr(['exec', '--overlay', join(dir, 'nope.img'), sif, 'true'], { cwd: '/' });
  assert.is(m.stderr, `ctr: error: --overlay ${join(dir, 'nope.img')}: No such file or directory\n` +
    'ctr: hint: make one with: ctr overlay create --size 512 FILE (or mkdir DIR)\n');
  assert.is(m.exitCode, 255);
  const d = join(dir, 'ovdir2');
  await mkdir(d);
  const both = await ctr(['exec', '--overlay', d, '--writable-tmpfs', sif, 'true'], { cwd: '/' });
  assert.is(both.stderr, 'ctr: error: --overlay and --writable-tmpfs: one writable layer at most\n' +
    'ctr: hint: leave out --writable-tmpfs: the overlay holds the changes\n');
  assert.is(both.exitCode, 255);
});

Overlay.run();
