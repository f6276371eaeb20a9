// Containers inside a ctr container, as workflow engines run them: ctr itself (a nested
// user namespace, its own FUSE mount, overlay and PID namespace) and bubblewrap. The
// outer container's image is the host's root directory (a sandbox with node, ctr and
// bwrap in it), run read-only as the unprivileged test user.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { busyboxSif } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { dirname, join } from 'node:path';
import { CACHE, CTR_BIN, CTR_ROOT, LAUNCHER } from '../helpers/paths.js';
import { ctr, userIds, userTmp } from '../helpers/user.js';

const Nest = suite('nesting');
let sif: string, uid: number;

Nest.before(async () => {
  sif = await busyboxSif();
  ({ uid } = await userIds());
});
Nest.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

const INNER = 'echo inner; id -u; cat /etc/image-release; ps | wc -l';

Nest('ctr in ctr :: the inner container runs a command from its own image, in its own PID namespace', async () => {
  // --contain's /tmp and /var/tmp are fresh: bind the image cache and ctr itself (a
  // checkout may well be under /tmp, as CI's clean clone can be).
  for (const outer of [[], ['--contain', '-B', CACHE, '-B', CTR_ROOT]]) {
    const r = await ctr(['exec', ...outer, '/', CTR_BIN, 'exec', sif, 'sh', '-c', INNER], { cwd: '/' });
    // ps in the inner PID namespace: its header, init, sh, ps and wc.
    assert.is(r.stdout, `inner\n${uid}\nbusybox test image\n5\n`, `${outer.join(' ')}: ${String(r.stderr)}`);
    assert.is(r.stderr, '');
    assert.is(r.exitCode, 0);
  }
});

Nest('ctr in ctr :: with --fakeroot outside, and inside too', async () => {
  const r = await ctr(['exec', '--fakeroot', '--fakeroot-mode', 'subuid', '/', CTR_BIN, 'exec', '--fakeroot', sif, 'sh', '-c', 'id -u; cat /etc/image-release'], { cwd: '/' });
  assert.is(r.stdout, '0\nbusybox test image\n', String(r.stderr));
  assert.is(r.exitCode, 0);
});

Nest('ctr in ctr :: the inner exit status and a writable layer work', async () => {
  const r = await ctr(['exec', '/', CTR_BIN, 'exec', '--writable-tmpfs', '--net', '--hostname', 'inner', sif, 'sh', '-c', 'echo x > /new && cat /new && exit 7'], { cwd: '/' });
  assert.is(r.stdout, 'x\n', String(r.stderr));
  assert.is(r.exitCode, 7);
});

Nest('ctr in ctr :: a plan file run by the launcher alone inside a SIF container (FUSE in FUSE, no Node inside)', async () => {
  const dir = await userTmp('ctr-nest-');
  const plan = join(dir, 'inner.plan');
  assert.is((await ctr(['plan', '-o', plan, '--no-home', sif], { cwd: dir })).exitCode, 0);
  // The busybox image has no C library: the host's is bound in for the launcher.
  const libs = ['-B', '/lib/x86_64-linux-gnu', '-B', '/lib64', '-B', dirname(LAUNCHER), '-B', CACHE];
  for (const outer of [[], ['--contain', '-B', dir], ['--writable-tmpfs']]) {
    const r = await ctr(['exec', ...outer, ...libs, sif, plan, 'sh', '-c', INNER], { cwd: dir });
    assert.is(r.stdout, `inner\n${uid}\nbusybox test image\n5\n`, `${outer.join(' ')}: ${String(r.stderr)}`);
    assert.is(r.exitCode, 0);
  }
});

Nest('bwrap in ctr :: bubblewrap makes its own namespaces and runs a command', async () => {
  for (const outer of [[], ['--contain']]) {
    const r = await ctr(['exec', ...outer, '/', 'bwrap', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp',
      '--unshare-all', '--die-with-parent', 'sh', '-c', 'id -u; ls /proc | grep -c "^[0-9]"; touch /tmp/x && echo tmp-ok'], { cwd: '/' });
    // In bwrap's PID namespace: its init, sh, ls and grep.
    assert.is(r.stdout, `${uid}\n4\ntmp-ok\n`, `${outer.join(' ')}: ${String(r.stderr)}`);
    assert.is(r.exitCode, 0);
  }
});

Nest.run();
