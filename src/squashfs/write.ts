// SquashFS writer over libsquashfs 1.2. Version 1.2.0 has no public tree writer (that lives
// in gensquashfs' private libcommon), so this drives the pieces the way gensquashfs does:
//
//   file data  → block processor (compresses on `workers` threads) → block writer → file
//   fragments  → fragment table
//   at finish  → inodes (meta writer, children before parents, root last)
//                directories (dir writer into a second, in-memory meta writer)
//                fragment table, id table, xattr table, super block, padding to 4 KiB
//
// Entries can arrive in any order (a tar stream) and a file's data is consumed during
// add(), so a caller never has to keep it around. The output is an `OffsetFile`, which lets
// the image start at a byte offset inside a bigger file (a SIF).

import { sourceDateEpoch } from '../files.js';
import fs from 'node:fs';
import os from 'node:os';
import koffi from 'koffi';
import { CtrError, describeSystemError } from '../errors.js';
import { SQFS_ERROR_UNSUPPORTED, check, checkPtr } from './errors.js';
import { OffsetFile } from './file.js';
import { compressorWriteOptions, destroy, memcpy, nativeView, sqfs } from './lib.js';
import * as S from './structs.js';
import { type EntryType, Node, type NodeType, Tree, badName, numberInodes, pathOf, splitPath } from './tree.js';
import { SUPERBLOCK as SUPER } from './superblock.js';
import { type FileData, isStream, type TreeEntry, type WriterOptions } from './entry.js';
import { InodeSlots } from './slots.js';
import { deviceInode, setCommonFields, symlinkInode, TYPE_BITS } from './inodes.js';

export type { EntryType, Node } from './tree.js';
export type CompressorName = S.CompressorName;

export type { FileData, TreeEntry, WriterOptions } from './entry.js';

const DEV_BLOCK_SIZE = 4096;
const READ_CHUNK = 1 << 20;
/**
 * Blocks queued for the compressor threads. gensquashfs allows 10 per thread; the main
 * thread only drains finished blocks once the queue is that full, and then waits for the
 * oldest, so a short queue stalls it behind one slow block while other threads idle. We
 * allow 64 per thread, within 64 MiB of queued data (at least gensquashfs' 10 per thread).
 */
const backlogFor = (workers: number, blockSize: number) =>
  Math.max(10 * workers, Math.min(64 * workers, Math.floor((64 << 20) / blockSize)));


const clampTime = (t: number) => Math.min(0xffffffff, Math.max(0, Math.floor(t)));


export class SquashfsWriter {
  private readonly lib = sqfs();
  private readonly file: OffsetFile;
  private readonly tree: Tree;
  private readonly fixedMtime?: number;
  private readonly superPtr: bigint;
  private readonly superView: DataView;
  private cmp = 0n;
  private uncmp = 0n;
  private blkwr = 0n;
  private frag = 0n;
  private proc = 0n;
  private ids = 0n;
  private im = 0n;
  private dm = 0n;
  private dirwr = 0n;
  private xwr = 0n;
  /** Inode slots for the block processor: native arrays of pointers, with a view on each. */
  private readonly slots = new InodeSlots();
  private idIndex = new Map<number, number>();
  private readBuf = Buffer.allocUnsafeSlow(READ_CHUNK);
  /** Native scratch for sqfs_meta_writer_get_position (u64 block, u32 offset), and its view. */
  private posPtr = 0n;
  private posView = new Uint32Array(0);
  /** A copy of an inode's fixed part, edited here and copied back (see finish()). */
  private readonly inodeBuf = Buffer.alloc(S.INODE.size);
  private busy = false;
  private state: 'open' | 'finished' | 'closed' = 'open';

  /** `out`: a path (created; kept up to `offset` and cut there) or an open read-write descriptor. */
  constructor(out: string | number, opts: WriterOptions) {
    const compId = S.COMPRESSOR_IDS[opts.compressor];
    if (!compId) throw new CtrError('cannot create SquashFS image', `unknown compressor ${JSON.stringify(opts.compressor)}`);
    const blockSize = opts.blockSize ?? 128 * 1024;
    if (blockSize < 4096 || blockSize > 1 << 20 || (blockSize & (blockSize - 1)) !== 0) {
      throw new CtrError('cannot create SquashFS image', `block size ${blockSize} is not a power of two from 4 KiB to 1 MiB`);
    }
    const workers = Math.max(1, opts.workers ?? os.availableParallelism());
    this.fixedMtime = opts.mtime ?? sourceDateEpoch();
    const superMtime = clampTime(this.fixedMtime ?? Date.now() / 1000);
    this.tree = new Tree({ uid: 0, gid: 0, mtime: superMtime });

    const what = typeof out === 'string' ? `cannot create SquashFS image ${out}` : 'cannot create SquashFS image';
    try {
      this.file = new OffsetFile(out, { offset: opts.offset, write: true });
    } catch (err) {
      throw new CtrError(what, describeSystemError(err), { cause: err });
    }
    this.superPtr = koffi.alloc(S.sqfs_super_t, 1) as bigint;
    this.superView = nativeView(this.superPtr, koffi.sizeof(S.sqfs_super_t));
    try {
      this.setup(opts.compressor, compId, blockSize, opts.level, workers, superMtime, what);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** `what` may be a function: messages naming a path are only built when a call fails. */
  private ck(rc: number, what: string | (() => string)): number {
    if (rc >= 0) return rc;
    return check(rc, typeof what === 'string' ? what : what(), () => this.file.lastError);
  }

  private setup(compName: string, compId: number, blockSize: number, level: number | undefined, workers: number, mtime: number, what: string) {
    const L = this.lib;
    const makeCompressor = (flags: number): bigint => {
      const cfg = Buffer.alloc(koffi.sizeof(S.sqfs_compressor_config_t));
      this.ck(L.sqfs_compressor_config_init(cfg, compId, blockSize, flags), `${what}: compressor setup`);
      if (level !== undefined && !(flags & S.SQFS_COMP_FLAG_UNCOMPRESS)) cfg.writeUInt32LE(level, koffi.offsetof(S.sqfs_compressor_config_t, 'level'));
      const out: (bigint | null)[] = [null];
      const rc = L.sqfs_compressor_create(cfg, out);
      if (rc === SQFS_ERROR_UNSUPPORTED) throw new CtrError(what, `compressor ${compName} is not built into this libsquashfs`);
      this.ck(rc, `${what}: cannot create the ${compName} compressor (level ${level ?? 'default'})`);
      return out[0]!;
    };
    this.cmp = makeCompressor(0);
    this.uncmp = makeCompressor(S.SQFS_COMP_FLAG_UNCOMPRESS);

    this.ck(L.sqfs_super_init(this.superPtr, blockSize, mtime, compId), `${what}: super block`);
    // Reserve the super block, then the compressor options right after it.
    this.ck(L.sqfs_super_write(this.superPtr, this.file.handle), what);
    const rc = this.ck(compressorWriteOptions(this.cmp, this.file.handle), `${what}: compressor options`);
    if (rc > 0) this.superView.setUint16(SUPER.flags, this.superView.getUint16(SUPER.flags, true) | S.SQFS_FLAG_COMPRESSOR_OPTIONS, true);

    this.blkwr = checkPtr(L.sqfs_block_writer_create(this.file.handle, DEV_BLOCK_SIZE, 0), `${what}: block writer`);
    this.frag = checkPtr(L.sqfs_frag_table_create(0), `${what}: fragment table`);
    const procOut: (bigint | null)[] = [null];
    this.ck(L.sqfs_block_processor_create_ex({
      size: koffi.sizeof(S.sqfs_block_processor_desc_t),
      max_block_size: blockSize,
      num_workers: workers,
      max_backlog: backlogFor(workers, blockSize),
      cmp: this.cmp,
      wr: this.blkwr,
      tbl: this.frag,
      file: this.file.handle,
      uncmp: this.uncmp,
    }, procOut), `${what}: block processor`);
    this.proc = procOut[0]!;
    this.ids = checkPtr(L.sqfs_id_table_create(0), `${what}: id table`);
    this.im = checkPtr(L.sqfs_meta_writer_create(this.file.handle, this.cmp, 0), `${what}: inode writer`);
    this.dm = checkPtr(L.sqfs_meta_writer_create(this.file.handle, this.cmp, S.SQFS_META_WRITER_KEEP_IN_MEMORY), `${what}: directory writer`);
    this.dirwr = checkPtr(L.sqfs_dir_writer_create(this.dm, 0), `${what}: directory writer`);
    this.xwr = checkPtr(L.sqfs_xattr_writer_create(0), `${what}: xattr writer`);
    this.posPtr = koffi.alloc('uint64_t', 2) as bigint;
    this.posView = new Uint32Array(koffi.view(this.posPtr, 16));
  }

  /** Add one entry. Resolves once a file's data has been consumed; await it before the next add. */
  async add(entry: TreeEntry): Promise<void> {
    if (this.state !== 'open') throw new Error('SquashfsWriter.add() after finish() or close()');
    if (this.busy) throw new Error('SquashfsWriter.add() called before the previous add() resolved');
    this.busy = true;
    try {
      if (entry.type === 'file' && entry.data !== undefined && isStream(entry.data)) await this.addStream(entry, entry.data);
      else this.addEntry(entry);
    } finally {
      this.busy = false;
    }
  }

  /** add() for an entry whose data is not a stream, done before it returns: no Promise. */
  addSync(entry: TreeEntry): void {
    if (this.state !== 'open') throw new Error('SquashfsWriter.addSync() after finish() or close()');
    if (this.busy) throw new Error('SquashfsWriter.addSync() called before the previous add() resolved');
    if (entry.type === 'file' && entry.data !== undefined && isStream(entry.data)) {
      throw new Error('SquashfsWriter.addSync() cannot take a stream: use add()');
    }
    this.addEntry(entry);
  }

  /** The root directory, for addChild(). */
  get root(): Node {
    return this.tree.root;
  }

  /**
   * The fast path of a directory walk (writeSquashfsFromDir): add `name`, one path
   * component, inside the directory `dir` (root or a node addChild returned), synchronously
   * and without parsing a path. `arg` is what the type needs: a file's source path (read
   * now, `size` bytes as lstat saw them), a symlink's target, a device number, or for
   * 'hardlink' the node whose inode the name shares. Returns the new node.
   */
  addChild(dir: Node, name: string, type: EntryType, mode: number, uid: number, gid: number, mtime: number,
    arg?: string | number | Node, size?: number): Node {
    if (this.state !== 'open') throw new Error('SquashfsWriter.addChild() after finish() or close()');
    if (this.busy) throw new Error('SquashfsWriter.addChild() called before the previous add() resolved');
    if (dir.type !== 'dir' || dir.link) throw new CtrError(`cannot add ${name} to the image`, `${pathOf(dir)} is not a directory`);
    const bad = badName(name);
    if (bad !== undefined) throw new CtrError(`cannot add ${name} to the image`, bad);
    const t = clampTime(this.fixedMtime ?? mtime);
    if (type === 'hardlink') {
      const to = arg instanceof Node ? (arg.link ?? arg) : undefined;
      if (!to || to.type === 'dir') throw new CtrError(`cannot add hard link ${name} to the image`, 'target is not a file');
      const n = new Node(name, to.type, mode & 0o7777, uid, gid, t);
      n.link = to;
      return this.tree.attach(dir, n);
    }
    const n = new Node(name, type, mode & 0o7777, uid, gid, t);
    switch (type) {
      case 'file':
        return this.addFile(dir, n, typeof arg === 'string' ? { path: arg, size } : undefined, undefined);
      case 'symlink':
        if (typeof arg !== 'string') throw new CtrError(`cannot add ${pathOf(dir)}/${name} to the image`, 'symlink without a target');
        n.target = arg;
        break;
      case 'char': case 'block':
        n.rdev = typeof arg === 'number' ? arg : 0;
        break;
    }
    return this.tree.attach(dir, n);
  }

  private baseNode(e: TreeEntry, name: string, type: NodeType, where: string): Node {
    const n = new Node(name, type, e.mode & 0o7777, e.uid ?? 0, e.gid ?? 0, clampTime(this.fixedMtime ?? e.mtime ?? this.tree.root.mtime));
    if (e.xattrs && Object.keys(e.xattrs).length) n.xattrIdx = this.addXattrs(e.xattrs, where);
    return n;
  }

  private addEntry(e: TreeEntry): void {
    const parts = splitPath(e.path);
    const where = '/' + parts.join('/');
    const name = parts.length ? parts[parts.length - 1] : '';
    switch (e.type) {
      case 'dir':
        this.tree.insert(parts, e.path, this.baseNode(e, name, 'dir', where));
        return;
      case 'symlink': {
        if (e.target === undefined) throw new CtrError(`cannot add ${where} to the image`, 'symlink without a target');
        const n = this.baseNode(e, name, 'symlink', where);
        n.target = e.target;
        this.tree.insert(parts, e.path, n);
        return;
      }
      case 'char': case 'block': {
        const n = this.baseNode(e, name, e.type, where);
        n.rdev = e.rdev ?? 0;
        this.tree.insert(parts, e.path, n);
        return;
      }
      case 'fifo': case 'socket':
        this.tree.insert(parts, e.path, this.baseNode(e, name, e.type, where));
        return;
      case 'hardlink': {
        let to = e.target === undefined ? undefined : this.tree.lookup(e.target);
        to = to?.link ?? to;
        if (!to) throw new CtrError(`cannot add hard link ${where} to the image`, `target ${e.target ?? '(none)'} is not in the image`);
        if (to.type === 'dir') throw new CtrError(`cannot add hard link ${where} to the image`, `target ${e.target} is a directory`);
        const n = this.baseNode(e, name, to.type, where);
        n.link = to;
        this.tree.insert(parts, e.path, n);
        return;
      }
      case 'file': {
        if (parts.length === 0) throw new CtrError(`cannot add ${e.path} to the image`, 'the root must be a directory');
        const n = this.baseNode(e, name, 'file', where);
        this.addFile(() => this.tree.parentFor(parts, e.path), n, e.data as Exclude<FileData, AsyncIterable<Uint8Array>> | undefined, where);
        return;
      }
      default:
        throw new CtrError(`cannot add ${where} to the image`, `unknown entry type ${JSON.stringify((e as TreeEntry).type)}`);
    }
  }

  /**
   * Insert the file node `n` into `dir` and store its data. The source is opened before the
   * node is inserted and the node inserted before the block processor starts a file, so an
   * unreadable file or a bad path leaves the writer usable.
   */
  private addFile(dir: Node | (() => Node), n: Node, data: Exclude<FileData, AsyncIterable<Uint8Array>> | undefined, where: string | undefined): Node {
    let fd = -1;
    let ownFd = false;
    let size = -1; // unknown: read to the end
    if (data !== undefined && !(data instanceof Uint8Array)) {
      if ('fd' in data) {
        fd = data.fd;
        size = data.size ?? -1;
      } else if (data.size !== 0) {
        try {
          fd = fs.openSync(data.path, 'r');
        } catch (err) {
          throw new CtrError(`cannot read ${data.path}`, describeSystemError(err), { cause: err });
        }
        ownFd = true;
        size = data.size ?? -1;
      }
    }
    try {
      const node = this.tree.attach(typeof dir === 'function' ? dir() : dir, n);
      node.slot = this.slots.add();
      this.beginFile(node);
      if (data instanceof Uint8Array) this.append(node, data, data.length);
      else if (fd >= 0) this.copyFrom(node, fd, size, 'path' in data! ? data.path : (where ?? pathOf(node)));
      this.ck(this.lib.sqfs_block_processor_end_file(this.proc), () => `cannot write ${pathOf(node)} to the image`);
      return node;
    } finally {
      if (ownFd) fs.closeSync(fd);
    }
  }

  private async addStream(e: TreeEntry, data: AsyncIterable<Uint8Array>): Promise<void> {
    const parts = splitPath(e.path);
    const where = '/' + parts.join('/');
    if (parts.length === 0) throw new CtrError(`cannot add ${e.path} to the image`, 'the root must be a directory');
    const node = this.tree.attach(this.tree.parentFor(parts, e.path), this.baseNode(e, parts[parts.length - 1], 'file', where));
    node.slot = this.slots.add();
    this.beginFile(node);
    for await (const chunk of data) this.append(node, chunk, chunk.length);
    this.ck(this.lib.sqfs_block_processor_end_file(this.proc), () => `cannot write ${pathOf(node)} to the image`);
  }

  private beginFile(node: Node): void {
    const i = node.slot;
    const addr = this.slots.address(i);
    this.ck(this.lib.sqfs_block_processor_begin_file(this.proc, addr, null, 0), () => `cannot write ${pathOf(node)} to the image`);
  }

  private append(node: Node, chunk: Uint8Array, n: number): void {
    if (n > 0) this.ck(this.lib.sqfs_block_processor_append(this.proc, chunk, n), () => `cannot write ${pathOf(node)} to the image`);
  }

  /**
   * Read `fd` from its current position into the block processor: `size` bytes when known
   * (a walker's lstat, a tar header: one read(2) for a small file instead of two; the image
   * gets the size seen then), else to the end.
   */
  private copyFrom(node: Node, fd: number, size: number, src: string): void {
    const buf = this.readBuf;
    let left = size < 0 ? Infinity : size;
    while (left > 0) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, Math.min(buf.length, left), null);
      } catch (err) {
        throw new CtrError(`cannot read ${src}`, describeSystemError(err), { cause: err });
      }
      if (n === 0) break;
      left -= n;
      this.append(node, buf, n);
    }
    if (left > 0 && left !== Infinity) throw new CtrError(`cannot read ${src}`, 'file shrank while it was being read');
  }

  private addXattrs(xattrs: Record<string, Uint8Array | string>, where: string): number {
    const L = this.lib;
    const what = `cannot store extended attributes of ${where}`;
    this.ck(L.sqfs_xattr_writer_begin(this.xwr, 0), what);
    for (const key of Object.keys(xattrs).sort()) {
      const v = xattrs[key];
      const value = typeof v === 'string' ? Buffer.from(v) : v;
      this.ck(L.sqfs_xattr_writer_add(this.xwr, key, value, value.length), `${what}: ${key}`);
    }
    const out = [0];
    this.ck(L.sqfs_xattr_writer_end(this.xwr, out), what);
    return out[0];
  }

  private idx(id: number, what: string): number {
    let i = this.idIndex.get(id);
    if (i === undefined) {
      const out = [0];
      this.ck(this.lib.sqfs_id_table_id_to_index(this.ids, id >>> 0, out), `${what}: uid/gid ${id}`);
      i = out[0];
      this.idIndex.set(id, i);
    }
    return i;
  }

  /** Write the metadata, tables and super block; the image is complete when this resolves. */
  async finish(): Promise<{ bytes: number }> {
    if (this.state !== 'open') throw new Error('SquashfsWriter.finish() called twice or after close()');
    if (this.busy) throw new Error('SquashfsWriter.finish() called before add() resolved');
    const L = this.lib;
    const what = 'cannot write SquashFS image';
    try {
      this.ck(L.sqfs_block_processor_finish(this.proc), `${what}: file data`);
      const { order, sorted } = numberInodes(this.tree.root);
      // Where each inode went, by inode number: (meta block offset << 16) | offset in the block.
      // Below 2^53 (block offsets are byte counts), so plain doubles, not BigInt.
      const refs = new Float64Array(order.length + 1);
      this.superView.setUint32(SUPER.inode_count, order.length, true);
      this.superView.setBigUint64(SUPER.inode_table_start, BigInt(this.file.imageSize), true);

      const pos = this.posView, posBlock = this.posPtr, posOffset = this.posPtr + 8n;
      for (const n of order) {
        const inode = this.makeInode(n, sorted.get(n), refs);
        const native = typeof inode === 'bigint';
        try {
          // Inodes in native memory are copied out, edited and copied back (no view per inode).
          const b = native ? this.inodeBuf : inode;
          if (native) memcpy(b, inode, S.INODE.size);
          setCommonFields(b, n, this.idx(n.uid, what), this.idx(n.gid, what));
          if (native) memcpy(inode, b, S.INODE.size);
          if (n.xattrIdx !== undefined) this.ck(L.sqfs_inode_set_xattr_index(inode, n.xattrIdx), () => `${what}: ${pathOf(n)}`);
          L.sqfs_meta_writer_get_position_raw(this.im, posBlock, posOffset);
          // block * 2^16 + offset: the block offset is a byte count far below 2^37.
          refs[n.inodeNum] = (pos[0] + pos[1] * 2 ** 32) * 65536 + pos[2];
          this.ck(L.sqfs_meta_writer_write_inode(this.im, inode), () => `${what}: inode of ${pathOf(n)}`);
        } finally {
          if (native && n.type !== 'file') L.sqfs_free(inode);
        }
      }
      this.ck(L.sqfs_meta_writer_flush(this.im), `${what}: inode table`);
      this.ck(L.sqfs_meta_writer_flush(this.dm), `${what}: directory table`);
      this.superView.setBigUint64(SUPER.root_inode_ref, BigInt(refs[this.tree.root.inodeNum]), true);
      this.superView.setBigUint64(SUPER.directory_table_start, BigInt(this.file.imageSize), true);
      this.ck(L.sqfs_meta_write_write_to_file(this.dm), `${what}: directory table`);

      const fh = this.file.handle;
      this.ck(L.sqfs_frag_table_write(this.frag, fh, this.superPtr, this.cmp), `${what}: fragment table`);
      this.ck(L.sqfs_id_table_write(this.ids, fh, this.superPtr, this.cmp), `${what}: id table`);
      this.ck(L.sqfs_xattr_writer_flush(this.xwr, fh, this.superPtr, this.cmp), `${what}: xattr table`);
      const used = this.file.imageSize;
      this.superView.setBigUint64(SUPER.bytes_used, BigInt(used), true);
      this.ck(L.sqfs_super_write(this.superPtr, fh), `${what}: super block`);
      const padded = Math.ceil(used / DEV_BLOCK_SIZE) * DEV_BLOCK_SIZE;
      if (padded > used) this.file.writeAt(used, new Uint8Array(padded - used));
      this.state = 'finished';
      return { bytes: padded };
    } finally {
      this.close();
    }
  }

  /**
   * The inode for `n`: files come from the block processor (native memory it allocated),
   * directories from the dir writer (native, freed by the caller), others are built here.
   * The caller fills in the common fields.
   */
  private makeInode(n: Node, kids: Node[] | undefined, refs: Float64Array): bigint | Buffer {
    const L = this.lib;
    const what = () => `cannot write ${pathOf(n)} to the image`;
    switch (n.type) {
      case 'file': {
        const p = this.slots.inode(n.slot);
        if (!p) throw new CtrError(what(), 'the block processor produced no inode');
        if (n.nlink > 1) {
          this.ck(L.sqfs_inode_make_extended(p), what);
          nativeView(p, S.INODE.size).setUint32(S.INODE.data + 24, n.nlink, true); // file_ext.nlink
        }
        return p;
      }
      case 'dir': {
        this.ck(L.sqfs_dir_writer_begin(this.dirwr, 0), what);
        for (const k of kids!) {
          const t = k.link ?? k;
          this.ck(L.sqfs_dir_writer_add_entry(this.dirwr, k.name, t.inodeNum, refs[t.inodeNum], TYPE_BITS[t.type] | t.mode), () => `${what()}: entry ${k.name}`);
        }
        this.ck(L.sqfs_dir_writer_end(this.dirwr), what);
        const parentIno = n.parent ? n.parent.inodeNum : 0;
        return checkPtr(L.sqfs_dir_writer_create_inode(this.dirwr, 0, S.NO_XATTR, parentIno), what());
      }
      case 'symlink':
        return symlinkInode(n);
      default:
        return deviceInode(n);
    }
  }

  /** Free everything. After finish() this is a no-op; before, it abandons the image. */
  close(): void {
    if (this.state === 'closed') return;
    const L = this.lib;
    destroy(this.proc); // first: it references cmp, blkwr, frag, the file and the slots
    this.proc = 0n;
    this.slots.free((p) => L.sqfs_free(p));
    if (this.posPtr) koffi.free(this.posPtr);
    this.posPtr = 0n;
    destroy(this.dirwr);
    destroy(this.dm);
    destroy(this.im);
    destroy(this.xwr);
    destroy(this.ids);
    destroy(this.frag);
    destroy(this.blkwr);
    destroy(this.uncmp);
    destroy(this.cmp);
    this.dirwr = this.dm = this.im = this.xwr = this.ids = this.frag = this.blkwr = this.uncmp = this.cmp = 0n;
    if (this.superPtr) koffi.free(this.superPtr);
    this.file?.close();
    this.state = 'closed';
  }
}
