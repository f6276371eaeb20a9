// The npm package as a user gets it: `npm pack` of this checkout (already built), then
// `npm install -g TARBALL --prefix P` as root, then P/bin/ctr run by the unprivileged
// test user from a directory outside any checkout.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { REPO } from '../helpers/paths.js';
import { asUser, userTmp } from '../helpers/user.js';

const Pack = suite('npm package');
let work: string, prefix: string, pkg: string, ctr: string, cwd: string, tarball: string;
let install: Awaited<ReturnType<typeof execa>>;

/** npm, without the npm_* variables of the `npm test` that runs us. */
function npm(args: string[], opts: { cwd: string }) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return execa('npm', args, { ...opts, env, extendEnv: false, reject: false, all: true });
}

Pack.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ctr-pack-'));
  await chmod(work, 0o755);
  prefix = join(work, 'prefix');
  // --ignore-scripts: the checkout is built already (npm run build); prepack would build
  // it again, under the feet of whatever else runs from it.
  const pack = await npm(['pack', '--ignore-scripts', '--pack-destination', work], { cwd: REPO });
  assert.is(pack.exitCode, 0, pack.all);
  tarball = join(work, String(pack.stdout).trim().split('\n').pop()!);
  install = await npm(['install', '-g', tarball, '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund'], { cwd: work });
  assert.is(install.exitCode, 0, String(install.all));
  pkg = join(prefix, 'lib/node_modules/ctr');
  ctr = join(prefix, 'bin/ctr');
  cwd = await userTmp('ctr-pack-user-');
});

Pack.after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

Pack('contents :: what runs ships (dist/src, the launcher, the snapshot bundle); sources and tests do not', async () => {
  const list = (await execa('tar', ['tzf', tarball])).stdout.split('\n').map((p) => p.replace(/^package\//, ''));
  for (const want of ['bin/ctr', 'dist/src/cli/main.js', 'dist/snapshot/ctr.cjs', 'native/build/ctr-launch', 'native/Makefile',
    'scripts/postinstall.mjs', 'package.json', 'README.md', 'data/nvliblist.conf', 'data/rocmliblist.conf',
    'dist/man/ctr.1', 'dist/man/ctr-exec.1', 'dist/completion/ctr.bash', 'dist/completion/_ctr']) {
    assert.ok(list.includes(want), `${want} is in the package`);
  }
  for (const p of list) {
    assert.not.match(p, /^(test|src|bench)\/|\.ts$|\.map$|^dist\/test\/|^dist\/snapshot\/ctr\.blob$/, `${p} is not shipped`);
  }
  const json = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  assert.equal(json.os, ['linux']);
  assert.not.ok('uvu' in json.dependencies, 'uvu is a dev dependency');
  // Nothing at run time needs the test framework: it isn't even installed.
  assert.not.ok(existsSync(join(pkg, 'node_modules/uvu')) || existsSync(join(prefix, 'lib/node_modules/uvu')), 'uvu not installed');
});

Pack('postinstall :: the snapshot is made by the installing node; the prebuilt launcher is kept', async () => {
  assert.ok(existsSync(join(pkg, 'dist/snapshot/ctr.blob')), `snapshot made: ${install.all}`);
  assert.is(readFileSync(join(pkg, 'dist/snapshot/node'), 'utf8'), `${process.execPath}\n`);
  assert.not.match(String(install.all), /ctr: warning/);
});

Pack('--version :: as the test user, outside any checkout', async () => {
  const r = await asUser(ctr, ['--version'], { cwd });
  assert.is(r.stderr, '');
  assert.match(String(r.stdout), /^ctr 0\.1\.0\n/);
  assert.match(String(r.stdout), new RegExp(`\nlauncher: ctr-launch 0\\.1\\.0, .*FUSE server: in process.* \\(${pkg}/native/build/ctr-launch\\)\n`));
  assert.match(String(r.stdout), new RegExp(`\nstart-up snapshot: in use: exec, run, shell and plan start from ${pkg}/dist/snapshot/ctr\\.blob\n`));
  // --nv's name list ships in data/ and is found from the install (this host: no driver).
  assert.match(String(r.stdout), /\nnvidia driver \(--nv\): none found \(looked in the ld\.so cache, /);
  assert.is(r.exitCode, 0);
  // The second name (Debian's containerd has a ctr too): the same program.
  const hpc = await asUser(join(prefix, 'bin/ctr-hpc'), ['--version'], { cwd });
  assert.equal([hpc.stdout, hpc.exitCode], [r.stdout, 0]);
});

Pack('build + exec :: a directory built into a SIF; busybox run through the snapshot and the in-process FUSE server', async () => {
  const tree = join(cwd, 'tiny');
  await mkdir(join(tree, 'etc'), { recursive: true });
  await writeFile(join(tree, 'etc/hello'), 'hello from a tiny image\n');
  await execa('chown', ['-R', 'ctrtest:', tree]);
  const out = join(cwd, 'tiny.sif');
  const build = await asUser(ctr, ['build', out, tree], { cwd });
  assert.is(build.exitCode, 0, String(build.stderr));
  const fd = await open(out);
  const head = Buffer.alloc(64);
  await fd.read(head, 0, 64, 0);
  await fd.close();
  assert.match(head.toString('latin1'), /SIF_MAGIC/);
  // A tiny directory has no shell: the command runs in busybox, the built SIF bound in.
  const sif = await busyboxSif();
  const r = await asUser(ctr, ['exec', '--debug', '-B', `${out}:/tiny.sif`, sif, '/bin/sh', '-c', 'echo ok; test -s /tiny.sif'], { cwd });
  assert.is(r.stdout, 'ok\n', String(r.stderr));
  assert.match(String(r.stderr), /started from the start-up snapshot/);
  assert.match(String(r.stderr), /FUSE server started \(in process\)/);
  assert.is(r.exitCode, 0);
  const inspect = await asUser(ctr, ['inspect', out], { cwd });
  assert.is(inspect.exitCode, 0, String(inspect.stderr));
});

Pack('without install scripts :: (npm --ignore-scripts, or an npm that holds them back) ctr still runs, from plain Node', async () => {
  const bare = join(work, 'bare');
  const r = await npm(['install', '-g', tarball, '--prefix', bare, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: work });
  assert.is(r.exitCode, 0, String(r.all));
  const bin = join(bare, 'bin/ctr');
  const version = await asUser(bin, ['--version'], { cwd });
  assert.match(String(version.stdout), /\nstart-up snapshot: not in use: not made \(npm run build makes it; an installed package makes it on install\)\n/);
  const sif = await busyboxSif();
  const exec = await asUser(bin, ['exec', '--debug', sif, '/bin/sh', '-c', 'echo ok'], { cwd });
  assert.is(exec.stdout, 'ok\n', String(exec.stderr));
  assert.match(String(exec.stderr), /started from plain Node/);
  assert.is(exec.exitCode, 0);
});

Pack.run();
