// SIF files laid out the older way (Singularity 3.x wrote every data object on a page
// boundary, with padding between), and a SquashFS with duplicate blocks written in place
// (libsquashfs reads its own output back to deduplicate, so the SIF must be open w+).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSif, primaryPartition } from '../../src/sif/read.js';
import { writeSif, defFileObject, labelsObject, partitionObject } from '../../src/sif/write.js';
import { DataType } from '../../src/sif/format.js';
import { packSif } from '../../src/builder/pack.js';
import { busyboxSqfs } from '../helpers/images.js';
import { ctr } from '../helpers/user.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { SIFTOOL } from '../helpers/paths.js';
import { scratch } from './helpers.js';

const Legacy = suite('SIF legacy layout');

Legacy('page-aligned objects :: read, listed by siftool, and run', async () => {
  const { dir, cleanup } = await scratch();
  try {
    await chmod(dir, 0o755);
    const out = join(dir, 'legacy.sif');
    const page = { alignment: 4096 };
    await writeSif(out, [
      { ...defFileObject('Bootstrap: scratch\n'), ...page },
      { ...labelsObject({ a: 'b' }), ...page },
      partitionObject({ path: await busyboxSqfs() }, { arch: 'amd64' }),
    ], { arch: 'amd64' });
    await chmod(out, 0o644);
    const sif = await readSif(out);
    for (const d of sif.descriptors) assert.is(d.offset % 4096, 0, `object ${d.id} at ${d.offset}`);
    const part = primaryPartition(sif, out);
    assert.is(part.dataType, DataType.PARTITION);
    const list = await execa(SIFTOOL, ['list', out]);
    assert.match(list.stdout, /FS \(Squashfs\/\*System\/amd64\)/);
    const r = await ctr(['exec', out, 'cat', '/etc/image-release']);
    assert.is(r.stdout, 'busybox test image\n');
    assert.equal(await leftovers(), []);
  } finally {
    await killUserProcesses();
    await cleanup();
  }
});

Legacy('duplicate blocks :: a tree of identical files packs into a SIF and reads back', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const tree = join(dir, 'tree');
    await mkdir(tree);
    const block = Buffer.alloc(300 * 1024, 'abc'); // several identical 128 KiB blocks
    for (let i = 0; i < 4; i++) await writeFile(join(tree, `same${i}`), block);
    const out = join(dir, 'dup.sif');
    await packSif(tree, out, { compressor: 'zstd', level: 3, arch: 'amd64' });
    const sif = await readSif(out);
    const p = primaryPartition(sif, out);
    const listing = await execa('unsquashfs', ['-o', String(p.offset), '-lln', out]);
    for (let i = 0; i < 4; i++) assert.match(listing.stdout, new RegExp(`307200 .* squashfs-root/same${i}`));
    const cat = await execa('unsquashfs', ['-o', String(p.offset), '-cat', out, 'same3'], { encoding: 'buffer' });
    assert.ok(Buffer.from(cat.stdout).equals(block));
  } finally {
    await cleanup();
  }
});

Legacy.run();
