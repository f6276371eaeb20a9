// The two passes that turn layers into a SquashFS without unpacking them anywhere:
//
//   readLayers()   pass 1: every layer's tar headers (data skipped) applied to a RootfsTree
//   writeRootfs()  pass 2: the final tree into a SquashfsWriter: directories, symlinks,
//                  devices and made-up files first, then each layer that still holds a
//                  surviving file is streamed again and only those entries' bytes are fed to
//                  the writer, then the extra names of hard-linked inodes.
//
// Why not extract to a temporary directory: an unprivileged user can't create device nodes
// or give files to root, a mode-000 file or directory can't be read back, and the
// uncompressed tree would need its full size in temporary space and be written and read
// once more. Metadata in memory is ~200 bytes a file; file data is never held.
import { CtrError } from '../errors.js';
import { SquashfsWriter, type WriterOptions } from '../squashfs/write.js';
import type { Inode } from './layers.js';
import { RootfsTree } from './layers.js';
import { tarEntries, type TarHeader } from '../stream/tar.js';
import type { FetchedImage } from './source.js';

const label = (i: number, n: number) => `layer ${i + 1}/${n}`;

export async function readLayers(img: FetchedImage): Promise<RootfsTree> {
  const tree = new RootfsTree();
  for (let i = 0; i < img.layerCount; i++) {
    const headers: TarHeader[] = [];
    for await (const e of tarEntries(img.openLayer(i), `cannot read ${label(i, img.layerCount)}`)) headers.push(e.header);
    tree.applyLayer(i, headers, label(i, img.layerCount));
  }
  return tree;
}

export async function writeRootfs(tree: RootfsTree, img: FetchedImage, out: string | number, opts: WriterOptions): Promise<{ bytes: number }> {
  const writer = new SquashfsWriter(out, opts);
  try {
    const first = new Map<Inode, string>();
    const links: Array<{ path: string; target: string }> = [];
    const wanted = new Map<number, Map<number, { path: string; inode: Inode }>>();
    for (const { path, inode } of tree.entries()) {
      const prev = first.get(inode);
      if (prev !== undefined) {
        links.push({ path, target: prev });
        continue;
      }
      first.set(inode, path);
      const base = { path, mode: inode.mode, mtime: inode.mtime, uid: 0, gid: 0 };
      switch (inode.type) {
        case 'dir': await writer.add({ ...base, type: 'dir' }); break;
        case 'symlink': await writer.add({ ...base, type: 'symlink', target: inode.target! }); break;
        case 'char': case 'block': await writer.add({ ...base, type: inode.type, rdev: inode.rdev ?? 0 }); break;
        case 'fifo': await writer.add({ ...base, type: 'fifo' }); break;
        case 'file':
          if (inode.from && inode.size > 0) {
            let m = wanted.get(inode.from.layer);
            if (!m) {
              m = new Map();
              wanted.set(inode.from.layer, m);
            }
            m.set(inode.from.index, { path, inode });
          } else {
            await writer.add({ ...base, type: 'file', ...(inode.bytes ? { data: inode.bytes } : {}) });
          }
          break;
      }
    }
    for (const layer of [...wanted.keys()].sort((a, b) => a - b)) {
      const want = wanted.get(layer)!;
      let left = want.size;
      const what = label(layer, img.layerCount);
      for await (const e of tarEntries(img.openLayer(layer), `cannot read ${what}`)) {
        const w = want.get(e.header.index);
        if (!w) continue;
        await writer.add({ path: w.path, type: 'file', mode: w.inode.mode, mtime: w.inode.mtime, uid: 0, gid: 0, data: e.data });
        if (--left === 0) break;
      }
      if (left > 0) throw new CtrError(`cannot read ${what}`, 'it changed while it was being read');
    }
    for (const l of links) await writer.add({ ...l, type: 'hardlink', mode: 0 });
    return await writer.finish();
  } catch (err) {
    writer.close();
    throw err;
  }
}
