// ctr build from a directory and from tarballs of it (tar, gzip, zstd): the image's
// SquashFS partition, dumped by the reference siftool, has the same content as
// mksquashfs -all-root makes from the same tree (sqfsdiff, timestamps included), and
// unsquashfs lists the same entries at the partition's offset. Rebuilds are identical.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BIG, EPOCH, LONG, ctrRoot, dumpPartition, makeContentTree, run, scratch, sifObjects } from './fixture.js';

const ctx = { dir: '', src: '', ref: '', tars: {} as Record<string, string>, sifs: {} as Record<string, string> };
const SDE = { SOURCE_DATE_EPOCH: String(EPOCH) };

async function listing(img: string, offset = 0): Promise<string> {
  const r = await run('unsquashfs', [...(offset ? ['-o', String(offset)] : []), '-lln', img]);
  assert.is(r.code, 0, r.stderr);
  return r.stdout;
}

const Content = suite('ctr build content');

Content.before(async () => {
  ctx.dir = scratch('build-content');
  ctx.src = path.join(ctx.dir, 'src');
  fs.mkdirSync(ctx.src);
  await makeContentTree(ctx.src);
  ctx.ref = path.join(ctx.dir, 'ref.sqfs');
  const mk = await run('mksquashfs', [ctx.src, ctx.ref, '-all-root', '-comp', 'zstd', '-noappend', '-quiet', '-no-progress',
    '-all-time', String(EPOCH), '-mkfs-time', String(EPOCH)]);
  assert.is(mk.code, 0, mk.stderr);
  // GNU format (long names through ././@LongLink), pax (path headers), and zstd.
  const t = (name: string) => path.join(ctx.dir, name);
  ctx.tars = { tar: t('root.tar'), tgz: t('root.tgz'), zst: t('root.tar.zst') };
  for (const [cmd, args] of [
    ['tar', ['-C', ctx.src, '--numeric-owner', '--format=gnu', '-cf', ctx.tars.tar, '.']],
    ['tar', ['-C', ctx.src, '--numeric-owner', '--format=pax', '-czf', ctx.tars.tgz, '.']],
    ['sh', ['-c', `tar -C '${ctx.src}' --numeric-owner -cf - . | zstd -q -o '${ctx.tars.zst}'`]],
  ] as const) {
    const r = await run(cmd, args);
    assert.is(r.code, 0, `${cmd}: ${r.stderr}`);
  }
  for (const [kind, source] of [['dir', ctx.src], ...Object.entries(ctx.tars)]) {
    ctx.sifs[kind] = t(`${kind}.sif`);
    const r = await ctrRoot(['build', '-q', ctx.sifs[kind], source], SDE);
    assert.is(r.stderr, '', `build from ${kind}`);
    assert.is(r.code, 0);
  }
});

Content.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

for (const kind of ['dir', 'tar', 'tgz', 'zst']) {
  Content(`same content :: ${kind} source, sqfsdiff -T against mksquashfs -all-root finds nothing`, async () => {
    const part = path.join(ctx.dir, `${kind}.part`);
    await dumpPartition(ctx.sifs[kind], part);
    const r = await run('sqfsdiff', ['-T', '-a', ctx.ref, '-b', part]);
    assert.is(r.stdout + r.stderr, '');
    assert.is(r.code, 0);
    fs.rmSync(part);
  });

  Content(`same content :: ${kind} source, unsquashfs -lln -o OFFSET lists what mksquashfs lists`, async () => {
    const [part] = (await sifObjects(ctx.sifs[kind])).filter((o) => o.type.startsWith('FS'));
    assert.is(await listing(ctx.sifs[kind], part.start), await listing(ctx.ref));
  });
}

Content('same content :: the listing has every kind of entry, with its mode, owner, size and device numbers', async () => {
  const [part] = (await sifObjects(ctx.sifs.tar)).filter((o) => o.type.startsWith('FS'));
  const lines = (await listing(ctx.sifs.tar, part.start)).split('\n');
  const entry = (p: string) => {
    const l = lines.find((x) => x.endsWith(`squashfs-root/${p}`) || x.includes(`squashfs-root/${p} -> `));
    assert.ok(l, `${p} listed`);
    return l!.replace(/\s+/g, ' ').replace(/ \d{4}-\d\d-\d\d \d\d:\d\d /, ' ');
  };
  assert.is(entry('hello.txt'), '-rw-r--r-- 0/0 13 squashfs-root/hello.txt');
  assert.is(entry('etc/deep/hard-hello'), '-rw-r--r-- 0/0 13 squashfs-root/etc/deep/hard-hello');
  assert.is(entry('etc/secret'), '-rw------- 0/0 10 squashfs-root/etc/secret');
  assert.is(entry('bin/suid'), '-rwsr-xr-x 0/0 15 squashfs-root/bin/suid');
  assert.is(entry('tmp'), 'drwxrwxrwt 0/0 3 squashfs-root/tmp');
  assert.is(entry('empty'), 'drwxr-xr-x 0/0 3 squashfs-root/empty');
  assert.is(entry('link-to-hello'), 'lrwxrwxrwx 0/0 9 squashfs-root/link-to-hello -> hello.txt');
  assert.is(entry('dangling'), 'lrwxrwxrwx 0/0 21 squashfs-root/dangling -> /nonexistent/dangling');
  assert.is(entry('null'), 'crw-r--r-- 0/0 1, 3 squashfs-root/null');
  // 259:300 in dev_t's 32-bit encoding, as mksquashfs stores it too; unsquashfs decodes
  // it as major = dev >> 8, minor = dev & 0xff.
  assert.is(entry('blk'), 'brw-r--r-- 0/0 4355, 44 squashfs-root/blk');
  assert.is(entry('fifo'), 'prw-r--r-- 0/0 0 squashfs-root/fifo');
  assert.is(entry(LONG), `-rw-r--r-- 0/0 10 squashfs-root/${LONG}`);
  assert.is(entry('large'), `-rw-r--r-- 0/0 ${BIG} squashfs-root/large`);
  assert.is(entry('sparse'), `-rw-r--r-- 0/0 ${8 * 1024 * 1024} squashfs-root/sparse`);
  assert.ok(lines.some((l) => l.endsWith(`${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(60)}`)), 'long path listed');
});

Content('partition :: starts on a 4 KiB boundary and the SIF ends with it', async () => {
  for (const sif of Object.values(ctx.sifs)) {
    const objs = await sifObjects(sif);
    const part = objs.find((o) => o.type.startsWith('FS'))!;
    assert.is(part.start % 4096, 0, sif);
    assert.is(part.end, fs.statSync(sif).size, sif);
  }
});

Content('reproducible :: a rebuild under SOURCE_DATE_EPOCH is byte-identical (directory and every tarball)', async () => {
  for (const [kind, source] of [['dir', ctx.src], ...Object.entries(ctx.tars)]) {
    const again = path.join(ctx.dir, `${kind}.again.sif`);
    const r = await ctrRoot(['build', again, source], SDE);
    assert.is(r.code, 0, r.stderr);
    const same = await run('cmp', [ctx.sifs[kind], again]);
    assert.is(same.stdout, '', kind);
    assert.is(same.code, 0, kind);
    fs.rmSync(again);
  }
});

Content.run();
