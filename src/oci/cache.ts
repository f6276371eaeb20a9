// The blob cache: content-addressed files under $CTR_CACHEDIR/blobs/sha256/HEX (default
// $XDG_CACHE_HOME/ctr, or ~/.cache/ctr). A blob is streamed to a temporary file beside its final name,
// hashed as it goes, and renamed into place only when its sha256 and size match, so the
// cache never holds a half-written or corrupt blob under a digest name.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CtrError, describeSystemError } from '../errors.js';
import { tempBeside } from '../tmp.js';

/** $CTR_CACHEDIR, else $XDG_CACHE_HOME/ctr (default ~/.cache/ctr). */
export function defaultCacheDir(): string {
  if (process.env.CTR_CACHEDIR) return process.env.CTR_CACHEDIR;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'ctr');
}

/** Where a blob is named in messages: `what` is the operation, `label` the blob. */
export interface BlobName { what: string; label: string }

export class DigestMismatch extends CtrError {}

/** Temporary files being written now, for a signal handler to remove. */
export const inFlight = new Set<string>();
/** Fewer bytes than the descriptor's size: a connection closed early, worth another try. */
export class TruncatedBlob extends CtrError {}

/** Hash `chunks` as they pass; throw at the end if digest or size differ. */
export async function* verified(chunks: AsyncIterable<Uint8Array>, digest: string, size: number | undefined, name: BlobName): AsyncGenerator<Uint8Array> {
  const h = createHash('sha256');
  let n = 0;
  for await (const c of chunks) {
    h.update(c);
    n += c.length;
    if (size !== undefined && n > size) throw new DigestMismatch(name.what, `${name.label}: more data than the ${size} bytes its descriptor gives`);
    yield c;
  }
  checkDigest(`sha256:${h.digest('hex')}`, n, digest, size, name);
}

function checkDigest(got: string, n: number, digest: string, size: number | undefined, name: BlobName): void {
  if (size !== undefined && n < size) throw new TruncatedBlob(name.what, `${name.label}: got ${n} of ${size} bytes`);
  if (size !== undefined && n !== size) throw new DigestMismatch(name.what, `${name.label}: size ${n} bytes, expected ${size}`);
  if (got !== digest) throw new DigestMismatch(name.what, `${name.label}: digest mismatch: got ${got}, expected ${digest}`);
}

export class BlobCache {
  readonly dir: string;

  constructor(root = defaultCacheDir()) {
    this.dir = join(root, 'blobs', 'sha256');
  }

  path(digest: string): string {
    return join(this.dir, digest.slice('sha256:'.length));
  }

  async has(digest: string, size?: number): Promise<boolean> {
    const st = await stat(this.path(digest)).catch(() => undefined);
    return !!st && st.isFile() && (size === undefined || st.size === size);
  }

  /** Store a blob from `chunks`, verified; nothing is left under the digest name on failure. */
  async store(digest: string, size: number | undefined, chunks: AsyncIterable<Uint8Array>, name: BlobName): Promise<string> {
    const final = this.path(digest);
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (err) {
      throw new CtrError(`cannot create the blob cache ${this.dir}`, describeSystemError(err), { cause: err });
    }
    const tmp = tempBeside(final, `${process.pid}.${randomBytes(4).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o644).catch((err) => {
      throw new CtrError(`cannot write to the blob cache ${this.dir}`, describeSystemError(err), { cause: err });
    });
    inFlight.add(tmp);
    const h = createHash('sha256');
    let n = 0;
    let ok = false;
    try {
      for await (const c of chunks) {
        h.update(c);
        n += c.length;
        if (size !== undefined && n > size) throw new DigestMismatch(name.what, `${name.label}: more data than the ${size} bytes its descriptor gives`);
        let off = 0;
        while (off < c.length) off += (await fh.write(c, off, c.length - off)).bytesWritten;
      }
      checkDigest(`sha256:${h.digest('hex')}`, n, digest, size, name);
      await fh.close();
      await rename(tmp, final);
      ok = true;
      return final;
    } finally {
      if (!ok) {
        await fh.close().catch(() => {});
        await rm(tmp, { force: true }).catch(() => {});
      }
      inFlight.delete(tmp);
    }
  }

  /**
   * Read a cached blob, hashing it again: a cache file damaged after the fact is caught, and
   * removed so that the next pull fetches it anew.
   */
  async *read(digest: string, size: number | undefined, name: BlobName): AsyncGenerator<Uint8Array> {
    const path = this.path(digest);
    try {
      yield* verified(createReadStream(path, { highWaterMark: 1 << 20 }), digest, size, name);
    } catch (err) {
      if (err instanceof DigestMismatch || err instanceof TruncatedBlob) {
        await rm(path, { force: true }).catch(() => {});
        throw new DigestMismatch(err.what, `${err.why} (cached blob removed; pull again)`);
      }
      throw err;
    }
  }
}
