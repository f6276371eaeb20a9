// One temporary-directory variable (issue 13): CTR_TMPDIR, else TMPDIR, else /tmp, for
// every temporary directory ctr makes (a build's root file system, an unpacked image
// archive). Where the build's root went is seen from %setup ($APPTAINER_ROOTFS), as the
// test user; an unusable one is one error line naming it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempRoot } from '../../src/tmp.js';
import { ctr, TEST_USER, userTmp } from '../helpers/user.js';

const Tmp = suite('CTR_TMPDIR');
let dir: string, def: string;

Tmp.before(async () => {
  dir = await userTmp('ctr-tmpdir-');
  def = join(dir, 'x.def');
  await writeFile(def, `Bootstrap: busybox\n\n%setup\n    echo "$APPTAINER_ROOTFS" > ${dir}/rootfs-was\n`, { mode: 0o644 });
  for (const d of ['a', 'b']) await mkdir(join(dir, d));
  await execa('chown', ['-R', `${TEST_USER}:`, dir]);
});
Tmp.after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Build with ENV; returns the directory the root file system was made in. */
async function buildIn(env: Record<string, string>): Promise<string> {
  const out = join(dir, 'out.sif');
  const r = await ctr(['build', '-q', '--force', out, def], { cwd: dir, env });
  assert.equal([r.stderr, r.exitCode], ['', 0], JSON.stringify(env));
  return (await readFile(join(dir, 'rootfs-was'), 'utf8')).trim().replace(/\/ctr-build-[^/]+$/, '');
}

Tmp('build :: CTR_TMPDIR, else TMPDIR; nothing left there afterwards', async () => {
  assert.is(await buildIn({ CTR_TMPDIR: join(dir, 'a') }), join(dir, 'a'));
  assert.is(await buildIn({ TMPDIR: join(dir, 'b') }), join(dir, 'b'));
  assert.is(await buildIn({ CTR_TMPDIR: join(dir, 'a'), TMPDIR: join(dir, 'b') }), join(dir, 'a'));
  assert.equal([await readdir(join(dir, 'a')), await readdir(join(dir, 'b'))], [[], []]);
});

Tmp('unusable :: one error line naming the directory, with the variable as the fix', async () => {
  const hint = 'ctr: hint: set CTR_TMPDIR (or TMPDIR) to a directory you can write to\n';
  const r = await ctr(['build', '-q', '--force', join(dir, 'out.sif'), def], { cwd: dir, env: { CTR_TMPDIR: '/nonexistent/tmp' } });
  assert.equal([r.stderr, r.exitCode], [`ctr: error: cannot make a temporary directory in /nonexistent/tmp: No such file or directory\n${hint}`, 255]);
  // ctr pull of an image archive unpacks it there too.
  await execa('tar', ['-C', dir, '-cf', join(dir, 'img.tar'), 'x.def']);
  await execa('chown', [`${TEST_USER}:`, join(dir, 'img.tar')]);
  const p = await ctr(['pull', '-q', join(dir, 'p.sif'), `docker-archive:${join(dir, 'img.tar')}`], { cwd: dir, env: { TMPDIR: '/proc/tmp' } });
  assert.equal([p.stderr, p.exitCode], [`ctr: error: cannot make a temporary directory in /proc/tmp: No such file or directory\n${hint}`, 255]);
});

Tmp('tempRoot :: only absolute paths count; /tmp last', () => {
  assert.is(tempRoot({ CTR_TMPDIR: '/x', TMPDIR: '/y' }), '/x');
  assert.is(tempRoot({ CTR_TMPDIR: 'rel', TMPDIR: '/y' }), '/y');
  assert.is(tempRoot({ CTR_TMPDIR: '', TMPDIR: '' }), '/tmp');
  assert.is(tempRoot({}), '/tmp');
});

Tmp.run();
