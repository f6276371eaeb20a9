// Reading a layer's tar stream with tar-stream (ustar, GNU long names, pax headers): entries
// one at a time, each with its header and a stream of its data that must be consumed (or is
// skipped automatically when the next entry is requested).
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { CtrError } from '../errors.js';

export interface TarHeader {
  /** Position of the entry in its archive (0-based), a stable key for a second pass. */
  index: number;
  name: string;
  type: string;
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  size: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

export interface TarEntry {
  header: TarHeader;
  data: AsyncIterable<Uint8Array>;
}

export async function* tarEntries(chunks: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<TarEntry> {
  const src = Readable.from(chunks, { objectMode: false });
  const extract = tarStream.extract();
  let srcError: unknown;
  src.on('error', (err) => { srcError = err; extract.destroy(err); });
  src.pipe(extract as unknown as NodeJS.WritableStream);
  let index = 0;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      yield {
        header: {
          index: index++,
          name: h.name,
          type: h.type ?? 'file',
          mode: h.mode ?? 0o644,
          mtime: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
          size: h.size ?? 0,
          ...(h.linkname != null ? { linkname: h.linkname } : {}),
          ...(h.devmajor !== undefined ? { devmajor: h.devmajor, devminor: h.devminor } : {}),
        },
        data: entry as unknown as AsyncIterable<Uint8Array>,
      };
      entry.resume(); // drain whatever the consumer left
    }
  } catch (err) {
    const e = srcError ?? err;
    if (e instanceof CtrError) throw e;
    throw new CtrError(`cannot read ${what}`, `not a valid tar archive (${(e as Error)?.message ?? e})`, { cause: e });
  } finally {
    src.destroy();
    extract.destroy();
  }
}
