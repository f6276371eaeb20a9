// Ported from Apptainer's sandbox builds (their cases, our tests): e2e/imgbuild/imgbuild.go
// buildFrom (`build --force --sandbox DIR/ SPEC` then e2e ImageVerify) and
// buildUpdateSandbox, with the unprivileged user's fake root (Apptainer's FakerootProfile):
// `ctr build --sandbox DIR SOURCE` makes a directory image, `ctr exec DIR` runs it and
// `ctr build OUT.sif DIR` packs it.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TEST_USER, userTmp } from '../helpers/user.js';
import { testLayout } from '../oci/fixtures.js';
import { apptainerBusyboxSif, ctrUser, ownLeftovers, run } from './fixture.js';

const ctx = { dir: '', sif: '', def: '' };

const DEF = `Bootstrap: busybox

%post
    echo built > /built-by-post
    touch /owned-by-1
    chown 1:1 /owned-by-1

%runscript
    echo "runscript $*"

%labels
    made-by sandbox-test
`;

const Sandbox = suite('compat sandbox');

Sandbox.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-sandbox-');
  ctx.sif = await apptainerBusyboxSif();
  ctx.def = path.join(ctx.dir, 'sandbox.def');
  fs.writeFileSync(ctx.def, DEF);
});
Sandbox.after.each(async () => assert.equal(await ownLeftovers(), [], 'processes left behind'));
Sandbox.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

const leftovers = () => fs.readdirSync(ctx.dir).filter((n) => n.endsWith('.tmp'));

Sandbox('e2e/imgbuild/imgbuild.go buildFrom :: --force --sandbox DIR/ (trailing slash) from a definition file; ImageVerify', async () => {
  const dir = path.join(ctx.dir, 'from-def');
  const b = await ctrUser(['build', '--force', '--sandbox', `${dir}/`, ctx.def], {}, ctx.dir);
  assert.is(b.code, 0, b.stderr);
  assert.ok(fs.statSync(dir).isDirectory());
  // ImageVerify BasicIntegrityTests, less /.singularity.d/actions/* and 01-base.sh: ctr
  // runs actions itself and writes no env script of its own (README: Coming from Apptainer).
  const v = await ctrUser(['exec', dir, '/bin/sh', '-c', 'test -f /.singularity.d/runscript -a -L /environment -a -L /singularity && cat /built-by-post']);
  assert.is(v.code, 0, v.stderr);
  assert.is(v.stdout, 'built\n');
  const insp = await ctrUser(['inspect', '--json', '--labels', dir]);
  const j = JSON.parse(insp.stdout);
  assert.is(j.type, 'container');
  assert.is(j.data.attributes.labels['org.label-schema.schema-version'], '1.0');
  assert.is(j.data.attributes.labels['made-by'], 'sandbox-test');
  const run = await ctrUser(['run', dir, 'a', 'b']);
  assert.is(run.stdout, 'runscript a b\n');
  assert.equal(leftovers(), [], 'nothing left beside the sandbox');
});

Sandbox('e2e/imgbuild/imgbuild.go FakerootProfile :: ids %post gave stay in the sandbox; --fakeroot sees them again', async () => {
  const dir = path.join(ctx.dir, 'from-def');
  const r = await ctrUser(['exec', '--fakeroot', dir, 'stat', '-c', '%u:%g', '/owned-by-1', '/built-by-post']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '1:1\n0:0\n');
  // On the host: root's files are the user's, the others a subordinate id's.
  const st = fs.statSync(path.join(dir, 'built-by-post'));
  assert.is(st.uid, fs.statSync(ctx.dir).uid);
  assert.is.not(fs.statSync(path.join(dir, 'owned-by-1')).uid, st.uid);
});

Sandbox('e2e/imgbuild/imgbuild.go buildFrom :: a SIF unpacked into a sandbox runs as a directory, and packs into a SIF again', async () => {
  const dir = path.join(ctx.dir, 'from-sif');
  const b = await ctrUser(['build', '--sandbox', dir, ctx.sif], {}, ctx.dir);
  assert.is(b.code, 0, b.stderr);
  const r = await ctrUser(['exec', dir, 'cat', '/.singularity.d/env/10-docker2singularity.sh']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /export PATH=/);
  const sif = path.join(ctx.dir, 'repacked.sif');
  const p = await ctrUser(['build', sif, dir], {}, ctx.dir);
  assert.is(p.code, 0, p.stderr);
  const again = await ctrUser(['exec', sif, 'sh', '-c', 'echo $PATH']);
  assert.is(again.stdout, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
});

Sandbox('e2e/imgbuild/imgbuild.go buildFrom :: an OCI reference into a sandbox (through a SIF, not left behind)', async () => {
  const dir = path.join(ctx.dir, 'from-oci');
  const b = await ctrUser(['build', '--sandbox', dir, `oci:${await testLayout()}:test`], { CTR_CACHEDIR: path.join(ctx.dir, 'cache') }, ctx.dir);
  assert.is(b.code, 0, b.stderr);
  assert.is(fs.readFileSync(path.join(dir, 'data/replace.txt'), 'utf8'), 'v2\n');
  const r = await ctrUser(['exec', dir, 'cat', '/data/replace.txt']);
  assert.is(r.stdout, 'v2\n');
  assert.equal(leftovers(), []);
});

Sandbox('cmd/internal/cli/build.go --fix-perms :: a read-only directory of the image becomes the owner\'s to write', async () => {
  const src = path.join(ctx.dir, 'ro-src');
  fs.mkdirSync(path.join(src, 'locked'), { recursive: true });
  fs.writeFileSync(path.join(src, 'locked/f'), 'x');
  const { uid, gid } = fs.statSync(ctx.dir);
  for (const p of [src, path.join(src, 'locked'), path.join(src, 'locked/f')]) fs.chownSync(p, uid, gid);
  fs.chmodSync(path.join(src, 'locked/f'), 0o400);
  fs.chmodSync(path.join(src, 'locked'), 0o555);
  const sif = path.join(ctx.dir, 'ro.sif');
  const p = await ctrUser(['build', sif, src], {}, ctx.dir);
  assert.is(p.code, 0, p.stderr);
  for (const [flags, dmode, fmode] of [[[], 0o555, 0o400], [['--fix-perms'], 0o755, 0o600]] as const) {
    const dir = path.join(ctx.dir, `ro-${flags.length}`);
    const b = await ctrUser(['build', '--sandbox', ...flags, dir, sif], {}, ctx.dir);
    assert.is(b.code, 0, b.stderr);
    assert.is(fs.statSync(path.join(dir, 'locked')).mode & 0o777, dmode);
    assert.is(fs.statSync(path.join(dir, 'locked/f')).mode & 0o777, fmode);
  }
});

Sandbox('e2e/imgbuild/imgbuild.go buildFrom :: a root file system tarball into a sandbox', async () => {
  const tar = path.join(ctx.dir, 'rootfs.tar.gz');
  const t = await run('runuser', ['-u', TEST_USER, '--', 'tar', '-C', path.join(ctx.dir, 'from-sif'), '-czf', tar, '.']);
  assert.is(t.code, 0, t.stderr);
  const dir = path.join(ctx.dir, 'from-tar');
  const b = await ctrUser(['build', '--sandbox', dir, tar], {}, ctx.dir);
  assert.is(b.code, 0, b.stderr);
  const r = await ctrUser(['exec', dir, 'sh', '-c', 'echo $PATH']);
  assert.is(r.stdout, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
  assert.equal(leftovers(), []);
});

Sandbox('e2e/imgbuild/imgbuild.go buildUpdateSandbox :: Sandbox, UpdateWithoutSandboxFlag, UpdateWithBadSandboxPath, UpdateWithFileAsSandbox, UpdateSandbox', async () => {
  const dir = path.join(ctx.dir, 'update');
  fs.mkdirSync(dir);
  fs.chownSync(dir, fs.statSync(ctx.dir).uid, fs.statSync(ctx.dir).gid);
  const cases: Array<[string, string[], number]> = [
    ['Sandbox', ['--force', '--sandbox', dir, ctx.sif], 0],
    ['UpdateWithoutSandboxFlag', ['--update', dir, ctx.sif], 255],
    ['UpdateWithBadSandboxPath', ['--update', '--sandbox', '/bad/sandbox/path', ctx.sif], 255],
    ['UpdateWithFileAsSandbox', ['--update', '--sandbox', ctx.sif, ctx.sif], 255],
    ['UpdateSandbox', ['--update', '--sandbox', dir, ctx.sif], 0],
  ];
  for (const [name, args, code] of cases) {
    const r = await ctrUser(['build', ...args], {}, ctx.dir);
    assert.is(r.code, code, `${name}: ${r.stderr}`);
    if (code === 255) assert.match(r.stderr, /^ctr: error: /, name);
  }
  assert.ok(fs.statSync(path.join(dir, '.singularity.d/runscript')).isFile());
});

Sandbox('e2e/imgbuild/imgbuild.go buildUpdateSandbox :: --update with a definition file applies its sections to the sandbox, no bootstrap', async () => {
  const dir = path.join(ctx.dir, 'update');
  fs.writeFileSync(path.join(ctx.dir, 'more.def'), 'Bootstrap: docker\nFrom: nowhere.invalid/none\n\n%post\n    echo more > /more\n');
  const r = await ctrUser(['build', '--update', '--sandbox', dir, 'more.def'], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  const v = await ctrUser(['exec', dir, 'sh', '-c', 'cat /more; test -f /.singularity.d/env/10-docker2singularity.sh && echo kept']);
  assert.is(v.stdout, 'more\nkept\n');
  assert.equal(leftovers(), []);
});

Sandbox('cmd/internal/cli/build.go :: a sandbox that exists is kept without --force, replaced with it', async () => {
  const dir = path.join(ctx.dir, 'from-sif');
  const r = await ctrUser(['build', '--sandbox', dir, ctx.def], {}, ctx.dir);
  assert.is(r.code, 255);
  assert.match(r.stderr, /^ctr: error: output .*from-sif: already exists \(use --force to overwrite\)/);
  const f = await ctrUser(['build', '-F', '-s', dir, ctx.def], {}, ctx.dir);
  assert.is(f.code, 0, f.stderr);
  assert.ok(fs.existsSync(path.join(dir, 'built-by-post')));
  assert.not.ok(fs.existsSync(path.join(dir, '.singularity.d/env/10-docker2singularity.sh')), 'the old tree is gone');
  // Not an image: --force does not remove it (a home directory given by mistake).
  const mine = path.join(ctx.dir, 'mine');
  fs.mkdirSync(mine);
  fs.writeFileSync(path.join(mine, 'thesis.tex'), 'x');
  const no = await ctrUser(['build', '-F', '-s', mine, ctx.sif], {}, ctx.dir);
  assert.is(no.code, 255);
  assert.match(no.stderr, /^ctr: error: --force .*mine: a directory that is not a container image/);
  assert.ok(fs.existsSync(path.join(mine, 'thesis.tex')));
});

Sandbox.run();
