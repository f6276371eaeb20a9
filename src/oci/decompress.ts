// Layer decompression, chosen by the blob's first bytes rather than its media type (registries
// and tools label layers inconsistently): gzip through node:zlib, zstd through fzstd (pure JS;
// Node 20's zlib has no zstd), anything else passed through as a plain tar.
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { CtrError } from '../errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export function sniff(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** The decompressed bytes of `chunks`; `what` names the layer in errors. */
export async function* decompress(chunks: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array> {
  const it = chunks[Symbol.asyncIterator]();
  // Gather at least 4 bytes to recognise the format.
  const head: Uint8Array[] = [];
  let have = 0;
  let done = false;
  while (have < 4) {
    const r = await it.next();
    if (r.done) { done = true; break; }
    head.push(r.value);
    have += r.value.length;
  }
  const first = Buffer.concat(head);
  const rest = (async function* () {
    if (first.length) yield first;
    if (done) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  })();
  const fail = (err: unknown): never => {
    if (err instanceof CtrError) throw err;
    throw new CtrError(`cannot decompress ${what}`, (err as Error)?.message ?? String(err), { cause: err });
  };
  switch (sniff(first)) {
    case 'gzip': {
      const src = Readable.from(rest, { objectMode: false });
      const gunzip = createGunzip({ chunkSize: 1 << 20 });
      src.on('error', (err) => gunzip.destroy(err));
      src.pipe(gunzip);
      try {
        for await (const c of gunzip) yield c as Buffer;
      } catch (err) {
        fail(err);
      } finally {
        src.destroy();
      }
      return;
    }
    case 'zstd': {
      const out: Uint8Array[] = [];
      // fzstd may hand out views of its window buffer: copy before it is reused.
      const z = new Decompress((data) => { if (data.length) out.push(Buffer.from(data)); });
      for await (const c of rest) {
        try {
          z.push(c);
        } catch (err) {
          fail(err);
        }
        yield* out.splice(0);
      }
      try {
        z.push(new Uint8Array(0), true);
      } catch (err) {
        fail(err);
      }
      yield* out.splice(0);
      return;
    }
    default:
      yield* rest;
  }
}
