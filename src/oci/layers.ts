// The image's root file system as metadata only: layers applied in order, as an overlay
// would stack them. Pure: tar headers in, a tree out; no file data is held. A regular file
// remembers which layer and which entry of that layer hold its bytes, so the SquashFS can be
// written in a second pass that streams only those entries.
//
//   whiteouts     `.wh.NAME` removes NAME from the layers below; `.wh..wh..opq` empties its
//                 directory of what the layers below put there. A layer's whiteouts are
//                 applied before its own entries (they never hide entries of the same layer).
//   hard links    a link shares the inode that its target path holds at that moment, in this
//                 layer or a lower one; replacing the target later keeps the link's inode.
//   ownership     not kept: everything belongs to root (0:0) in the image; setuid/setgid/
//                 sticky bits stay in the mode, as data (the launcher runs with no_new_privs).
//   parents       missing parent directories are created (0755); a symlink met on the way
//                 is followed inside the tree, as extracting onto a real directory would.
import { CtrError } from '../errors.js';
import { makedev } from '../stream/makedev.js';
import type { TarHeader } from '../stream/tar.js';

export type InodeType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

export interface Inode {
  type: InodeType;
  /** Permission bits, setuid/setgid/sticky included (07777). */
  mode: number;
  mtime: number;
  size: number;
  target?: string;
  rdev?: number;
  /** Regular files from a layer: where their bytes are. */
  from?: { layer: number; index: number };
  /** Regular files made here (metadata files): their bytes. */
  bytes?: Uint8Array;
  children?: Map<string, Inode>;
}

const MAX_SYMLINKS = 40;
const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

export function splitTarPath(name: string, what: string): string[] {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new CtrError(`cannot apply ${what}`, `entry ${JSON.stringify(name)} leads outside the image`);
  return parts;
}

export class RootfsTree {
  readonly root: Inode = { type: 'dir', mode: 0o755, mtime: 0, size: 0, children: new Map() };

  /** Apply one layer's entries (headers in archive order). */
  applyLayer(layer: number, entries: TarHeader[], what: string): void {
    const additions: TarHeader[] = [];
    for (const e of entries) {
      const parts = splitTarPath(e.name, what);
      const base = parts[parts.length - 1] ?? '';
      if (base === OPAQUE) {
        const d = this.walk(parts.slice(0, -1), false);
        d?.children?.clear();
      } else if (base.startsWith(WH)) {
        this.walk(parts.slice(0, -1), false)?.children?.delete(base.slice(WH.length));
      } else {
        additions.push(e);
      }
    }
    for (const e of additions) this.add(layer, e, what);
  }

  private add(layer: number, e: TarHeader, what: string): void {
    const parts = splitTarPath(e.name, what);
    const mode = e.mode & 0o7777;
    if (parts.length === 0) {
      if (e.type === 'directory') Object.assign(this.root, { mode, mtime: e.mtime });
      return;
    }
    const parent = this.walk(parts.slice(0, -1), true)!;
    const name = parts[parts.length - 1];
    const old = parent.children!.get(name);
    const base = { mode, mtime: e.mtime, size: 0 };
    switch (e.type) {
      case 'directory':
        if (old?.type === 'dir') Object.assign(old, { mode, mtime: e.mtime });
        else parent.children!.set(name, { ...base, type: 'dir', children: new Map() });
        return;
      case 'file': case 'contiguous-file': case 'unknown': // a type flag tar-stream does not know: its data, as a file
        parent.children!.set(name, { ...base, type: 'file', size: e.size, from: { layer, index: e.index } });
        return;
      case 'symlink':
        parent.children!.set(name, { ...base, type: 'symlink', target: e.linkname ?? '' });
        return;
      case 'link': {
        const linkParts = splitTarPath(e.linkname ?? '', what);
        const dir = this.walk(linkParts.slice(0, -1), false);
        const target = linkParts.length ? dir?.children?.get(linkParts[linkParts.length - 1]) : undefined;
        if (!target) throw new CtrError(`cannot apply ${what}`, `hard link ${e.name} points to ${e.linkname}, which is not in the image`);
        if (target.type === 'dir') throw new CtrError(`cannot apply ${what}`, `hard link ${e.name} points to directory ${e.linkname}`);
        if (target !== old) parent.children!.set(name, target);
        return;
      }
      case 'character-device': case 'block-device':
        parent.children!.set(name, { ...base, type: e.type === 'character-device' ? 'char' : 'block', rdev: makedev(e.devmajor ?? 0, e.devminor ?? 0) });
        return;
      case 'fifo':
        parent.children!.set(name, { ...base, type: 'fifo' });
        return;
      default:
        return; // pax/GNU extension records are folded in by the tar reader; others ignored
    }
  }

  /**
   * The directory at `parts`, following symlinks inside the tree. With `create`, missing
   * directories are made and a non-directory in the way is replaced by one.
   */
  walk(parts: string[], create: boolean): Inode | undefined {
    const queue = [...parts];
    const stack: Inode[] = [this.root];
    let links = 0;
    while (queue.length) {
      const name = queue.shift()!;
      const cur = stack[stack.length - 1];
      if (name === '.' || name === '') continue;
      if (name === '..') {
        if (stack.length > 1) stack.pop();
        continue;
      }
      let next = cur.children!.get(name);
      if (next?.type === 'symlink') {
        if (++links > MAX_SYMLINKS) return undefined;
        const t = next.target!;
        if (t.startsWith('/')) stack.length = 1;
        queue.unshift(...t.split('/'));
        continue;
      }
      if (!next || next.type !== 'dir') {
        if (!create) return undefined;
        next = { type: 'dir', mode: 0o755, mtime: 0, size: 0, children: new Map() };
        cur.children!.set(name, next);
      }
      stack.push(next);
    }
    return stack[stack.length - 1];
  }

  /** Whether a path exists (the last component not followed). */
  has(path: string): boolean {
    const parts = splitTarPath(path, path);
    if (!parts.length) return true;
    return !!this.walk(parts.slice(0, -1), false)?.children?.has(parts[parts.length - 1]);
  }

  /** Put a made-up entry at `path` (parents created), replacing what is there. */
  put(path: string, inode: Inode): void {
    const parts = splitTarPath(path, path);
    this.walk(parts.slice(0, -1), true)!.children!.set(parts[parts.length - 1], inode);
  }

  /** Every name in the tree, parents before children, names in byte order. */
  *entries(): Generator<{ path: string; inode: Inode }> {
    const stack: Array<{ path: string; inode: Inode }> = [{ path: '', inode: this.root }];
    while (stack.length) {
      const e = stack.pop()!;
      yield e;
      if (e.inode.type !== 'dir') continue;
      const kids = [...e.inode.children!.entries()].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
      for (let i = kids.length - 1; i >= 0; i--) stack.push({ path: e.path ? `${e.path}/${kids[i][0]}` : kids[i][0], inode: kids[i][1] });
    }
  }
}
