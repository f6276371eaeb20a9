// makedev(): glibc's dev_t, whose low 32 bits SquashFS stores (the kernel's new_encode_dev).
// Checked against what mksquashfs stores for real device nodes and what sqfs2tar reads
// back from ctr's own image of a tarball holding them. Needs root (mknod).
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeSquashfsFromTar } from '../../src/builder/tar.js';
import { SquashfsReader } from '../../src/squashfs/read.js';
import { devParts, makedev } from '../../src/stream/makedev.js';
import { scratch } from './helpers.js';

// Kernel limits: major 12 bits, minor 20 bits. The largest of each, and ones that cross
// the 8-bit minor and the 2^19/2^20 boundaries a 32-bit shift gets wrong.
const NODES: Array<[string, 'c' | 'b', number, number]> = [
  ['null', 'c', 1, 3], ['wide', 'c', 4095, 1048575], ['mid', 'b', 300, 70000], ['high', 'c', 259, 0x80000], ['low', 'b', 8, 255],
];

const rdevs = (image: string) => {
  const r = SquashfsReader.open(image);
  try {
    return Object.fromEntries(NODES.map(([name]) => [name, r.stat(`/${name}`).rdev]));
  } finally {
    r.close();
  }
};

const Dev = suite('makedev');

Dev('formula :: glibc values, small and large', () => {
  assert.is(makedev(0, 0), 0);
  assert.is(makedev(1, 3), 0x103);
  assert.is(makedev(8, 255), 0x8ff);
  assert.is(makedev(4095, 0xfffff), 0xffffffff);
  assert.is(makedev(0, 0x100000), 2 ** 32); // minor bits 20+ go to the high word
  assert.is(makedev(0x1000, 0), 2 ** 44); // major bits 12+ likewise
  assert.is(makedev(259, 0x80000) >>> 0, 0x80010300); // not negative: no sign from a 32-bit shift
  for (const [major, minor] of [[1, 3], [4095, 1048575], [0x1000, 0x100000], [70000, 5]]) {
    assert.equal(devParts(makedev(major, minor)), { major, minor });
  }
});

Dev('squashfs :: the low 32 bits are what mksquashfs stores; sqfs2tar reads them back', async () => {
  if (process.getuid?.() !== 0) throw new Error('the makedev test creates device nodes with mknod and must run as root');
  const dir = scratch('dev');
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  for (const [name, kind, major, minor] of NODES) await execa('mknod', [path.join(tree, name), kind, String(major), String(minor)]);
  for (const [name, , major, minor] of NODES) assert.is(fs.statSync(path.join(tree, name)).rdev, makedev(major, minor), name);

  const theirs = path.join(dir, 'theirs.sqfs');
  await execa('mksquashfs', [tree, theirs, '-noappend', '-no-xattrs', '-quiet']);
  const tarball = path.join(dir, 'nodes.tar');
  await execa('tar', ['-C', tree, '-cf', tarball, '.']);
  const ours = path.join(dir, 'ours.sqfs');
  await writeSquashfsFromTar(fs.createReadStream(tarball), ours, { name: tarball, compressor: 'gzip' });

  const want = Object.fromEntries(NODES.map(([name, , major, minor]) => [name, makedev(major, minor) % 2 ** 32]));
  assert.equal(rdevs(theirs), want);
  assert.equal(rdevs(ours), want);
  const listing = (await execa('sh', ['-c', `sqfs2tar ${ours} | tar -tvf -`])).stdout;
  for (const [name, kind, major, minor] of NODES) {
    assert.match(listing, new RegExp(`^${kind}\\S+ \\S+ +${major},${minor} .* \\./${name}$|^${kind}\\S+ \\S+ +${major},${minor} .* ${name}$`, 'm'), name);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

Dev.run();
