// Apptainer's site conventions (issue 13): bind variables, the site config file and its
// errors, and `ctr cache list|clean`, as the unprivileged test user.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { ctr, userTmp } from '../helpers/user.js';

const Site = suite('site conventions');
let sif: string, d: string;

Site.before(async () => {
  sif = await busyboxSif();
  d = await userTmp();
  await writeFile(join(d, 'marker'), 'from the host\n');
  await execa('chmod', ['-R', 'a+rX', d]);
});
Site.after(async () => {
  await rm(d, { recursive: true, force: true });
});
Site.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

Site('bind variables :: APPTAINER_BIND, SINGULARITY_BIND and CTR_BIND bind like -B', async () => {
  for (const name of ['APPTAINER_BIND', 'SINGULARITY_BINDPATH', 'CTR_BIND']) {
    const r = await ctr(['exec', sif, 'cat', '/mnt/site/marker'], { cwd: '/', env: { [name]: `${d}:/mnt/site:ro` } });
    assert.is(r.stderr, '', name);
    assert.is(r.stdout, 'from the host\n', name);
  }
});

Site('config :: its binds reach the container; a missing source is skipped', async () => {
  const conf = join(d, 'ctr.conf');
  await writeFile(conf, `# site binds\nbind = ${d}:/site\nbind = /nonexistent/scratch:/scratch\n`);
  await execa('chmod', ['644', conf]);
  const r = await ctr(['exec', sif, 'sh', '-c', 'cat /site/marker; test -e /scratch || echo no scratch'], { cwd: '/', env: { CTR_CONFIG: conf } });
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'from the host\nno scratch\n');
});

Site('config :: a syntax error names the file and the line', async () => {
  const conf = join(d, 'bad.conf');
  await writeFile(conf, `bind = ${d}:/site\nfoo bar\n`);
  await execa('chmod', ['644', conf]);
  const r = await ctr(['exec', sif, 'true'], { cwd: '/', env: { CTR_CONFIG: conf } });
  assert.is(r.stderr, `ctr: error: config ${conf}: line 2: expected KEY = VALUE, got "foo bar"\n`);
  assert.is(r.exitCode, 255);
});

Site('cache :: list -v shows the blobs, list a total; clean --days keeps fresh ones, clean removes all', async () => {
  const cache = join(d, 'cache');
  const blobs = join(cache, 'blobs/sha256');
  await mkdir(blobs, { recursive: true });
  const [a, b] = ['a'.repeat(64), 'b'.repeat(64)];
  await writeFile(join(blobs, a), Buffer.alloc(2048));
  await writeFile(join(blobs, b), Buffer.alloc(1024));
  const old = new Date(Date.now() - 10 * 86400e3);
  await utimes(join(blobs, b), old, old);
  await execa('chown', ['-R', `${(await execa('stat', ['-c', '%u', d])).stdout}`, cache]);
  const env = { CTR_CACHEDIR: cache };
  const list = await ctr(['cache', 'list', '-v'], { cwd: '/', env });
  assert.is(list.exitCode, 0, String(list.stderr));
  assert.match(String(list.stdout), new RegExp(`sha256:${a}`));
  assert.match(String(list.stdout), new RegExp(`sha256:${b}`));
  assert.match(String(list.stdout), /2 blobs, 3\.0 KiB in /);
  const some = await ctr(['cache', 'clean', '--days', '5'], { cwd: '/', env });
  assert.match(String(some.stdout), /^removed 1 blob unused for more than 5 days, 1\.0 KiB, from /);
  const all = await ctr(['cache', 'clean'], { cwd: '/', env });
  assert.match(String(all.stdout), /^removed 1 blob, 2\.0 KiB, from /);
  const empty = await ctr(['cache', 'list'], { cwd: '/', env });
  assert.match(String(empty.stdout), /0 blobs, 0 B in /);
});

Site.run();
