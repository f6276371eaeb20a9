// ctr build on bad input: one `ctr: error:` line, a non-zero exit, and nothing left
// behind: no OUT, no temporary file beside it, no ctr-build-* tree in /tmp, no process.
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { busyboxDir } from '../helpers/images.js';
import { CTR_MAIN } from '../helpers/paths.js';
import { TEST_USER, userIds, userTmp } from '../helpers/user.js';
import { bytes, ctrRoot, ctrUser, files, ownLeftovers, run, sessions } from './fixture.js';

const ctx = { dir: '', out: '', tmpBefore: [] as string[] };

const buildTmps = () => fs.readdirSync('/tmp').filter((n) => n.startsWith('ctr-build-')).sort();

/** The output directory holds exactly `expected`; /tmp has no new ctr-build-* tree. */
function assertClean(dir: string, expected: string[]): void {
  assert.equal(files(dir).filter((n) => n.endsWith('.tmp') || n === 'out.sif'), expected, `files in ${dir}`);
  assert.equal(buildTmps().filter((n) => !ctx.tmpBefore.includes(n)), [], 'ctr-build-* left in /tmp');
}

function writeDef(name: string, text: string): string {
  const p = path.join(ctx.dir, name);
  fs.writeFileSync(p, text);
  fs.chmodSync(p, 0o644);
  return p;
}

const Errors = suite('ctr build errors');

Errors.before(async () => {
  ctx.dir = await userTmp('ctr-t-build-err-');
  ctx.out = path.join(ctx.dir, 'out.sif');
  ctx.tmpBefore = buildTmps();
});
Errors.after.each(async () => {
  const left = await ownLeftovers();
  fs.rmSync(ctx.out, { force: true });
  assert.equal(left, [], 'processes left behind');
});
Errors.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

Errors('source :: a missing source is named', async () => {
  const r = await ctrUser(['build', ctx.out, `${ctx.dir}/nonexistent`]);
  assert.is(r.stderr, `ctr: error: build source ${ctx.dir}/nonexistent: No such file or directory\n`);
  assert.is(r.code, 255);
  assertClean(ctx.dir, []);
});

Errors('source :: an unreadable file inside a directory source is named', async () => {
  const src = path.join(ctx.dir, 'tree');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'ok'), 'fine\n');
  fs.writeFileSync(path.join(src, 'sub/secret'), 'hidden\n');
  const { uid, gid } = await userIds();
  await execa('chown', ['-R', `${uid}:${gid}`, src]);
  fs.chmodSync(path.join(src, 'sub/secret'), 0o000);
  const r = await ctrUser(['build', ctx.out, src]);
  assert.is(r.stderr, `ctr: error: cannot read ${src}/sub/secret: Permission denied\n`);
  assert.is(r.code, 255);
  assertClean(ctx.dir, []);
  fs.rmSync(src, { recursive: true, force: true });
});

Errors('source :: a file that is no image, tarball or definition', async () => {
  const p = writeDef('notes.txt', 'just some text\n');
  const r = await ctrUser(['build', ctx.out, p]);
  assert.is(r.stderr, `ctr: error: build source ${p}: not a directory, SIF, SquashFS image, tarball or definition file\n`);
  assert.is(r.code, 255);
  assertClean(ctx.dir, []);
});

Errors('tarball :: an unreadable tarball', async () => {
  const p = path.join(ctx.dir, 'locked.tar');
  await execa('tar', ['-C', await busyboxDir(), '-cf', p, '.']);
  fs.chmodSync(p, 0o000);
  const r = await ctrUser(['build', ctx.out, p]);
  assert.is(r.stderr, `ctr: error: build source ${p}: Permission denied\n`);
  assert.is(r.code, 255);
  assertClean(ctx.dir, []);
  fs.rmSync(p);
});

Errors('tarball :: truncated gzip, truncated zstd, truncated tar, and a gzip that holds no tar', async () => {
  const tree = await busyboxDir();
  const whole = path.join(ctx.dir, 'whole.tar');
  await execa('tar', ['-C', tree, '-cf', whole, '.']);
  const cut = (name: string, data: Buffer) => { const p = path.join(ctx.dir, name); fs.writeFileSync(p, data); fs.chmodSync(p, 0o644); return p; };
  const tar = fs.readFileSync(whole);
  const gz = (await execa('gzip', ['-c', whole], { encoding: 'buffer' })).stdout as Uint8Array;
  const zst = (await execa('zstd', ['-q', '-c', whole], { encoding: 'buffer' })).stdout as Uint8Array;
  const cases: Array<[string, string]> = [
    [cut('cut.tgz', Buffer.from(gz).subarray(0, gz.length >> 1)), 'corrupt gzip data: unexpected end of file'],
    [cut('cut.tar.zst', Buffer.from(zst).subarray(0, zst.length >> 1)), 'corrupt zstd data: unexpected EOF'],
    [cut('cut.tar', tar.subarray(0, 4096 + 700)), 'truncated tar archive (unexpected end of data)'],
    [cut('text.gz', (await execa('gzip', ['-c'], { input: 'not a tar\n', encoding: 'buffer' })).stdout as Buffer), 'not a tar archive (10 bytes of data)'],
  ];
  for (const [p, why] of cases) {
    const r = await ctrUser(['build', ctx.out, p]);
    assert.is(r.stderr, `ctr: error: cannot read tarball ${p}: ${why}\n`, p);
    assert.is(r.code, 255);
    assertClean(ctx.dir, []);
  }
  fs.rmSync(whole);
});

Errors('tarball :: absolute and ".." member names are refused', async () => {
  for (const [name, member, why] of [['abs.tar', '/etc/evil', 'is an absolute path'], ['up.tar', 'a/../../evil', "contains '..'"]]) {
    const p = path.join(ctx.dir, name);
    await run('python3', ['-c', `import tarfile,io\nt=tarfile.open(${JSON.stringify(p)},'w')\ni=tarfile.TarInfo('ok');t.addfile(i,io.BytesIO(b''))\ni=tarfile.TarInfo(${JSON.stringify(member)});i.size=2;t.addfile(i,io.BytesIO(b'hi'))\nt.close()`]);
    fs.chmodSync(p, 0o644);
    const r = await ctrUser(['build', ctx.out, p]);
    assert.is(r.stderr, `ctr: error: tarball ${p}: entry ${JSON.stringify(member)} ${why}\n`);
    assert.is(r.code, 255);
    assertClean(ctx.dir, []);
  }
});

Errors('output :: an existing OUT is refused without --force and replaced with it', async () => {
  const src = await busyboxDir();
  fs.writeFileSync(ctx.out, 'old contents\n');
  const { uid, gid } = await userIds();
  fs.chownSync(ctx.out, uid, gid);
  const r = await ctrUser(['build', ctx.out, src]);
  assert.is(r.stderr, `ctr: error: output ${ctx.out}: already exists (use --force to overwrite)\n`);
  assert.is(r.code, 255);
  assert.is(fs.readFileSync(ctx.out, 'utf8'), 'old contents\n');
  const f = await ctrUser(['build', '-q', '--force', ctx.out, src]);
  assert.is(f.stderr, '');
  assert.is(f.code, 0);
  assert.is(fs.readFileSync(ctx.out).subarray(32, 42).toString('latin1'), 'SIF_MAGIC\0');
  assertClean(ctx.dir, ['out.sif']);
});

Errors('output :: a full disk is reported and the partial image removed', async () => {
  const mnt = path.join(ctx.dir, 'small');
  const src = path.join(ctx.dir, 'big-tree');
  fs.mkdirSync(mnt);
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'random'), bytes(4 * 1024 * 1024));
  await execa('chmod', ['-R', 'a+rX', src]);
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0777', 'tmpfs', mnt]);
  try {
    const r = await ctrUser(['build', `${mnt}/out.sif`, src]);
    assert.is(r.stderr, `ctr: error: cannot write ${mnt}/out.sif: No space left on device\n`);
    assert.is(r.code, 255);
    assert.equal(files(mnt), []);
  } finally {
    await execa('umount', [mnt]);
    fs.rmSync(src, { recursive: true, force: true });
  }
});

Errors('definition :: a malformed file names the line and the reason', async () => {
  const p = writeDef('bad.def', 'Bootstrap: busybox\n\n%post\n    true\n%bogus\n    x\n');
  const r = await ctrUser(['build', ctx.out, p]);
  assert.is(r.stderr, `ctr: error: definition file ${p}: line 5: unknown section %bogus\n`);
  assert.is(r.code, 255);
  const h = writeDef('bad-header.def', 'Bootstrap: busybox\nthis is not a header\n');
  const r2 = await ctrUser(['build', ctx.out, h]);
  assert.is(r2.stderr, `ctr: error: definition file ${h}: line 2: expected "Key: value" in the header, got "this is not a header"\n`);
  assertClean(ctx.dir, []);
});

Errors('definition :: a failing %post gives its exit code and leaves nothing', async () => {
  const p = writeDef('fail.def', 'Bootstrap: busybox\n\n%post\n    echo about to fail\n    exit 3\n');
  const r = await ctrUser(['build', ctx.out, p]);
  assert.is(r.stdout, 'about to fail\n');
  assert.is(r.stderr, 'ctr: error: %post failed: exit code 3\n');
  assert.is(r.code, 255);
  assertClean(ctx.dir, []);
});

for (const step of [false, true]) {
  Errors(`interrupt :: SIGINT during %post exits 130 and leaves nothing${step ? ' (in a job step: %post is no rank, it keeps its PID namespace)' : ''}`, async () => {
    const p = writeDef('slow.def', 'Bootstrap: busybox\n\n%post\n    sleep 60\n');
    const stepEnv = step ? ['SLURM_JOB_ID=4242', 'SLURM_STEP_ID=0'] : [];
    const child = execa('runuser', ['-u', TEST_USER, '--', '/usr/bin/env', '-u', 'FORCE_COLOR', ...stepEnv, process.execPath, CTR_MAIN, 'build', ctx.out, p],
      { reject: false, stripFinalNewline: false, detached: true });
    sessions.add(child.pid!);
    // Wait for %post's sleep, then Ctrl-C ctr itself (the node process, not runuser).
    let ctrPid: number | undefined;
    for (let i = 0; i < 200 && !ctrPid; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const ps = await execa('ps', ['-s', String(child.pid), '-o', 'pid=,args='], { reject: false });
      const lines = ps.stdout.split('\n').map((l) => l.trim());
      if (lines.some((l) => / sleep 60$/.test(l))) {
        // ctr itself: node running main.js (runuser's and env's own lines name it too).
        const line = lines.find((l) => l.split(/\s+/)[1] === process.execPath && l.includes(' build '));
        ctrPid = line ? Number(line.split(/\s+/)[0]) : undefined;
      }
    }
    assert.ok(ctrPid, '%post started');
    process.kill(ctrPid!, 'SIGINT');
    const r = await child;
    assert.is(r.stderr, 'ctr: error: build interrupted (SIGINT)\n');
    assert.is(r.exitCode, 130);
    assert.equal(await ownLeftovers(), [], 'launcher or %post still running');
    assertClean(ctx.dir, []);
  });
}

Errors('as root :: a missing source is reported the same way', async () => {
  const r = await ctrRoot(['build', ctx.out, '/nonexistent-source']);
  assert.is(r.stderr, 'ctr: error: build source /nonexistent-source: No such file or directory\n');
  assert.is(r.code, 255);
});

Errors.run();
