// Ported from Apptainer's behaviour around its default mounts (e2e/actions/actions.go
// actionBinds and the regressions of e2e/actions/regressions.go): an image whose /var/tmp
// is a symlink to /tmp keeps the host's /tmp there, and a default bind whose place in the
// image can't be used (/etc/localtime leading through /proc) is skipped with a warning.
// One ctr-built image, from the Apptainer-layout busybox.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { userTmp } from '../helpers/user.js';
import { apptainerBusyboxSif, ctrUser, ownLeftovers } from './fixture.js';

const ctx = { dir: '', sif: '' };
const Mounts = suite('compat mounts');

Mounts.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-mounts-');
  const def = path.join(ctx.dir, 'm.def');
  fs.writeFileSync(def, `Bootstrap: localimage\nFrom: ${await apptainerBusyboxSif()}\n\n%post\n` +
    '    rm -rf /var/tmp && ln -s /tmp /var/tmp\n    rm -f /etc/localtime && ln -s /proc/self/root/etc/zone /etc/localtime\n');
  ctx.sif = path.join(ctx.dir, 'm.sif');
  const r = await ctrUser(['build', ctx.sif, def], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
});
Mounts.after.each(async () => assert.equal(await ownLeftovers(), [], 'processes left behind'));
Mounts.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

Mounts('e2e/actions/regressions.go :: an image whose /var/tmp is a symlink to /tmp keeps the host\'s /tmp there', async () => {
  const r = await ctrUser(['exec', ctx.sif, 'sh', '-c', `readlink /var/tmp; test -d ${ctx.dir} && echo host-tmp`], {}, ctx.dir);
  assert.is(r.stdout, '/tmp\nhost-tmp\n');
});

Mounts('internal/pkg/runtime/engine/apptainer/container_linux.go :: a default bind that can\'t be made (/etc/localtime) is a warning, not an error', async () => {
  const r = await ctrUser(['exec', ctx.sif, 'echo', 'ran'], {}, ctx.dir);
  assert.is(r.code, 0);
  assert.is(r.stdout, 'ran\n');
  assert.ok(fs.existsSync('/etc/localtime'), 'the host has an /etc/localtime to bind (tzdata)');
  assert.is(r.stderr, "ctr: warning: skipping /etc/localtime: its place in the image (/proc/self/root/etc/zone) can't be used: Too many levels of symbolic links\n");
});

Mounts.run();
