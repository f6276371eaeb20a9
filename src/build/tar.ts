// A rootfs tarball → a SquashFS image, streamed: bytes are decompressed (gzip through
// zlib, zstd through fzstd; chosen by magic bytes, not the file name), parsed by
// tar-stream (ustar, GNU long names, pax headers) and each entry is handed to
// SquashfsWriter as it arrives. Nothing is unpacked to disk, and memory stays flat.
//
// Entries that would land outside the image ('..', absolute paths) are refused, not
// rewritten: a tarball that needs that is not a root file system. Ownership is stored as
// root (0:0) unless `keepOwnership`, as for a directory source.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import tar from 'tar-stream';
import { CtrError, describeSystemError } from '../errors.js';
import { SquashfsWriter, type TreeEntry, type WriterOptions } from '../squashfs/write.js';

export interface FromTarOptions extends WriterOptions {
  /** Keep the entries' uid/gid; by default everything is stored as owned by root (0:0). */
  keepOwnership?: boolean;
  /** How to name the tarball in messages (its path); default "tarball". */
  name?: string;
}

export type TarCompression = 'gzip' | 'zstd' | 'none';

/** The compression of a tarball from its first bytes; undefined when it is not a tarball we read. */
export function tarCompression(head: Uint8Array): TarCompression | undefined {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (b.length >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar') return 'none';
  return undefined;
}

export async function writeSquashfsFromTar(
  input: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  out: string | number,
  opts: FromTarOptions,
): Promise<{ bytes: number }> {
  const name = opts.name ?? 'tarball';
  const what = `cannot read tarball ${name}`;
  const { head, rest } = await peek(readErrors(input as AsyncIterable<Uint8Array>, what), 512);
  const compression = tarCompression(head) ?? 'none';
  const plain = compression === 'gzip' ? gunzip(rest, what) : compression === 'zstd' ? unzstd(rest, what) : rest;

  const extract = tar.extract();
  const fed = { bytes: 0 };
  const feeding = feed(plain, extract, fed); // its errors destroy `extract`, so they reach the iterator
  const writer = new SquashfsWriter(out, opts);
  try {
    const own = (h: tar.Header) => (opts.keepOwnership ? { uid: h.uid ?? 0, gid: h.gid ?? 0 } : { uid: 0, gid: 0 });
    for await (const entry of iterate(extract, fed, what)) {
      const h = entry.header;
      const path = checkPath(h.name, name);
      const common = { path, mode: h.mode ?? 0o644, mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000), ...own(h) };
      const pax = (h as { pax?: Record<string, string> }).pax ?? {};
      if (Object.keys(pax).some((k) => k.startsWith('GNU.sparse.'))) {
        throw new CtrError(`tarball ${name}`, `entry ${JSON.stringify(h.name)} is a GNU sparse file, which ctr does not read (make the tarball without --sparse)`);
      }
      let e: TreeEntry;
      switch (h.type) {
        case 'file': case 'contiguous-file':
          e = { ...common, type: 'file', data: body(entry, fed, what) };
          break;
        case 'directory':
          e = { ...common, type: 'dir' };
          break;
        case 'symlink':
          e = { ...common, type: 'symlink', target: h.linkname ?? '' };
          break;
        case 'link':
          e = { ...common, type: 'hardlink', target: checkPath(h.linkname ?? '', name) };
          break;
        case 'character-device': case 'block-device':
          e = { ...common, type: h.type === 'block-device' ? 'block' : 'char', rdev: makedev(h.devmajor ?? 0, h.devminor ?? 0) };
          break;
        case 'fifo':
          e = { ...common, type: 'fifo' };
          break;
        default:
          throw new CtrError(`tarball ${name}`, `entry ${JSON.stringify(h.name)} has a type ctr does not read (${h.type ?? 'vendor extension, e.g. GNU sparse'})`);
      }
      await writer.add(e);
      entry.resume(); // whatever the writer did not consume (a hard link's or device's body)
    }
    await feeding;
    return await writer.finish();
  } catch (err) {
    extract.destroy();
    writer.close();
    throw err;
  }
}

/** An image path for a tar member name; '..' and absolute paths are refused. */
function checkPath(member: string, tarball: string): string {
  if (member.startsWith('/')) throw new CtrError(`tarball ${tarball}`, `entry ${JSON.stringify(member)} is an absolute path`);
  if (member.split('/').includes('..')) throw new CtrError(`tarball ${tarball}`, `entry ${JSON.stringify(member)} contains '..'`);
  return member;
}

/** Linux's dev_t encoding (glibc makedev), as stat.rdev gives it. */
function makedev(major: number, minor: number): number {
  return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | (Number(BigInt(major & ~0xfff) << 32n));
}

type Entry = AsyncIterable<Uint8Array> & { header: tar.Header; resume(): unknown };

/** Write `src` into tar-stream's extractor, minding back-pressure; an error destroys it. */
async function feed(src: AsyncIterable<Uint8Array>, extract: tar.Extract, fed: { bytes: number }): Promise<void> {
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

/** tar-stream's entries, its parse errors turned into one clear line. */
async function* iterate(extract: tar.Extract, fed: { bytes: number }, what: string): AsyncGenerator<Entry> {
  try {
    yield* extract as unknown as AsyncIterable<Entry>; // streamx's types say unknown chunks; they are Buffers
  } catch (err) {
    throw tarError(err, fed, what);
  }
}

/** A file's contents, with tar-stream's errors (a truncated archive) turned into one line. */
async function* body(entry: Entry, fed: { bytes: number }, what: string): AsyncGenerator<Uint8Array> {
  try {
    yield* entry;
  } catch (err) {
    throw tarError(err, fed, what);
  }
}

function tarError(err: unknown, fed: { bytes: number }, what: string): CtrError {
  if (err instanceof CtrError) return err;
  const msg = (err as Error)?.message ?? String(err);
  if (/unexpected end/i.test(msg)) {
    return new CtrError(what, fed.bytes < 512 ? `not a tar archive (${fed.bytes} bytes of data)` : 'truncated tar archive (unexpected end of data)', { cause: err });
  }
  if (/invalid tar header/i.test(msg)) return new CtrError(what, 'not a tar archive, or a corrupt one (invalid tar header)', { cause: err });
  return new CtrError(what, `corrupt tar archive: ${msg}`, { cause: err });
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
  const z = createGunzip();
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

async function* unzstd(src: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const d = new Decompress((chunk) => { out.push(chunk); });
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      d.push(chunk, final);
    } catch (err) {
      throw new CtrError(what, `corrupt zstd data: ${(err as Error).message}`, { cause: err });
    }
  };
  for await (const chunk of src) {
    push(chunk, false);
    yield* out.splice(0);
  }
  push(new Uint8Array(0), true);
  yield* out.splice(0);
}
