// ctr inspect on hostile objects (issue 10): a labels object nested thousands deep, and
// one far larger than any real one (sparse, so it costs the test nothing on disk), each
// give one error line and exit 255: no stack, no allocation of the whole object.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labelsObject, partitionObject, writeSif } from '../../src/sif/write.js';
import { busyboxSqfs } from '../helpers/images.js';
import { CTR_MAIN } from '../helpers/paths.js';

const Hostile = suite('inspect hostile objects');
let dir: string, sqfs: string;

Hostile.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctr-inspect-'));
  sqfs = await busyboxSqfs();
});
Hostile.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function inspect(sif: string) {
  const r = await execa(process.execPath, [CTR_MAIN, 'inspect', sif], { reject: false, env: { FORCE_COLOR: undefined as unknown as string } });
  return { stderr: r.stderr, code: r.exitCode };
}

Hostile('labels :: JSON nested 100,000 deep is one error line', async () => {
  const sif = join(dir, 'deep.sif');
  const deep = `{"a":${'['.repeat(100000)}${']'.repeat(100000)}}`;
  await writeSif(sif, [labelsObject(Buffer.from(deep)), partitionObject({ path: sqfs }, { arch: 'amd64' })], { arch: 'amd64' });
  assert.equal(await inspect(sif), { stderr: 'ctr: error: cannot read labels object 1: JSON nested more than 32 levels deep', code: 255 });
});

Hostile('labels :: an object of 4 GiB is refused by its size, not read', async () => {
  const sif = join(dir, 'huge.sif');
  // Labels last, so that growing it overlaps nothing (the reader refuses overlaps first).
  await writeSif(sif, [partitionObject({ path: sqfs }, { arch: 'amd64' }), labelsObject(Buffer.from('{}'))], { arch: 'amd64' });
  // Point the labels descriptor's size at 4 GiB: its offset and size are two adjacent
  // int64 in the (packed) descriptor, found by their values; the file grows sparse.
  const { stdout } = await execa(process.execPath, [CTR_MAIN, 'inspect', '--image', '--json', sif]);
  const obj = (JSON.parse(stdout).image as { objects: Array<{ id: number; typeName: string; offset: number; size: number }> }).objects.find((o) => o.typeName === 'JSON.Labels')!;
  const { readFile, writeFile, truncate } = await import('node:fs/promises');
  const buf = await readFile(sif);
  const at = findSize(buf, obj.offset, obj.size);
  buf.writeBigInt64LE(4n << 30n, at);
  if (buf.readBigInt64LE(at + 8) === BigInt(obj.size)) buf.writeBigInt64LE(4n << 30n, at + 8); // its stored length
  await writeFile(sif, buf);
  await truncate(sif, obj.offset + 2 ** 32 + 4096);
  const r = await inspect(sif);
  assert.is(r.code, 255);
  assert.match(r.stderr, /^ctr: error: image .*huge\.sif: object 2 \(JSON\.Labels\) is 4294967296 bytes, more than the 16 MiB ctr reads of a metadata object$/, r.stderr);
});

/** The descriptor field holding SIZE right after OFFSET (int64 little-endian each). */
function findSize(buf: Buffer, offset: number, size: number): number {
  for (let i = 0; i + 16 <= Math.min(buf.length, 1 << 20); i++) {
    if (buf.readBigInt64LE(i) === BigInt(offset) && buf.readBigInt64LE(i + 8) === BigInt(size)) return i + 8;
  }
  throw new Error('descriptor not found');
}

Hostile.run();
