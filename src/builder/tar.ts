// A rootfs tarball → a SquashFS image, streamed: bytes are decompressed and split into tar
// entries by src/stream (compression chosen by magic bytes, not the file name), and each
// entry is handed to SquashfsWriter as it arrives. Nothing is unpacked to disk, and memory
// stays flat.
//
// Entries that would land outside the image ('..', absolute paths) are refused, not
// rewritten: a tarball that needs that is not a root file system. Ownership is stored as
// root (0:0) unless `keepOwnership`, as for a directory source.
import { CtrError } from '../errors.js';
import { SquashfsWriter, type TreeEntry, type WriterOptions } from '../squashfs/write.js';
import { decompress } from '../stream/decompress.js';
import { makedev } from '../stream/makedev.js';
import { tarEntries } from '../stream/tar.js';

export { tarCompression, type Compression as TarCompression } from '../stream/sniff.js';

export interface FromTarOptions extends WriterOptions {
  /** Keep the entries' uid/gid; by default everything is stored as owned by root (0:0). */
  keepOwnership?: boolean;
  /** How to name the tarball in messages (its path); default "tarball". */
  name?: string;
}

export async function writeSquashfsFromTar(
  input: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  out: string | number,
  opts: FromTarOptions,
): Promise<{ bytes: number }> {
  const name = opts.name ?? 'tarball';
  const what = `cannot read tarball ${name}`;
  const writer = new SquashfsWriter(out, opts);
  try {
    for await (const { header: h, data } of tarEntries(decompress(input as AsyncIterable<Uint8Array>, what), what)) {
      const path = checkPath(h.name, name);
      const own = opts.keepOwnership ? { uid: h.uid ?? 0, gid: h.gid ?? 0 } : { uid: 0, gid: 0 };
      const common = { path, mode: h.mode, mtime: h.mtime, ...own };
      if (h.sparse) {
        throw new CtrError(`tarball ${name}`, `entry ${JSON.stringify(h.name)} is a GNU sparse file, which ctr does not read (make the tarball without --sparse)`);
      }
      let e: TreeEntry;
      switch (h.type) {
        case 'file': case 'contiguous-file':
          e = { ...common, type: 'file', data };
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
          throw new CtrError(`tarball ${name}`, `entry ${JSON.stringify(h.name)} has a type ctr does not read (${h.type === 'unknown' ? 'vendor extension, e.g. GNU sparse' : h.type})`);
      }
      await writer.add(e);
    }
    return await writer.finish();
  } catch (err) {
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
