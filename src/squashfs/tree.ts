// The in-memory directory tree the writer builds while entries arrive (in any order: a
// directory walk, or a tar stream where a file's parent may never get its own entry).
// Pure bookkeeping: no fs, no FFI. At the end, `numberInodes()` fixes the order in which
// inodes are written: SquashFS directory entries refer to their children's inodes, so
// every child comes before its directory and the root comes last (as gensquashfs does).

import { CtrError } from '../errors.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket' | 'hardlink';

export type NodeType = Exclude<EntryType, 'hardlink'>;

/**
 * One name in the tree. A class with every field set in the constructor, so that V8 sees a
 * single object shape however the node was made: the writer creates one per source file,
 * and polymorphic property access was a measurable share of its main-thread time.
 */
export class Node {
  parent: Node | null = null;
  /** Directories: children by name. */
  children: Map<string, Node> | undefined;
  /** A hard link: the node whose inode this name shares. */
  link: Node | undefined = undefined;
  /** Symlink target. */
  target: string | undefined = undefined;
  /** Device number for char/block devices, as in stat.rdev. */
  rdev = 0;
  /** Index into the xattr table, if any. */
  xattrIdx: number | undefined = undefined;
  /** Number of names for this inode (hard links included). */
  nlink: number;
  /** Regular files: the block processor's inode slot; -1 for none. */
  slot = -1;
  /** Directory created implicitly as a parent; an explicit entry may still set its attributes. */
  implicit = false;
  /**
   * 1-based, in write order (numberInodes); 0 until then. What finish() computes late (inode
   * references, sorted children) is kept outside the node: a field that changes
   * representation after the walk makes V8 migrate every node.
   */
  inodeNum = 0;

  constructor(
    public name: string,
    public type: NodeType,
    /** Permission bits only (07777). */
    public mode: number,
    public uid: number,
    public gid: number,
    public mtime: number,
  ) {
    this.children = type === 'dir' ? new Map() : undefined;
    this.nlink = type === 'dir' ? 2 : 1;
  }
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

/** Why `name` cannot be one path component, or undefined when it can. */
export function badName(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return `invalid name ${JSON.stringify(name)}`;
  if (name.includes('/')) return `name ${JSON.stringify(name)} contains '/'`;
  // At most 3 UTF-8 bytes per UTF-16 unit: only long names need counting.
  if (name.length > 85 && Buffer.byteLength(name) > 255) return 'file name longer than 255 bytes';
  return undefined;
}

export class Tree {
  readonly root: Node;

  constructor(private readonly defaults: { uid: number; gid: number; mtime: number }) {
    this.root = this.makeDir('', 0o755);
    this.root.implicit = true;
  }

  private makeDir(name: string, mode: number): Node {
    return new Node(name, 'dir', mode, this.defaults.uid, this.defaults.gid, this.defaults.mtime);
  }

  /** The directory that holds `parts`' last component, creating missing parents. */
  parentFor(parts: string[], path: string): Node {
    let dir = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const name = parts[i];
      let next = dir.children!.get(name);
      if (!next) {
        next = this.makeDir(name, 0o755);
        next.implicit = true;
        next.parent = dir;
        dir.children!.set(name, next);
        dir.nlink++;
      } else if (next.type !== 'dir' || next.link) {
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
   * Put `node` at `parts` (the root when `parts` is empty); `node.name` must be the last
   * component. Returns the node now at that place: see attach().
   */
  insert(parts: string[], path: string, node: Node): Node {
    if (parts.length === 0) {
      if (node.type !== 'dir') throw new CtrError(`cannot add ${path} to the image`, 'the root must be a directory');
      this.updateDir(this.root, node);
      return this.root;
    }
    return this.attach(this.parentFor(parts, path), node);
  }

  /**
   * Put `node` into the directory `parent` under `node.name`. A directory entry for a
   * directory that already exists only updates its attributes, keeping its children (the
   * existing node is returned); anything else replaces what was there, as extracting a tar
   * archive would.
   */
  attach(parent: Node, node: Node): Node {
    const children = parent.children!;
    const old = children.get(node.name);
    if (old !== undefined) {
      if (old.type === 'dir' && node.type === 'dir' && !old.link && !node.link) {
        this.updateDir(old, node);
        return old;
      }
      this.unlink(old);
    }
    node.parent = parent;
    if (node.link) node.link.nlink++;
    else if (node.type === 'dir') parent.nlink++;
    children.set(node.name, node);
    return node;
  }

  private updateDir(dir: Node, from: Node): void {
    dir.mode = from.mode;
    dir.uid = from.uid;
    dir.gid = from.gid;
    dir.mtime = from.mtime;
    dir.xattrIdx = from.xattrIdx;
    dir.implicit = false;
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

const byName = (a: Node, b: Node) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
// UTF-16 code units from U+D800 up do not sort like the UTF-8 bytes of their code points.
const NOT_BMP_ORDER = /[\ud800-\uffff]/;

/** Children in SquashFS order: by the bytes of their names (strcmp), not by locale. */
export function sortedChildren(dir: Node): Node[] {
  const kids = [...dir.children!.values()];
  // Below U+D800, comparing JS strings unit by unit orders them as their UTF-8 bytes would:
  // no Buffer per name for the usual (ASCII) directory.
  if (!kids.some((k) => NOT_BMP_ORDER.test(k.name))) return kids.sort(byName);
  const keys = new Map(kids.map((k) => [k, Buffer.from(k.name)]));
  return kids.sort((a, b) => Buffer.compare(keys.get(a)!, keys.get(b)!));
}

/**
 * Number inodes in the order they will be written (gensquashfs' order): depth first, a
 * directory's subdirectories before its other children, each directory numbered in its
 * parent's pass (so after its own children), the root last. A hard-linked inode is numbered
 * at the first name met. Returns the unique inodes in write order, and each directory's
 * children in entry order.
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
