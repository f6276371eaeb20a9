// A byte stream, decompressed by what its first bytes say: gzip through node:zlib, zstd
// through libzstd (zstd.ts; Node 20's zlib has none), anything else passed through. Builds
// (`ctr build rootfs.tar.zst`) and pulls (each layer) read through this one function.
//
// Errors are CtrError(what, why), `what` naming the stream as the caller's message does
// ("cannot read layer 2/5"): a read error says what the system said, a corrupt or cut
// stream "corrupt gzip data: ..." or "corrupt zstd data: ...". A CtrError from the source
// (a digest mismatch, a cut download) passes through as it is.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { CtrError, describeSystemError } from '../errors.js';
import { sniff, SNIFF_BYTES, type Compression } from './sniff.js';
import { unzstd } from './zstd.js';

export async function* decompress(src: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array> {
  const { head, rest } = await peek(readErrors(src, what), SNIFF_BYTES);
  yield* decoder(sniff(head))(rest, what);
}

function decoder(c: Compression): (src: AsyncIterable<Uint8Array>, what: string) => AsyncIterable<Uint8Array> {
  switch (c) {
    case 'gzip': return gunzip;
    case 'zstd': return unzstd;
    case 'none': return (src) => src;
  }
}

async function* readErrors(src: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array> {
  try {
    yield* src;
  } catch (err) {
    if (err instanceof CtrError) throw err;
    throw new CtrError(what, describeSystemError(err), { cause: err });
  }
}

/** The first `n` bytes (fewer at the end of input), and the whole stream again. */
async function peek(src: AsyncGenerator<Uint8Array>, n: number): Promise<{ head: Buffer; rest: AsyncGenerator<Uint8Array> }> {
  const got: Uint8Array[] = [];
  let size = 0;
  while (size < n) {
    const r = await src.next();
    if (r.done) break;
    got.push(r.value);
    size += r.value.length;
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    yield* got;
    yield* src;
  }
  return { head: Buffer.concat(got), rest: rest() };
}

async function* gunzip(src: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array> {
  const z = createGunzip({ chunkSize: 1 << 20 });
  const feeding = pipeline(Readable.from(src), z).catch((err) => { z.destroy(err); });
  try {
    yield* z;
    await feeding;
  } catch (err) {
    if (err instanceof CtrError) throw err;
    throw new CtrError(what, `corrupt gzip data: ${(err as Error).message}`, { cause: err });
  } finally {
    z.destroy();
  }
}
