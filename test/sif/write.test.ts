import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createReadStream } from 'node:fs';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { CtrError } from '../../src/errors.js';
import { DataType } from '../../src/sif/format.js';
import { primaryPartition, readObject, readSif } from '../../src/sif/read.js';
import {
  type SifObjectInput, defFileObject, encodeSifMetadata, labelsObject, partitionObject, planLayout, writeSif,
} from '../../src/sif/write.js';
import { asSiftoolRow, makeSquashfs, parseSiftoolHeader, parseSiftoolList, scratch, siftool, siftoolBytes } from './helpers.js';

const ID = '5f0d8a2c-3b1e-4c6d-9e7f-0a1b2c3d4e5f';
const TIME = new Date('2024-01-02T03:04:05Z');
const DEF = 'Bootstrap: docker\nFrom: alpine:3.19\n';
const LABELS = { 'org.opencontainers.image.title': 'test', 'a.first': 'yes' };

function objects(sqfs: string): SifObjectInput[] {
  return [defFileObject(DEF), labelsObject(LABELS), partitionObject({ path: sqfs })];
}

const w = suite('writeSif');

w('siftool :: list, header, info and dump accept our output', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const sqfs = await makeSquashfs(dir);
    const out = join(dir, 'out.sif');
    await writeSif(out, objects(sqfs), { id: ID, time: TIME, arch: 'amd64' });

    const rows = parseSiftoolList(await siftool('list', out));
    assert.equal(rows.map((r) => r[4]), ['Def.FILE', 'JSON.Labels', 'FS (Squashfs/*System/amd64)']);
    const img = await readSif(out);
    assert.equal(img.descriptors.map(asSiftoolRow), rows);

    const h = parseSiftoolHeader(await siftool('header', out));
    assert.is(h['ID'], ID);
    assert.is(h['Primary Architecture'], 'amd64');
    assert.is(h['Launch Script'], '#!/usr/bin/env run-singularity');
    assert.is(h['Created At'], '2024-01-02 03:04:05 +0000 UTC');
    assert.is(h['Descriptors Free'], '45');
    assert.is(h['Descriptors Total'], '48');
    assert.is(h['Data Offset'], '32176');

    const info = await siftool('info', '3', out);
    assert.match(info, /Filesystem Type:\s+Squashfs/);
    assert.match(info, /Partition Type:\s+\*System/);
    assert.match(info, /Architecture:\s+amd64/);
    assert.match(info, /Group ID:\s+1\n/);

    assert.equal(await siftoolBytes('dump', '3', out), await readFile(sqfs));
    assert.is((await siftoolBytes('dump', '1', out)).toString(), DEF);
    assert.equal(JSON.parse((await siftoolBytes('dump', '2', out)).toString()), LABELS);
  } finally {
    await cleanup();
  }
});

w('layout :: same positions as siftool new + add', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const sqfs = await makeSquashfs(dir);
    const def = join(dir, 'def');
    await writeFile(def, DEF);
    const ref = join(dir, 'ref.sif');
    await siftool('new', ref);
    await siftool('add', ref, def, '--datatype', '1', '--groupid', '1');
    await siftool('add', ref, sqfs, '--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', '2', '--groupid', '1');
    const ours = join(dir, 'ours.sif');
    await writeSif(ours, [defFileObject(DEF), partitionObject({ path: sqfs })], { id: ID, time: TIME, arch: 'x64' });
    assert.is(await siftool('list', ours), await siftool('list', ref));
    const [a, b] = [await readSif(ours), await readSif(ref)];
    assert.is(a.header.dataSize, b.header.dataSize);
    assert.equal(a.descriptors.map((d) => d.sizeWithPadding), b.descriptors.map((d) => d.sizeWithPadding));
    assert.is((await stat(ours)).size, (await stat(ref)).size);
    const p = primaryPartition(a, ours);
    assert.is(p.offset % 4096, 0);
    assert.is((await readObject(ours, p)).subarray(0, 4).toString('latin1'), 'hsqs');
  } finally {
    await cleanup();
  }
});

w('deterministic :: byte-identical across writes and across source kinds', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const sqfs = await makeSquashfs(dir);
    const sqBytes = await readFile(sqfs);
    const opts = { id: ID, time: TIME, arch: 'amd64' };
    const paths = ['a', 'b', 'c', 'd', 'e'].map((n) => join(dir, `${n}.sif`));
    await writeSif(paths[0], objects(sqfs), opts);
    await writeSif(paths[1], objects(sqfs), opts);
    await writeSif(paths[2], [defFileObject(DEF), labelsObject(LABELS), partitionObject(sqBytes)], opts);
    await writeSif(paths[3], [defFileObject(DEF), labelsObject(LABELS), partitionObject({ stream: createReadStream(sqfs) })], opts);
    await writeSif(paths[4], [defFileObject(DEF), labelsObject(LABELS), partitionObject({
      writeAt: async ({ fh, offset }) => { await fh.write(sqBytes, 0, sqBytes.length, offset); return sqBytes.length; },
    })], opts);
    const first = await readFile(paths[0]);
    for (const p of paths.slice(1)) assert.ok(first.equals(await readFile(p)), `${p} differs from ${paths[0]}`);
  } finally {
    await cleanup();
  }
});

w('labels :: keys are sorted, so insertion order does not matter', () => {
  const a = labelsObject({ b: '1', a: '2' }).data as Buffer;
  const b = labelsObject({ a: '2', b: '1' }).data as Buffer;
  assert.is(a.toString(), '{"a":"2","b":"1"}');
  assert.ok(a.equals(b));
});

w('errors :: launch script too long, unknown arch, bad id', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const out = join(dir, 'x.sif');
    const cases: Array<[Parameters<typeof writeSif>[2], string]> = [
      [{ arch: 'amd64', launch: '#!/usr/bin/env some-very-long-launcher\n' }, 'launch script is 39 bytes; at most 31 fit in the header'],
      [{ arch: 'sparc' }, 'architecture "sparc" has no SIF code'],
      [{ arch: 'amd64', id: 'nope' }, 'image id "nope" is not a UUID'],
    ];
    for (const [opts, why] of cases) {
      try {
        await writeSif(out, [defFileObject(DEF)], opts);
        assert.unreachable(`expected failure: ${why}`);
      } catch (err) {
        assert.instance(err, CtrError);
        assert.is((err as CtrError).message, `SIF ${out}: ${why}`);
      }
    }
    await assert.not.throws(() => stat(out).then(() => { throw new Error('output exists'); }, () => {}));
  } finally {
    await cleanup();
  }
});

w('empty :: no objects is an empty image like siftool new', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const out = join(dir, 'empty.sif');
    await writeSif(out, [], { id: ID, time: TIME, arch: 'amd64' });
    assert.is((await stat(out)).size, 32176);
    const img = await readSif(out);
    assert.is(img.descriptors.length, 0);
    assert.is(img.header.arch, undefined);
    assert.equal(parseSiftoolList(await siftool('list', out)), []);
  } finally {
    await cleanup();
  }
});

w.run();

// ---------------------------------------------------------------------------------------------
const low = suite('planLayout + encodeSifMetadata');

low('plan :: partition offset known before its size', () => {
  const layout = planLayout([{ dataType: DataType.DEFFILE, size: 100 }, { dataType: DataType.PARTITION }]);
  assert.is(layout.dataOffset, 32176);
  assert.is(layout.objects[0].offset, 32176);
  assert.is(layout.objects[1].offset, 32768);
  assert.is(layout.objects[1].padding, 32768 - 32276);
});

low('plan :: only the last object may lack a size', () => {
  assert.throws(() => planLayout([{ dataType: DataType.PARTITION }, { dataType: DataType.DEFFILE, size: 1 }]), /no size but is not the last/);
});

low('mksquashfs -o :: squashfs written in place at the planned offset', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const sqfs = await makeSquashfs(dir);
    const out = join(dir, 'inplace.sif');
    const def = Buffer.from(DEF);
    const layout = planLayout([{ dataType: DataType.DEFFILE, size: def.length }, { dataType: DataType.PARTITION }]);
    const off = layout.objects[1].offset;
    await execa('mksquashfs', [join(dir, 'rootfs'), out, '-noappend', '-quiet', '-all-root', '-mkfs-time', '0', '-all-time', '0', '-o', String(off)]);
    const size = (await stat(out)).size - off;
    const meta = encodeSifMetadata(layout, { id: ID, time: TIME, arch: 'amd64' }, [undefined, size]);
    const fh = await open(out, 'r+');
    try {
      await fh.write(meta, 0, meta.length, 0);
      await fh.write(def, 0, def.length, layout.objects[0].offset);
      await fh.write(Buffer.alloc(layout.objects[1].padding), 0, layout.objects[1].padding, off - layout.objects[1].padding);
    } finally {
      await fh.close();
    }
    const img = await readSif(out);
    const p = primaryPartition(img, out);
    assert.is(p.offset, off);
    assert.equal(await siftoolBytes('dump', '2', out), await readFile(sqfs));
    // Same bytes as the one-shot writer.
    const ref = join(dir, 'ref.sif');
    await writeSif(ref, [defFileObject(DEF), partitionObject({ path: sqfs })], { id: ID, time: TIME, arch: 'amd64' });
    assert.ok((await readFile(ref)).equals(await readFile(out)));
  } finally {
    await cleanup();
  }
});

low.run();
