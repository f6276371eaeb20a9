// Images built on SELinux hosts (most Singularity images) carry security.selinux on
// every file. A rootless container can neither use such labels nor copy them: overlayfs
// copies every xattr the lower lists when --writable-tmpfs copies a file up, and aborts
// when one can't be read. libsquashfuse 0.1.105 listed security.* as trusted.*, which
// the kernel refuses to read without real root (ENODATA), so every write to an image
// file failed with "No data available". The built-in server serves user.* only.
import { execa } from 'execa';
import { chmod, chown, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cached, makeBusyboxTree } from '../helpers/images.js';
import { killUserProcesses, leftovers } from '../helpers/leftovers.js';
import { SIFTOOL } from '../helpers/paths.js';
import { ctr, userIds } from '../helpers/user.js';

const LABEL = 'system_u:object_r:bin_t:s0';

/** The busybox tree with /usr and /var, an SELinux label on everything, a user.* xattr. */
async function labelledTree(dir: string, owner?: { uid: number; gid: number }): Promise<void> {
  await makeBusyboxTree(dir);
  for (const d of ['usr/bin', 'var/lib', 'tmp', 'proc', 'sys', 'dev']) await mkdir(join(dir, d), { recursive: true });
  // The host's /usr bound over /usr runs its Python (merged /usr: lib and lib64 are links).
  for (const l of ['lib', 'lib64']) await symlink(`usr/${l}`, join(dir, l));
  await execa('setfattr', ['-n', 'user.ctr', '-v', 'kept', join(dir, 'etc/image-release')]);
  await execa('find', [dir, '-exec', 'setfattr', '-h', '-n', 'security.selinux', '-v', LABEL, '{}', '+']);
  if (owner) await execa('chown', ['-R', '-h', `${owner.uid}:${owner.gid}`, dir]);
}

/** Root-owned, in a SIF, as Singularity images are; for --fakeroot. */
function rootImage(): Promise<string> {
  return cached('selinux-busybox.sif', async (tmp) => {
    const tree = `${tmp}.tree`, sqfs = `${tmp}.sqfs`;
    await labelledTree(tree);
    await execa('mksquashfs', [tree, sqfs, '-noappend', '-all-root', '-xattrs', '-comp', 'zstd', '-quiet', '-no-progress']);
    await execa(SIFTOOL, ['new', tmp]);
    await execa(SIFTOOL, ['add', tmp, sqfs, '--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', '2']);
    await execa('rm', ['-rf', tree, sqfs]);
    await chmod(tmp, 0o644);
  });
}

/** Owned by the test user (as an image a user built for themselves); no --fakeroot needed. */
function userImage(): Promise<string> {
  return cached('selinux-busybox-user.sqfs', async (tmp) => {
    const tree = `${tmp}.tree`;
    await labelledTree(tree, await userIds());
    await execa('mksquashfs', [tree, tmp, '-noappend', '-xattrs', '-comp', 'zstd', '-quiet', '-no-progress']);
    await execa('rm', ['-rf', tree]);
    await chown(tmp, 0, 0);
    await chmod(tmp, 0o644);
  });
}

const WRITES = [
  'echo x > /etc/new && cat /etc/new',
  'echo y >> /etc/image-release && tail -n 1 /etc/image-release',
  'echo b > /bin/new && cat /bin/new',
  'echo u > /usr/bin/new && cat /usr/bin/new',
  'echo v > /var/lib/new && cat /var/lib/new',
  'chmod 700 /bin/busybox && /bin/busybox true && echo copied-up',
].join(' && ');

const Xattr = suite('SELinux-labelled images');
Xattr.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

Xattr('the images carry security.selinux on their files', async () => {
  for (const img of [await userImage()]) {
    const r = await execa('rdsquashfs', ['-x', '/bin/busybox', img]);
    assert.match(r.stdout, `security.selinux=${LABEL}`);
  }
  // The SIF's partition is the same kind of SquashFS: ctr inspect reads it.
  const i = await ctr(['inspect', await rootImage()]);
  assert.is(i.exitCode, 0, String(i.stderr));
});

// The built-in server only: squashfuse_ll (CTR_FUSE=exec) is Debian's 0.1.105 as it is.
// Both ways of being root (plan/fakeroot.ts) as well as the plain user.
for (const fakeroot of [[], ['--fakeroot', '--fakeroot-mode', 'subuid'], ['--fakeroot', '--fakeroot-mode', 'seccomp']]) {
  Xattr(`--writable-tmpfs${fakeroot.length ? ` ${fakeroot.join(' ')}` : ''} :: writes to image files copy them up`, async () => {
    const img = fakeroot.length ? await rootImage() : await userImage();
    const r = await ctr(['exec', ...fakeroot, '--writable-tmpfs', img, 'sh', '-c', WRITES]);
    assert.is(r.stderr, '');
    assert.is(r.stdout, 'x\ny\nb\nu\nv\ncopied-up\n');
    assert.is(r.exitCode, 0);
  });
}

Xattr('user.* xattrs are served, security.* are not listed and not found', async () => {
  const py = 'import os\nprint(os.listxattr("/etc/image-release"), os.getxattr("/etc/image-release", "user.ctr"))\n'
    + 'try:\n os.getxattr("/etc/image-release", "security.selinux")\nexcept OSError as e:\n print(e.errno)\n';
  const r = await ctr(['exec', '-B', '/usr', await userImage(), '/usr/bin/python3', '-c', py]);
  assert.is(r.stderr, '');
  assert.is(r.stdout, "['user.ctr'] b'kept'\n61\n");
});

Xattr.run();
