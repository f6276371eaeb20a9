// decompress() and tarEntries(): the bytes back whatever the compression and the chunking,
// and one error, word for word, for a cut or corrupt stream whether a build or a pull reads it.
import { execa } from 'execa';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeSquashfsFromTar } from '../../src/builder/tar.js';
import { CtrError } from '../../src/errors.js';
import { decompress } from '../../src/stream/decompress.js';
import { tarEntries } from '../../src/stream/tar.js';
import { chunked, collect, scratch, smallTar, whyOf, zstdOf } from './helpers.js';

/** The reason (the part after "what: ") that reading `data` as a pull reads a layer gives. */
async function pullWhy(data: Uint8Array): Promise<string> {
  try {
    for await (const e of tarEntries(decompress(chunked(data), 'cannot read layer 1/1'), 'cannot read layer 1/1')) await collect(e.data);
  } catch (err) {
    assert.instance(err, CtrError);
    assert.is((err as CtrError).what, 'cannot read layer 1/1');
    return (err as CtrError).why;
  }
  return 'no error';
}

/** The same for `ctr build TARBALL`'s reader. */
async function buildWhy(data: Uint8Array, dir: string): Promise<string> {
  try {
    await writeSquashfsFromTar(chunked(data), path.join(dir, 'out.sqfs'), { name: 'x.tar', compressor: 'gzip' });
  } catch (err) {
    assert.instance(err, CtrError);
    assert.is((err as CtrError).what, 'cannot read tarball x.tar');
    return (err as CtrError).why;
  }
  return 'no error';
}

const Dec = suite('decompress');

Dec('round trip :: gzip, zstd and plain, in small and large chunks', async () => {
  const tar = await smallTar(scratch('dec'));
  for (const [kind, data] of [['gzip', gzipSync(tar)], ['zstd', await zstdOf(tar)], ['plain', tar]] as const) {
    for (const size of [1, 7, 4096, 1 << 21]) {
      if (size === 1 && kind !== 'zstd') continue; // one byte at a time is slow; zstd's buffer logic wants it
      const got = await collect(decompress(chunked(data, size), 'x'));
      assert.ok(got.equals(tar), `${kind} in chunks of ${size}`);
    }
  }
});

Dec('round trip :: more than one output buffer, and concatenated zstd frames', async () => {
  const big = Buffer.alloc(5 * (1 << 20) + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 27;
  const two = Buffer.concat([await zstdOf(big), await zstdOf(Buffer.from('tail'))]);
  const got = await collect(decompress(chunked(two, 1 << 16), 'x'));
  assert.ok(got.equals(Buffer.concat([big, Buffer.from('tail')])));
});

Dec('errors :: a source error names the stream, a CtrError passes through', async () => {
  async function* failing(err: Error): AsyncGenerator<Uint8Array> {
    yield gzipSync('x').subarray(0, 5);
    throw err;
  }
  const enoent = Object.assign(new Error('ENOENT: x'), { code: 'ENOENT' });
  assert.is(await whyOf(collect(decompress(failing(enoent), 'cannot read layer 1/1'))), 'cannot read layer 1/1: No such file or directory');
  assert.is(await whyOf(collect(decompress(failing(new CtrError('blob', 'cut')), 'w'))), 'blob: cut');
});

Dec.run();

const Cut = suite('truncated and corrupt');

Cut('same words :: a build and a pull say the same of each broken stream', async () => {
  const dir = scratch('cut');
  const tar = await smallTar(dir);
  const gz = gzipSync(tar);
  const zst = await zstdOf(tar);
  const corruptZst = Buffer.from(zst);
  corruptZst.fill(0x55, 20, 60);
  const badHeader = Buffer.from(tar);
  badHeader[148] ^= 0x11; // the first header's checksum
  const cases: Array<[string, Uint8Array, string]> = [
    ['cut gzip', gz.subarray(0, gz.length >> 1), 'corrupt gzip data: unexpected end of file'],
    ['cut zstd', zst.subarray(0, zst.length >> 1), 'corrupt zstd data: unexpected EOF'],
    ['corrupt zstd', corruptZst, 'corrupt zstd data: '],
    ['cut tar', tar.subarray(0, 4096 + 700), 'truncated tar archive (unexpected end of data)'],
    ['cut zstd tar', await zstdOf(tar.subarray(0, 4096 + 700)), 'truncated tar archive (unexpected end of data)'],
    ['no tar inside', gzipSync('not a tar\n'), 'not a tar archive (10 bytes of data)'],
    ['bad header', badHeader, 'not a tar archive, or a corrupt one (invalid tar header)'],
  ];
  for (const [name, data, why] of cases) {
    const pulled = await pullWhy(data);
    const built = await buildWhy(data, dir);
    assert.is(built, pulled, name);
    if (why.endsWith(': ')) assert.ok(pulled.startsWith(why), `${name}: ${pulled}`);
    else assert.is(pulled, why, name);
    assert.not.match(pulled, /\n/, name);
  }
});

Cut('early stop :: breaking off a layer leaves nothing running', async () => {
  const tar = await smallTar(scratch('stop'));
  for (const data of [tar, await zstdOf(tar), gzipSync(tar)]) {
    for await (const e of tarEntries(decompress(chunked(data), 'x'), 'x')) {
      if (e.header.type === 'file') break;
    }
  }
  const r = await execa('true');
  assert.is(r.exitCode, 0);
});

Cut.run();
