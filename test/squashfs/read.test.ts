import { entryType } from '../../src/squashfs/fromdir.js';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CtrError } from '../../src/errors.js';
import { type ImageStat, SquashfsReader } from '../../src/squashfs/read.js';
import { LONG_NAME, bytes, makeSourceTree, run, scratch } from './fixture.js';

// Helpers

const ctx = { dir: '', src: '', gen: '', cleanup: () => {} };

const typeOf = (st: fs.Stats): ImageStat['type'] => entryType(st);

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, CtrError);
    return (err as Error).message;
  }
  return assert.unreachable('no error') as never;
}

const reader = suite('SquashfsReader');

reader.before(async () => {
  const s = scratch('sqfs-read');
  Object.assign(ctx, { dir: s.dir, cleanup: s.cleanup, src: path.join(s.dir, 'src'), gen: path.join(s.dir, 'gen.sqfs') });
  fs.mkdirSync(ctx.src);
  await makeSourceTree(ctx.src);
  const gen = await run('gensquashfs', ['-D', ctx.src, '-c', 'xz', '-k', '-q', '-f', ctx.gen]);
  assert.is(gen.code, 0, gen.out);
});

reader.after(() => ctx.cleanup());

reader('walk :: a gensquashfs image matches the source tree', () => {
  const r = SquashfsReader.open(ctx.gen);
  const seen: string[] = [];
  try {
    r.walk((p, st) => {
      seen.push(p);
      if (p === '/') return; // gensquashfs gives the root default attributes
      const host = fs.lstatSync(path.join(ctx.src, p));
      assert.is(st.type, typeOf(host), p);
      assert.is(st.mode, host.mode & 0o7777, p);
      assert.equal([st.uid, st.gid], [host.uid, host.gid], p);
      assert.is(st.mtime, Math.floor(host.mtimeMs / 1000), p);
      if (st.type === 'file') assert.is(st.size, host.size, p);
      if (st.type === 'symlink') assert.is(st.target, fs.readlinkSync(path.join(ctx.src, p)), p);
      if (st.type === 'char') assert.is(st.rdev, host.rdev, p);
    });
  } finally {
    r.close();
  }
  const count = (dir: string): number =>
    fs.readdirSync(dir).reduce((n, name) => {
      const p = path.join(dir, name);
      return n + 1 + (fs.lstatSync(p).isDirectory() ? count(p) : 0);
    }, 0);
  assert.is(seen.length, count(ctx.src) + 1);
  assert.ok(seen.includes(`/${LONG_NAME}`));
});

reader('readFile :: every regular file has the source bytes (big, sparse, empty, long name)', () => {
  const r = SquashfsReader.open(ctx.gen);
  try {
    for (const p of ['hello.txt', 'empty', 'big.bin', 'sparse.img', LONG_NAME, 'etc/hard-hello', 'etc/deep/er/config']) {
      assert.ok(r.readFile(p).equals(fs.readFileSync(path.join(ctx.src, p))), p);
    }
    assert.ok(r.readFile('sparse.img').subarray(20 * 1024 * 1024, 20 * 1024 * 1024 + 4096).equals(bytes(4096, 7)));
  } finally {
    r.close();
  }
});

reader('readdir :: entries in byte order, without dot entries', () => {
  const r = SquashfsReader.open(ctx.gen);
  try {
    const names = r.readdir('/').map((e) => e.name);
    const expected = fs.readdirSync(ctx.src).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.equal(names, expected);
    assert.ok(names.indexOf('B-upper') < names.indexOf('a-lower'));
    assert.equal(r.readdir('empty-dir'), []);
    assert.equal(r.readdir('etc'), [{ name: 'deep', type: 'dir' }, { name: 'hard-hello', type: 'file' }]);
  } finally {
    r.close();
  }
});

reader('inspect :: runscript, env scripts and labels from /.singularity.d', () => {
  const r = SquashfsReader.open(ctx.gen);
  try {
    assert.is(r.readFile('/.singularity.d/runscript').toString(), '#!/bin/sh\nexec "$@"\n');
    assert.is(r.stat('/.singularity.d/runscript').mode, 0o755);
    const env = r.readdir('/.singularity.d/env').filter((e) => e.name.endsWith('.sh')).map((e) => e.name);
    assert.equal(env, ['90-environment.sh']);
    assert.equal(JSON.parse(r.readFile('/.singularity.d/labels.json').toString()), { 'org.label-schema.name': 't' });
  } finally {
    r.close();
  }
});

reader('offset :: a mksquashfs image behind a prefix opens with {offset}', async () => {
  const img = path.join(ctx.dir, 'mk.sqfs');
  const mk = await run('mksquashfs', [ctx.src, img, '-comp', 'gzip', '-noappend', '-quiet', '-no-progress']);
  assert.is(mk.code, 0, mk.out);
  const host = path.join(ctx.dir, 'host.sif');
  const offset = 12288;
  fs.writeFileSync(host, Buffer.concat([bytes(offset, 5), fs.readFileSync(img)]));
  const r = SquashfsReader.open(host, { offset });
  try {
    assert.is(r.readFile('hello.txt').toString(), 'hello, world\n');
    assert.is(r.readlink('link-to-hello'), 'hello.txt');
  } finally {
    r.close();
  }
  assert.match(errorOf(() => SquashfsReader.open(host)), `cannot open SquashFS image ${host}: not a SquashFS image (bad magic)`);
});

reader('errors :: missing paths, wrong types and non-images are named', () => {
  const r = SquashfsReader.open(ctx.gen);
  try {
    assert.is(errorOf(() => r.stat('etc/nope')), `cannot find /etc/nope in ${ctx.gen}: No such file or directory`);
    assert.is(errorOf(() => r.readFile('etc')), `cannot read /etc in ${ctx.gen}: Is a directory`);
    assert.is(errorOf(() => r.readdir('hello.txt')), `cannot list /hello.txt in ${ctx.gen}: Not a directory`);
    assert.is(errorOf(() => r.readlink('hello.txt')), `cannot read link /hello.txt in ${ctx.gen}: not a symbolic link`);
    assert.match(errorOf(() => r.stat('hello.txt/x')), `cannot find /hello.txt/x in ${ctx.gen}`);
  } finally {
    r.close();
  }
  const missing = path.join(ctx.dir, 'missing.sqfs');
  assert.is(errorOf(() => SquashfsReader.open(missing)), `cannot open SquashFS image ${missing}: No such file or directory`);
  const empty = path.join(ctx.dir, 'empty.sqfs');
  fs.writeFileSync(empty, '');
  assert.match(errorOf(() => SquashfsReader.open(empty)), `cannot open SquashFS image ${empty}:`);
});

reader.run();
