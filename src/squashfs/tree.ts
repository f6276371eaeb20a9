// The in-memory directory tree the writer builds while entries arrive (in any order: a
// directory walk, or a tar stream where a file's parent may never get its own entry).
// Pure bookkeeping: no fs, no FFI. At the end, `numberInodes()` fixes the order in which
// inodes are written: SquashFS directory entries refer to their children's inodes, so
// every child comes before its directory and the root comes last (as gensquashfs does).

import { CtrError } from '../errors.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket' | 'hardlink';

export interface Node {
  name: string;
  parent: Node | null;
  type: Exclude<EntryType, 'hardlink'>;
  /** Permission bits only (07777). */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** Directories: children by name. */
  children?: Map<string, Node>;
  /** A hard link: the node whose inode this name shares. */
  link?: Node;
  /** Symlink target. */
  target?: string;
  /** Device number for char/block devices, as in stat.rdev. */
  rdev?: number;
  /** Index into the xattr table, if any. */
  xattrIdx?: number;
  /** Number of names for this inode (hard links included). */
  nlink: number;
  /** Regular files: the block processor's inode slot. */
  slot?: number;
  /** Directory created implicitly as a parent; an explicit entry may still set its attributes. */
  implicit?: boolean;
  inodeNum: number;
  inodeRef: bigint;
}

/** Split an image path into components: leading '/' and './' dropped, '..' refused. */
export function splitPath(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  for (const p of parts) {
    if (p === '..') throw new CtrError(`cannot add ${JSON.stringify(path)} to the image`, "path contains '..'");
    if (Buffer.byteLength(p) > 255) throw new CtrError(`cannot add ${JSON.stringify(path)} to the image`, 'file name longer than 255 bytes');
  }
  return parts;
}

export function pathOf(node: Node): string {
  const parts: string[] = [];
  for (let n: Node | null = node; n && n.parent; n = n.parent) parts.push(n.name);
  return '/' + parts.reverse().join('/');
}

export class Tree {
  readonly root: Node;

  constructor(private readonly defaults: { uid: number; gid: number; mtime: number }) {
    this.root = this.makeDir('', null, 0o755);
    this.root.implicit = true;
  }

  private makeDir(name: string, parent: Node | null, mode: number): Node {
    return {
      name, parent, type: 'dir', mode, uid: this.defaults.uid, gid: this.defaults.gid,
      mtime: this.defaults.mtime, children: new Map(), nlink: 2, inodeNum: 0, inodeRef: 0n,
    };
  }

  /** The directory that holds `parts`' last component, creating missing parents. */
  parentFor(parts: string[], path: string): Node {
    let dir = this.root;
    for (const name of parts.slice(0, -1)) {
      let next = dir.children!.get(name);
      if (!next) {
        next = this.makeDir(name, dir, 0o755);
        next.implicit = true;
        dir.children!.set(name, next);
      } else if (next.type !== 'dir') {
        throw new CtrError(`cannot add ${path} to the image`, `${pathOf(next)} is not a directory`);
      }
      dir = next;
    }
    return dir;
  }

  lookup(path: string): Node | undefined {
    let n: Node | undefined = this.root;
    for (const name of splitPath(path)) {
      n = n?.link ? n.link : n;
      n = n?.children?.get(name);
      if (!n) return undefined;
    }
    return n;
  }

  /**
   * Put `node` at `parts` (the root when `parts` is empty). A directory entry for a directory
   * that already exists only updates its attributes, keeping its children; anything else
   * replaces what was there, as extracting a tar archive would.
   */
  insert(parts: string[], path: string, node: Omit<Node, 'name' | 'parent' | 'inodeNum' | 'inodeRef'>): Node {
    if (parts.length === 0) {
      if (node.type !== 'dir') throw new CtrError(`cannot add ${path} to the image`, 'the root must be a directory');
      Object.assign(this.root, { mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime, xattrIdx: node.xattrIdx, implicit: false });
      return this.root;
    }
    const parent = this.parentFor(parts, path);
    const name = parts[parts.length - 1];
    const old = parent.children!.get(name);
    if (old && old.type === 'dir' && node.type === 'dir' && !old.link) {
      Object.assign(old, { mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime, xattrIdx: node.xattrIdx, implicit: false });
      return old;
    }
    if (old) this.unlink(old);
    const full: Node = { ...node, name, parent, inodeNum: 0, inodeRef: 0n };
    if (full.type === 'dir') {
      full.children ??= new Map();
      full.nlink = 2;
      parent.nlink++;
    }
    if (full.link) full.link.nlink++;
    parent.children!.set(name, full);
    return full;
  }

  private unlink(old: Node): void {
    old.parent!.children!.delete(old.name);
    if (old.type === 'dir' && !old.link) old.parent!.nlink--;
    if (old.link) old.link.nlink--;
    else if (old.nlink > 1 && old.type !== 'dir') {
      // Other names still point here: the first of them takes over the inode.
      old.nlink--;
      old.parent = null;
    }
  }
}

/** Children in SquashFS order: by the bytes of their names (strcmp), not by locale. */
export function sortedChildren(dir: Node): Node[] {
  const kids = [...dir.children!.values()];
  const keys = new Map(kids.map((k) => [k, Buffer.from(k.name)]));
  return kids.sort((a, b) => Buffer.compare(keys.get(a)!, keys.get(b)!));
}

/**
 * Number inodes in the order they will be written (gensquashfs' order): depth first, a
 * directory's subdirectories before its other children, each directory numbered in its
 * parent's pass (so after its own children), the root last. A hard-linked inode is numbered
 * at the first name met. Returns the unique inodes in write order.
 */
export function numberInodes(root: Node): { order: Node[]; sorted: Map<Node, Node[]> } {
  const order: Node[] = [];
  const sorted = new Map<Node, Node[]>();
  const visit = (dir: Node) => {
    const kids = sortedChildren(dir);
    sorted.set(dir, kids);
    for (const k of kids) if (k.type === 'dir' && !k.link) visit(k);
    for (const k of kids) {
      const n = k.link ?? k;
      if (n.inodeNum === 0) {
        n.inodeNum = order.length + 1;
        order.push(n);
      }
    }
  };
  visit(root);
  root.inodeNum = order.length + 1;
  order.push(root);
  return { order, sorted };
}
