// Try to break isolation from inside, as the unprivileged user: every attempt must fail
// with the kernel's own refusal.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxDir, busyboxSif } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { ctr, userIds, userTmp } from '../helpers/user.js';

/** Both ways of being root (plan/fakeroot.ts): each case that runs as fake root runs in each. */
const FAKEROOTS = [['--fakeroot', '--fakeroot-mode', 'subuid'], ['--fakeroot', '--fakeroot-mode', 'seccomp']];

const Isolation = suite('ctr isolation');
let sif: string, uid: number;

Isolation.before(async () => {
  sif = await busyboxSif();
  ({ uid } = await userIds());
});
Isolation.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

Isolation('image :: read-only without an overlay: writing to / or /bin fails with EROFS', async () => {
  for (const img of [sif, await busyboxDir()]) {
    const r = await ctr(['exec', img, 'sh', '-c', 'echo x > /new; echo x > /bin/new; rm /bin/true; mkdir /etc/d'], { cwd: '/' });
    assert.is(r.stderr, "sh: can't create /new: Read-only file system\n" +
      "sh: can't create /bin/new: Read-only file system\n" +
      "rm: can't remove '/bin/true': Read-only file system\n" +
      "mkdir: can't create directory '/etc/d': Read-only file system\n", img);
    assert.is(r.exitCode, 1);
  }
});

Isolation('setuid :: the setuid-root busybox in the image gives no privilege', async () => {
  // busybox picks its applet from argv[0]: reach the setuid file through a link named id.
  const d = await userTmp();
  await symlink('/bin/suid-busybox', join(d, 'id'));
  const r = await ctr(['exec', sif, 'sh', '-c', `stat -c '%a %u' /bin/suid-busybox; ${d}/id -u; ${d}/id -ru`], { cwd: '/' });
  assert.is(r.stderr, '');
  // root in the image shows as nobody (65534) with identity mapping
  assert.is(r.stdout, `4755 65534\n${uid}\n${uid}\n`);
  await rm(d, { recursive: true });
});

Isolation('no_new_privs :: /proc/self/status shows NoNewPrivs: 1', async () => {
  const r = await ctr(['exec', sif, 'grep', 'NoNewPrivs', '/proc/self/status']);
  assert.is(r.stdout, 'NoNewPrivs:\t1\n');
});

Isolation('devices :: mknod fails, also as fakeroot (faked in the seccomp way: still no device)', async () => {
  const d = await userTmp();
  const r = await ctr(['exec', '-B', `${d}:/mnt`, sif, 'sh', '-c', 'mknod /mnt/null c 1 3'], { cwd: '/' });
  assert.is(r.stderr, 'mknod: /mnt/null: Operation not permitted\n');
  assert.is(r.exitCode, 1);
  const f = await ctr(['exec', ...FAKEROOTS[0], '-B', `${d}:/mnt`, sif, 'sh', '-c', 'mknod /mnt/null c 1 3'], { cwd: '/' });
  assert.is(f.stderr, 'mknod: /mnt/null: Operation not permitted\n');
  assert.is(f.exitCode, 1);
  const s = await ctr(['exec', ...FAKEROOTS[1], '-B', `${d}:/mnt`, sif, 'sh', '-c', 'mknod /mnt/null c 1 3; test -e /mnt/null || echo no device'], { cwd: '/' });
  assert.is(s.stderr, '');
  assert.is(s.stdout, 'no device\n');
  await rm(d, { recursive: true });
});

Isolation('proc and sys :: writing /proc/sys/kernel/hostname and /sys fails, also as fakeroot', async () => {
  for (const flags of [[], ...FAKEROOTS]) {
    const r = await ctr(['exec', ...flags, sif, 'sh', '-c',
      'echo evil > /proc/sys/kernel/hostname; echo 1 > /sys/kernel/profiling; cat /proc/sys/kernel/hostname >/dev/null'], { cwd: '/' });
    assert.is(r.stderr, "sh: can't create /proc/sys/kernel/hostname: Permission denied\n" +
      "sh: can't create /sys/kernel/profiling: Permission denied\n", flags.join(' '));
    assert.is(r.exitCode, 0);
  }
});

Isolation('host files :: root-owned /root and /etc/shadow stay unreadable, also as fakeroot through a bind', async () => {
  for (const flags of [[], ...FAKEROOTS]) {
    const r = await ctr(['exec', ...flags, '-B', '/etc/shadow:/mnt/shadow', '-B', '/root:/mnt/root', sif, 'sh', '-c',
      'cat /mnt/shadow; ls /mnt/root; cat /proc/1/comm'], { cwd: '/' });
    // PID 1 is the container's own init: the host's processes (and their roots) aren't in view.
    assert.is(r.stdout, 'ctr-init\n');
    assert.is(r.stderr, "cat: can't open '/mnt/shadow': Permission denied\n" +
      "ls: can't open '/mnt/root': Permission denied\n", flags.join(' '));
  }
});

Isolation('escape :: nothing of the scratch root or the old root is reachable', async () => {
  const r = await ctr(['exec', sif, 'sh', '-c',
    'for p in /oldroot /img /skel /work /newroot /run; do test -e $p && echo "visible: $p"; done; cd /..; pwd; ls /'], { cwd: '/' });
  assert.is(r.stderr, '');
  assert.is(r.stdout, '/\nbin\ndev\netc\nhome\nproc\nsys\ntmp\nvar\n');
  const m = await ctr(['exec', sif, 'sh', '-c', 'M="^[0-9]+ [0-9]+ [0-9]+:[0-9]+ [^ ]+"; grep -cE "$M / " /proc/self/mountinfo; grep -E "$M /(oldroot|img|skel|newroot)[ /]" /proc/self/mountinfo']);
  assert.is(m.stdout, '1\n', 'one root mount, no scratch mounts');
});

Isolation.run();
