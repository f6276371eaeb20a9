import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CtrError } from '../../src/errors.js';
import { parseSif, primaryPartition, readObject, readSif } from '../../src/sif/read.js';
import {
  REF_IMAGES, asSiftoolRow, makeSquashfs, parseSiftoolHeader, parseSiftoolList, scratch, siftool,
} from './helpers.js';
import { ctrError } from '../helpers/errors.js';

/** Run fn, expect a CtrError, return its `why`. */
const whyOf = (fn: () => unknown): string => ctrError(fn).why;

async function whyOfAsync(p: Promise<unknown>): Promise<CtrError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, CtrError);
    return err as CtrError;
  }
  assert.unreachable('expected a CtrError');
  throw new Error('unreachable');
}

// ---------------------------------------------------------------------------------------------
const reference = suite('readSif reference images');

const images = readdirSync(REF_IMAGES).filter((f) => f.endsWith('.sif')).sort();

reference('images :: there are reference images to test against', () => {
  assert.ok(images.length >= 10, `found ${images.length} images in ${REF_IMAGES}`);
});

for (const name of images) {
  reference(`descriptors match siftool list :: ${name}`, async () => {
    const path = join(REF_IMAGES, name);
    const img = await readSif(path);
    const expected = parseSiftoolList(await siftool('list', path));
    assert.equal(img.descriptors.map(asSiftoolRow), expected);
  });

  reference(`header matches siftool header :: ${name}`, async () => {
    const path = join(REF_IMAGES, name);
    const img = await readSif(path);
    const h = parseSiftoolHeader(await siftool('header', path));
    assert.is(img.header.version, h['Version']);
    assert.is(String(img.header.descriptorsFree), h['Descriptors Free']);
    assert.is(String(img.header.descriptorsTotal), h['Descriptors Total']);
    assert.is(String(img.header.descriptorsOffset), h['Descriptors Offset']);
    assert.is(String(img.header.dataOffset), h['Data Offset']);
    assert.is(img.header.arch, h['Primary Architecture']);
    if (h['ID']) assert.is(img.header.id, h['ID']);
    if (h['Launch Script']) assert.is(img.header.launch.replace(/\n$/, ''), h['Launch Script']);
    assert.is(img.primary?.id, img.descriptors.find((d) => d.partition?.partType === 2)?.id);
  });
}

reference('details :: one-group-signed.sif fields', async () => {
  const img = await readSif(join(REF_IMAGES, 'one-group-signed.sif'));
  assert.is(img.header.arch, '386');
  assert.is(img.primary?.id, 2);
  assert.equal(img.primary?.partition, {
    fsType: 1, fsTypeName: 'Squashfs', partType: 2, partTypeName: 'Primary System', arch: '386',
  });
  const sig = img.descriptors[2];
  assert.is(sig.typeName, 'Signature');
  assert.is(sig.groupId, 0);
  assert.is(sig.link, 1);
  assert.is(sig.linkIsGroup, true);
  assert.equal(sig.signature, { hashType: 1, hashTypeName: 'SHA-256', entity: '12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84' });
});

reference('details :: empty.sif has no objects and no primary', async () => {
  const img = await readSif(join(REF_IMAGES, 'empty.sif'));
  assert.is(img.descriptors.length, 0);
  assert.is(img.primary, undefined);
  assert.is(img.header.arch, undefined);
  assert.is(img.header.descriptorsTotal, 48);
  assert.is(img.header.dataOffset, 32176);
});

reference('readObject :: reads exactly one object', async () => {
  const path = join(REF_IMAGES, 'one-object-sbom.sif');
  const img = await readSif(path);
  const data = await readObject(path, img.descriptors[0]);
  assert.is(data.length, img.descriptors[0].size);
  assert.equal(data, (await readFile(path)).subarray(img.descriptors[0].offset, img.descriptors[0].offset + img.descriptors[0].size));
});

reference.run();

// ---------------------------------------------------------------------------------------------
const corrupt = suite('parseSif corruption');

const ONE_GROUP = join(REF_IMAGES, 'one-group.sif'); // objects: 1 raw 32768+4, 2 squashfs 36864+4096
const good = () => readFile(ONE_GROUP);
const DESC = (i: number) => 4096 + i * 585;

corrupt('truncated :: header', async () => {
  const b = (await good()).subarray(0, 100);
  assert.is(whyOf(() => parseSif(b, 100)), 'truncated SIF: the header needs 128 bytes but the file has 100');
});

corrupt('truncated :: too short to hold the magic', async () => {
  const b = (await good()).subarray(0, 20);
  assert.is(whyOf(() => parseSif(b, 20)), 'not a SIF file: 20 bytes is too short to hold a SIF header');
});

corrupt('truncated :: descriptor table', async () => {
  const b = (await good()).subarray(0, 20000);
  assert.is(whyOf(() => parseSif(b, 20000)), 'truncated SIF: descriptor table ends at 32176, past end of file (20000 bytes)');
});

corrupt('truncated :: object past end of file', async () => {
  const b = (await good()).subarray(0, 38000);
  assert.is(whyOf(() => parseSif(b, 38000)),
    'truncated SIF: object 2 (Partition) at 36864-40960 ends past end of file (38000 bytes)');
});

corrupt('overlap :: two objects', async () => {
  const b = await good();
  b.writeBigInt64LE(32770n, DESC(1) + 17);
  assert.is(whyOf(() => parseSif(b, b.length)), 'corrupt SIF: object 1 (32768-32772) and object 2 (32770-36866) overlap');
});

corrupt('overlap :: object over the descriptor table', async () => {
  const b = await good();
  b.writeBigInt64LE(4196n, DESC(0) + 17);
  assert.is(whyOf(() => parseSif(b, b.length)),
    'corrupt SIF: object 1 (Partition) at 4196-4200 overlaps the descriptor table (4096-32176)');
});

corrupt('overlap :: descriptor table over the data section', async () => {
  const b = await good();
  b.writeBigInt64LE(30000n, 112);
  assert.is(whyOf(() => parseSif(b, b.length)),
    'corrupt SIF: descriptor table (4096-32176) overlaps the data section starting at 30000');
});

corrupt('magic :: bad magic', async () => {
  const b = await good();
  b.write('XIF', 32, 'latin1');
  assert.is(whyOf(() => parseSif(b, b.length)), 'not a SIF file: no SIF_MAGIC at offset 32');
});

corrupt('magic :: a text file', () => {
  const b = Buffer.from('#!/bin/sh\necho this is a shell script, not an image at all\n'.repeat(4));
  assert.is(whyOf(() => parseSif(b, b.length)), 'not a SIF file: no SIF_MAGIC at offset 32');
});

corrupt('version :: wrong version', async () => {
  const b = await good();
  b.write('02', 42, 'latin1');
  assert.is(whyOf(() => parseSif(b, b.length)), 'unsupported SIF version "02" (ctr reads version "01")');
});

corrupt('count :: free count disagrees with the table', async () => {
  const b = await good();
  b.writeBigInt64LE(40n, 80);
  assert.is(whyOf(() => parseSif(b, b.length)),
    'corrupt SIF: header counts 8 used descriptors (48 total, 40 free) but the table has 2');
});

corrupt('count :: table too small for the descriptor count', async () => {
  const b = await good();
  b.writeBigInt64LE(1000n, 104);
  assert.is(whyOf(() => parseSif(b, b.length)),
    'corrupt SIF: descriptor table of 1000 bytes cannot hold 48 descriptors of 585 bytes');
});

corrupt('count :: more free than total', async () => {
  const b = await good();
  b.writeBigInt64LE(49n, 80);
  assert.is(whyOf(() => parseSif(b, b.length)), 'corrupt SIF: header counts 49 free descriptors out of 48');
});

corrupt('ids :: duplicate object IDs', async () => {
  const b = await good();
  b.writeUInt32LE(1, DESC(1) + 5);
  assert.is(whyOf(() => parseSif(b, b.length)), 'corrupt SIF: descriptors 0 and 1 both have ID 1');
});

corrupt('readSif :: truncated file names the image in the message', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const path = join(dir, 'cut.sif');
    await writeFile(path, (await good()).subarray(0, 3000));
    const err = await whyOfAsync(readSif(path));
    assert.is(err.what, `image ${path}`);
    assert.is(err.message, `image ${path}: truncated SIF: descriptor table ends at 32176, past end of file (3000 bytes)`);
  } finally {
    await cleanup();
  }
});

corrupt('readSif :: missing file', async () => {
  const err = await whyOfAsync(readSif('/nonexistent/x.sif'));
  assert.is(err.message, 'image /nonexistent/x.sif: No such file or directory');
});

corrupt.run();

// ---------------------------------------------------------------------------------------------
const primary = suite('primaryPartition');

primary('found :: one-group.sif', async () => {
  const img = await readSif(ONE_GROUP);
  const p = primaryPartition(img, ONE_GROUP);
  assert.is(p.id, 2);
  assert.is(p.offset, 36864);
  assert.is(p.size, 4096);
});

primary('missing :: no partition at all', async () => {
  const path = join(REF_IMAGES, 'empty.sif');
  const img = await readSif(path);
  assert.is(whyOf(() => primaryPartition(img, path)), 'no primary partition: the SIF holds no partition at all');
});

primary('missing :: only non-primary partitions', async () => {
  const b = await good();
  b.writeInt32LE(1, DESC(1) + 201 + 4); // object 2: Primary System -> System
  const img = parseSif(b, b.length, 'x.sif');
  assert.is(img.primary, undefined);
  assert.is(whyOf(() => primaryPartition(img, 'x.sif')),
    'no primary partition: the SIF has 2 partition(s) (object 1: System, object 2: System) but none of type Primary System');
});

for (const [fs, why] of [
  [2, 'partition type Ext3 cannot be mounted (object 2): ext3 images need a kernel mount, which rootless ctr cannot do'],
  [5, 'partition type Encrypted squashfs cannot be mounted (object 2): encrypted images are not supported'],
  [4, 'partition type Raw cannot be mounted (object 2): only squashfs partitions can be mounted'],
] as const) {
  primary(`unmountable :: fs type ${fs}`, async () => {
    const b = await good();
    b.writeInt32LE(fs, DESC(1) + 201);
    const img = parseSif(b, b.length, 'x.sif');
    assert.is(whyOf(() => primaryPartition(img, 'x.sif')), why);
  });
}

primary('mksquashfs + siftool :: primary partition offset and bytes', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const sqfs = await makeSquashfs(dir);
    const sif = join(dir, 'img.sif');
    await siftool('new', sif);
    await siftool('add', sif, sqfs, '--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', '2');
    const img = await readSif(sif);
    const p = primaryPartition(img, sif);
    assert.is(p.offset, 32768, 'partition aligned to 4096 after the 32176-byte metadata');
    assert.is(p.size, (await stat(sqfs)).size);
    assert.is(p.partition?.arch, 'amd64');
    assert.is(img.header.arch, 'amd64');
    const data = await readObject(sif, p);
    assert.is(data.subarray(0, 4).toString('latin1'), 'hsqs');
    assert.equal(data, await readFile(sqfs));
  } finally {
    await cleanup();
  }
});

primary.run();
