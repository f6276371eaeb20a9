import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CtrError } from '../../src/errors.js';
import { writeSquashfsFromDir } from '../../src/squashfs/fromdir.js';
import { SquashfsReader } from '../../src/squashfs/read.js';
import { SquashfsWriter } from '../../src/squashfs/write.js';
import { LONG_NAME, MTIME, bytes, makeSourceTree, run, scratch } from './fixture.js';

// Helpers

const ctx = { dir: '', src: '', ours: '', mk: '', gen: '', cleanup: () => {} };

async function listing(img: string, offset?: number): Promise<string> {
  const r = await run('unsquashfs', [...(offset ? ['-o', String(offset)] : []), '-lln', img]);
  assert.is(r.code, 0, r.out);
  return r.out;
}

async function withMount<T>(img: string, offset: number, fn: (mnt: string) => Promise<T> | T): Promise<T> {
  const mnt = fs.mkdtempSync(path.join(ctx.dir, 'mnt-'));
  const m = await run('squashfuse_ll', [...(offset ? ['-o', `offset=${offset}`] : []), img, mnt]);
  assert.is(m.code, 0, `squashfuse_ll: ${m.out}`);
  try {
    return await fn(mnt);
  } finally {
    await run('fusermount3', ['-u', mnt]);
  }
}

/** Every regular file under `src` reads back the same under `mnt`. */
function compareFiles(src: string, mnt: string): number {
  let n = 0;
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(src, rel))) {
      const r = path.join(rel, name);
      const st = fs.lstatSync(path.join(src, r));
      if (st.isDirectory()) walk(r);
      else if (st.isFile()) {
        assert.ok(fs.readFileSync(path.join(mnt, r)).equals(fs.readFileSync(path.join(src, r))), `contents of ${r}`);
        n++;
      }
    }
  };
  walk('');
  return n;
}

// writeSquashfsFromDir

const fromDir = suite('writeSquashfsFromDir');

fromDir.before(async () => {
  const s = scratch('sqfs-write');
  Object.assign(ctx, {
    dir: s.dir, cleanup: s.cleanup, src: path.join(s.dir, 'src'),
    ours: path.join(s.dir, 'ours.sqfs'), mk: path.join(s.dir, 'mk.sqfs'), gen: path.join(s.dir, 'gen.sqfs'),
  });
  fs.mkdirSync(ctx.src);
  await makeSourceTree(ctx.src);
  await writeSquashfsFromDir(ctx.src, ctx.ours, { compressor: 'zstd', mtime: MTIME });
  const mk = await run('mksquashfs', [ctx.src, ctx.mk, '-all-root', '-comp', 'zstd', '-noappend', '-quiet', '-no-progress',
    '-all-time', String(MTIME), '-mkfs-time', String(MTIME)]);
  assert.is(mk.code, 0, mk.out);
  const gen = await run('gensquashfs', ['-D', ctx.src, '-c', 'zstd', '--all-root', '-d', `mtime=${MTIME}`, '-q', '-f', ctx.gen]);
  assert.is(gen.code, 0, gen.out);
});

fromDir.after(() => ctx.cleanup());

fromDir('content :: sqfsdiff finds no difference from mksquashfs -all-root, timestamps included', async () => {
  const r = await run('sqfsdiff', ['-T', '-a', ctx.mk, '-b', ctx.ours]);
  assert.is(r.out, '');
  assert.is(r.code, 0);
});

fromDir('content :: sqfsdiff against gensquashfs differs only in the hard-linked inode type', async () => {
  // gensquashfs 1.2.0 stores hard-linked files as basic inodes, which have no link count;
  // we store extended ones with nlink = 2, as mksquashfs does.
  const r = await run('sqfsdiff', ['-T', '-a', ctx.gen, '-b', ctx.ours]);
  const lines = r.out.split('\n').filter(Boolean).sort();
  assert.equal(lines, ['/etc/hard-hello has an extended type', '/hello.txt has an extended type']);
});

fromDir('listing :: unsquashfs -lln is the same as for mksquashfs', async () => {
  assert.is(await listing(ctx.ours), await listing(ctx.mk));
});

fromDir('listing :: hard links share an inode with nlink 2, directories have 2 + subdirectories', () => {
  const r = SquashfsReader.open(ctx.ours);
  try {
    const a = r.stat('hello.txt'), b = r.stat('etc/hard-hello');
    assert.is(a.inode, b.inode);
    assert.is(a.nlink, 2);
    assert.is(r.stat('/').nlink, 2 + 3); // etc, empty-dir, .singularity.d
    assert.is(r.stat('etc').nlink, 2 + 1);
  } finally {
    r.close();
  }
});

fromDir('reproducible :: same input and fixed mtime give identical bytes', async () => {
  const again = path.join(ctx.dir, 'again.sqfs');
  await writeSquashfsFromDir(ctx.src, again, { compressor: 'zstd', mtime: MTIME, workers: 1 });
  assert.ok(fs.readFileSync(again).equals(fs.readFileSync(ctx.ours)), 'images differ');
});

fromDir('reproducible :: SOURCE_DATE_EPOCH sets every timestamp and the super block time', async () => {
  const img = path.join(ctx.dir, 'sde.sqfs');
  const saved = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = '1234567890';
  try {
    await writeSquashfsFromDir(ctx.src, img, { compressor: 'gzip' });
  } finally {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  }
  assert.is(fs.readFileSync(img).readUInt32LE(8), 1234567890);
  const r = SquashfsReader.open(img);
  const times = new Set<number>();
  r.walk((_p, st) => times.add(st.mtime));
  r.close();
  assert.equal([...times], [1234567890]);
});

fromDir('offset :: an image written at an offset leaves the prefix alone and reads back everywhere', async () => {
  const host = path.join(ctx.dir, 'host.bin');
  const offset = 65536;
  const prefix = bytes(offset, 3);
  fs.writeFileSync(host, prefix);
  const { bytes: size } = await writeSquashfsFromDir(ctx.src, host, { compressor: 'zstd', mtime: MTIME, offset });
  const all = fs.readFileSync(host);
  assert.is(all.length, offset + size);
  assert.ok(all.subarray(0, offset).equals(prefix), 'prefix overwritten');
  assert.is(await listing(host, offset), await listing(ctx.mk));
  const r = SquashfsReader.open(host, { offset });
  try {
    assert.ok(r.readFile('big.bin').equals(fs.readFileSync(path.join(ctx.src, 'big.bin'))));
  } finally {
    r.close();
  }
  await withMount(host, offset, (mnt) => {
    assert.is(fs.readFileSync(path.join(mnt, 'hello.txt'), 'utf8'), 'hello, world\n');
  });
});

fromDir('squashfuse_ll :: every regular file reads back the same bytes', async () => {
  const n = await withMount(ctx.ours, 0, (mnt) => {
    assert.is(fs.readlinkSync(path.join(mnt, 'link-to-hello')), 'hello.txt');
    assert.ok(fs.statSync(path.join(mnt, 'null-dev')).isCharacterDevice());
    assert.ok(fs.lstatSync(path.join(mnt, 'fifo')).isFIFO());
    assert.equal(fs.readdirSync(path.join(mnt, 'empty-dir')), []);
    return compareFiles(ctx.src, mnt);
  });
  assert.ok(n >= 12, `compared ${n} files`);
});

fromDir('compressors :: gzip, xz, lz4 (and lzo where built in) images read back', async () => {
  for (const compressor of ['gzip', 'xz', 'lzo', 'lz4'] as const) {
    const img = path.join(ctx.dir, `${compressor}.sqfs`);
    try {
      await writeSquashfsFromDir(ctx.src, img, { compressor, mtime: MTIME, blockSize: 65536, level: compressor === 'lz4' ? undefined : 1 });
    } catch (err) {
      // Debian builds libsquashfs without LZO.
      assert.is(compressor, 'lzo', String(err));
      assert.is((err as Error).message, `cannot create SquashFS image ${img}: compressor lzo is not built into this libsquashfs`);
      continue;
    }
    // unsquashfs 4.5.1 calls libsquashfs' lz4 images (gensquashfs' own too) corrupt; sqfsdiff reads them.
    if (compressor !== 'lz4') assert.is(await listing(img), await listing(ctx.mk), compressor);
    const r = await run('sqfsdiff', ['-a', ctx.mk, '-b', img]);
    assert.is(r.code, 0, `${compressor}: ${r.out}`);
  }
});

fromDir('errors :: a source file that cannot be read is named', async () => {
  const w = new SquashfsWriter(path.join(ctx.dir, 'err.sqfs'), { compressor: 'gzip' });
  const missing = path.join(ctx.dir, 'no-such-file');
  try {
    await w.add({ path: 'x', type: 'file', mode: 0o644, data: { path: missing } });
    assert.unreachable('add() should have thrown');
  } catch (err) {
    assert.instance(err, CtrError);
    assert.is((err as Error).message, `cannot read ${missing}: No such file or directory`);
  } finally {
    w.close();
  }
});

fromDir('errors :: a source that is not a directory', async () => {
  const f = path.join(ctx.src, 'hello.txt');
  try {
    await writeSquashfsFromDir(f, path.join(ctx.dir, 'err2.sqfs'), { compressor: 'gzip' });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, CtrError);
    assert.is((err as Error).message, `cannot read ${f}: Not a directory`);
  }
});

fromDir('errors :: bad options are refused before anything is written', () => {
  assert.throws(() => new SquashfsWriter(path.join(ctx.dir, 'e.sqfs'), { compressor: 'zstd', blockSize: 3000 }), /block size 3000/);
  assert.throws(() => new SquashfsWriter(path.join(ctx.dir, 'e.sqfs'), { compressor: 'brotli' as 'zstd' }), /unknown compressor/);
});

fromDir.run();

// SquashfsWriter fed like a tar stream

const stream = suite('SquashfsWriter.add');
const sctx = { dir: '', cleanup: () => {} };
stream.before(() => {
  Object.assign(sctx, scratch('sqfs-stream'));
});
stream.after(() => sctx.cleanup());

stream('order :: entries in any order, implicit parents, streamed data, hard links, replacement', async () => {
  const img = path.join(sctx.dir, 'tar.sqfs');
  const w = new SquashfsWriter(img, { compressor: 'zstd', mtime: MTIME, blockSize: 4096 });
  const big = bytes(100_000, 9);
  const chunks = [big.subarray(0, 1000), big.subarray(1000, 50_000), big.subarray(50_000)];
  await w.add({ path: './usr/lib/data.bin', type: 'file', mode: 0o600, uid: 1000, gid: 100, data: Readable.from(chunks) });
  await w.add({ path: 'usr/bin/tool', type: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\n') });
  await w.add({ path: 'usr', type: 'dir', mode: 0o700 });
  await w.add({ path: 'usr/lib/link.bin', type: 'hardlink', mode: 0, target: 'usr/lib/data.bin' });
  await w.add({ path: 'usr/bin/tool', type: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\necho v2\n') });
  await w.add({ path: 'usr/sbin', type: 'symlink', mode: 0o777, target: 'bin' });
  await w.add({ path: 'dev/null', type: 'char', mode: 0o666, rdev: 259 });
  await w.add({ path: `d/${LONG_NAME}`, type: 'fifo', mode: 0o644 });
  await w.add({ path: 'x', type: 'file', mode: 0o644, xattrs: { 'user.note': 'hi' } });
  await w.finish();

  const r = SquashfsReader.open(img);
  try {
    assert.ok(r.readFile('usr/lib/data.bin').equals(big));
    assert.ok(r.readFile('usr/lib/link.bin').equals(big));
    const st = r.stat('usr/lib/data.bin');
    assert.equal([st.uid, st.gid, st.mode, st.nlink, st.mtime], [1000, 100, 0o600, 2, MTIME]);
    assert.is(r.stat('usr').mode, 0o700);
    assert.is(r.stat('usr/lib').mode, 0o755);
    assert.is(r.readFile('usr/bin/tool').toString(), '#!/bin/sh\necho v2\n');
    assert.is(r.readlink('usr/sbin'), 'bin');
    assert.is(r.stat('dev/null').rdev, 259);
    assert.is(r.stat(`d/${LONG_NAME}`).type, 'fifo');
    assert.equal(r.readdir('usr').map((e) => e.name), ['bin', 'lib', 'sbin']);
  } finally {
    r.close();
  }
  const x = await run('unsquashfs', ['-lls', img]);
  assert.is(x.code, 0, x.out);
});

stream('order :: entries sorted by UTF-8 bytes, also for names past U+D800 (where UTF-16 order differs)', async () => {
  const img = path.join(sctx.dir, 'names.sqfs');
  const w = new SquashfsWriter(img, { compressor: 'gzip', mtime: MTIME });
  // U+FF21 is EF BC A1 in UTF-8 but FF21 in UTF-16; U+1F600 is F0 9F 98 80, and D83D DE00.
  const names = ['\uff21', '\u{1F600}', 'b', 'B', '\u00e9', 'a\uff21', 'a\u{1F600}'];
  for (const n of names) w.addSync({ path: `d/${n}`, type: 'file', mode: 0o644, data: Buffer.from(n) });
  await w.finish();
  const r = SquashfsReader.open(img);
  try {
    const bytesOrder = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.equal(r.readdir('d').map((e) => e.name), bytesOrder);
    for (const n of names) assert.is(r.readFile(`d/${n}`).toString(), n);
  } finally {
    r.close();
  }
  const x = await run('sqfsdiff', ['-a', img, '-b', img]);
  assert.is(x.code, 0, x.out);
});

stream('links :: implicit parent directories count in their parent\'s link count', async () => {
  const img = path.join(sctx.dir, 'implicit.sqfs');
  const w = new SquashfsWriter(img, { compressor: 'gzip', mtime: MTIME });
  await w.add({ path: 'a/b/c', type: 'file', mode: 0o644, data: Buffer.from('c') });
  await w.add({ path: 'a', type: 'dir', mode: 0o700 });
  await w.finish();
  const r = SquashfsReader.open(img);
  try {
    assert.equal([r.stat('/').nlink, r.stat('a').nlink, r.stat('a/b').nlink], [3, 3, 2]);
    assert.is(r.stat('a').mode, 0o700);
  } finally {
    r.close();
  }
});

stream('addChild :: names are one path component; the parent must be a directory', () => {
  const w = new SquashfsWriter(path.join(sctx.dir, 'child.sqfs'), { compressor: 'gzip' });
  try {
    assert.throws(() => w.addChild(w.root, 'a/b', 'dir', 0o755, 0, 0, 0), /contains '\/'/);
    assert.throws(() => w.addChild(w.root, '..', 'dir', 0o755, 0, 0, 0), /invalid name/);
    assert.throws(() => w.addChild(w.root, 'n'.repeat(256), 'fifo', 0o644, 0, 0, 0), /longer than 255 bytes/);
    const f = w.addChild(w.root, 'f', 'file', 0o644, 0, 0, 0);
    assert.throws(() => w.addChild(f, 'x', 'fifo', 0o644, 0, 0, 0), /\/f is not a directory/);
  } finally {
    w.close();
  }
});

stream('errors :: paths with .. and hard links to nothing are refused', async () => {
  const w = new SquashfsWriter(path.join(sctx.dir, 'bad.sqfs'), { compressor: 'gzip' });
  try {
    let msg = '';
    try { await w.add({ path: 'a/../../etc', type: 'dir', mode: 0o755 }); } catch (e) { msg = (e as Error).message; }
    assert.is(msg, `cannot add "a/../../etc" to the image: path contains '..'`);
    msg = '';
    try { await w.add({ path: 'l', type: 'hardlink', mode: 0, target: 'nope' }); } catch (e) { msg = (e as Error).message; }
    assert.is(msg, 'cannot add hard link /l to the image: target nope is not in the image');
  } finally {
    w.close();
  }
});

stream.run();
