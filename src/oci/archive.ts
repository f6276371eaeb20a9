// Unpack an image archive (oci-archive, docker save) into a directory: regular files and
// directories only, every path kept inside the directory. The blobs inside stay compressed,
// so this is a copy, not a decompression.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { CtrError, describeSystemError } from '../errors.js';
import { decompress } from '../stream/decompress.js';
import { tarEntries } from '../stream/tar.js';

export async function extractArchive(archive: string, dir: string, what: string): Promise<void> {
  const src = createReadStream(archive, { highWaterMark: 1 << 20 });
  const opened = new Promise<void>((resolve, reject) => {
    src.once('open', () => resolve());
    src.once('error', reject);
  });
  try {
    await opened;
  } catch (err) {
    throw new CtrError(what, `${archive}: ${describeSystemError(err)}`);
  }
  for await (const e of tarEntries(decompress(src, `cannot read ${archive}`), `cannot read ${archive}`)) {
    const parts = e.header.name.split('/').filter((p) => p && p !== '.');
    if (parts.includes('..') || parts.length === 0) continue;
    const to = join(dir, ...parts);
    if (e.header.type === 'directory') {
      await mkdir(to, { recursive: true });
    } else if (e.header.type === 'file' || e.header.type === 'contiguous-file') {
      await mkdir(dirname(to), { recursive: true });
      await pipeline(Readable.from(e.data), createWriteStream(to));
    }
  }
}
