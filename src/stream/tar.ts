// A tar stream's entries, read by tar-stream (ustar, GNU long names, pax headers): one at a
// time, each with its header and its data, which the consumer reads or leaves (what is left
// is skipped when the next entry is asked for). Breaking off early stops the reading.
//
// One error vocabulary for builds and pulls, CtrError(what, why) with `why` one of:
//   not a tar archive (N bytes of data)                       less than one header came
//   truncated tar archive (unexpected end of data)            the data stops mid-archive
//   not a tar archive, or a corrupt one (invalid tar header)  a header's checksum is wrong
//   corrupt tar archive: <tar-stream's message>               anything else tar-stream says
// A CtrError from the source (decompression, a digest) passes through unchanged.
import tarStream from 'tar-stream';
import { CtrError } from '../errors.js';

export interface TarHeader {
  /** Position of the entry in its archive (0-based), a stable key for a second pass. */
  index: number;
  name: string;
  /** tar-stream's name for the type ('file', 'directory', 'symlink', ...); 'unknown' for a
   * type flag it does not know (a vendor extension, e.g. GNU sparse). */
  type: string;
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  size: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** A GNU sparse file (pax GNU.sparse.* records), which is not read here. */
  sparse?: boolean;
}

export interface TarEntry {
  header: TarHeader;
  data: AsyncIterable<Uint8Array>;
}

/** What went into the extractor: its byte count, and the error it failed with. */
type Fed = { bytes: number; error?: unknown };

type RawEntry = AsyncIterable<Uint8Array> & { header: tarStream.Header; resume(): unknown };

export async function* tarEntries(src: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<TarEntry> {
  const extract = tarStream.extract();
  const fed: Fed = { bytes: 0 };
  extract.on('error', (err) => { fed.error ??= err; });
  const feeding = feed(src, extract, fed); // its errors destroy `extract`, so they reach the loop
  let index = 0;
  try {
    for await (const entry of guard(extract as unknown as AsyncIterable<RawEntry>, fed, what)) {
      yield { header: header(entry.header, index++), data: guard(entry, fed, what) };
      entry.resume(); // whatever the consumer left
    }
    await feeding;
  } finally {
    extract.destroy();
  }
}

function header(h: tarStream.Header, index: number): TarHeader {
  const pax = (h as { pax?: Record<string, string> }).pax ?? {};
  return {
    index,
    name: h.name,
    type: h.type ?? 'unknown',
    mode: h.mode ?? 0o644,
    mtime: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
    size: h.size ?? 0,
    ...(h.uid != null ? { uid: h.uid } : {}),
    ...(h.gid != null ? { gid: h.gid } : {}),
    ...(h.linkname != null ? { linkname: h.linkname } : {}),
    ...(h.devmajor !== undefined ? { devmajor: h.devmajor, devminor: h.devminor } : {}),
    ...(Object.keys(pax).some((k) => k.startsWith('GNU.sparse.')) ? { sparse: true } : {}),
  };
}

/** Write `src` into tar-stream's extractor, minding back-pressure; an error destroys it. */
async function feed(src: AsyncIterable<Uint8Array>, extract: tarStream.Extract, fed: Fed): Promise<void> {
  try {
    for await (const chunk of src) {
      if (extract.destroyed) return;
      fed.bytes += chunk.length;
      if (!extract.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => { extract.off('drain', done); extract.off('close', done); resolve(); };
          extract.on('drain', done);
          extract.on('close', done);
        });
      }
    }
    extract.end(undefined);
  } catch (err) {
    extract.destroy(err as Error);
  }
}

/**
 * `it`, with tar-stream's errors turned into one clear line. An entry's data that is read
 * only after the archive failed says just "Stream was destroyed": the extractor's own error
 * (emitted a tick later) is the one that tells why.
 */
async function* guard<T>(it: AsyncIterable<T>, fed: Fed, what: string): AsyncGenerator<T> {
  try {
    yield* it;
  } catch (err) {
    if (fed.error === undefined) await new Promise(setImmediate);
    throw tarError(fed.error ?? err, fed.bytes, what);
  }
}

function tarError(err: unknown, fed: number, what: string): CtrError {
  if (err instanceof CtrError) return err;
  const msg = (err as Error)?.message ?? String(err);
  if (/unexpected end/i.test(msg)) {
    return new CtrError(what, fed < 512 ? `not a tar archive (${fed} bytes of data)` : 'truncated tar archive (unexpected end of data)', { cause: err });
  }
  if (/invalid tar header/i.test(msg)) return new CtrError(what, 'not a tar archive, or a corrupt one (invalid tar header)', { cause: err });
  return new CtrError(what, `corrupt tar archive: ${msg}`, { cause: err });
}
