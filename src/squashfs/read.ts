// Read a SquashFS image without mounting it (libsquashfs' dir reader and data reader), so
// `ctr inspect` can read /.singularity.d/* straight out of an image, also one that sits at
// a byte offset inside a SIF.

import koffi from 'koffi';
import { CtrError, describeSystemError } from '../errors.js';
import { SQFS_ERROR_NO_ENTRY, SQFS_ERROR_NOT_DIR, SqfsError, check, checkPtr, sqfsErrorWords } from './errors.js';
import { OffsetFile } from './file.js';
import { compressorReadOptions, destroy, nativeView, sqfs } from './lib.js';
import * as S from './structs.js';
import { splitPath } from './tree.js';
import { SUPERBLOCK as SUPER } from './superblock.js';

export type ImageEntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface ImageStat {
  type: ImageEntryType;
  /** Permission bits (07777). */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  inode: number;
  nlink: number;
  /** File size; symlink target length; listing size for directories. */
  size: number;
  /** Symlink target. */
  target?: string;
  /** Device number for char/block devices. */
  rdev?: number;
}

export interface DirEntry {
  name: string;
  type: ImageEntryType;
}

const TYPE_BY_INODE: Record<number, ImageEntryType> = {
  1: 'dir', 2: 'file', 3: 'symlink', 4: 'block', 5: 'char', 6: 'fifo', 7: 'socket',
  8: 'dir', 9: 'file', 10: 'symlink', 11: 'block', 12: 'char', 13: 'fifo', 14: 'socket',
};

const READ_CHUNK = 1 << 24;

/** Decode the parts of a native sqfs_inode_generic_t we report. */
function decodeInode(p: bigint): { t: number; stat: Omit<ImageStat, 'uid' | 'gid'>; uidIdx: number; gidIdx: number } {
  const head = nativeView(p, S.INODE.size);
  const t = head.getUint16(S.INODE.type, true);
  const type = TYPE_BY_INODE[t];
  if (!type) throw new SqfsError('cannot read SquashFS inode', -5);
  const d = S.INODE.data;
  const u32 = (o: number) => head.getUint32(d + o, true);
  let nlink = 1, size = 0, target: string | undefined, rdev: number | undefined;
  switch (t) {
    case S.INODE_TYPE.DIR: nlink = u32(4); size = head.getUint16(d + 8, true); break;
    case S.INODE_TYPE.EXT_DIR: nlink = u32(0); size = u32(4); break;
    case S.INODE_TYPE.FILE: size = u32(12); break;
    case S.INODE_TYPE.EXT_FILE: size = Number(head.getBigUint64(d + 8, true)); nlink = u32(24); break;
    case S.INODE_TYPE.SLINK: case S.INODE_TYPE.EXT_SLINK: {
      nlink = u32(0); size = u32(4);
      target = Buffer.from(new Uint8Array(koffi.view(p + BigInt(S.INODE.extra), size))).toString('utf8');
      break;
    }
    case S.INODE_TYPE.BDEV: case S.INODE_TYPE.CDEV: case S.INODE_TYPE.EXT_BDEV: case S.INODE_TYPE.EXT_CDEV:
      nlink = u32(0); rdev = u32(4); break;
    default: nlink = u32(0);
  }
  return {
    t,
    uidIdx: head.getUint16(S.INODE.uidIdx, true),
    gidIdx: head.getUint16(S.INODE.gidIdx, true),
    stat: {
      type, mode: head.getUint16(S.INODE.mode, true) & 0o7777, mtime: head.getUint32(S.INODE.modTime, true),
      inode: head.getUint32(S.INODE.inodeNumber, true), nlink, size,
      ...(target !== undefined ? { target } : {}), ...(rdev !== undefined ? { rdev } : {}),
    },
  };
}

export class SquashfsReader {
  private readonly lib = sqfs();
  private file?: OffsetFile;
  private superPtr = 0n;
  private cmp = 0n;
  private ids = 0n;
  private dirRd = 0n;
  private dataRd = 0n;
  private idCache = new Map<number, number>();

  private constructor(private readonly image: string) {}

  static open(path: string, opts: { offset?: number } = {}): SquashfsReader {
    const r = new SquashfsReader(path);
    try {
      r.init(path, opts.offset ?? 0);
    } catch (err) {
      r.close();
      throw err;
    }
    return r;
  }

  private ck(rc: number, what: string): number {
    return check(rc, what, () => this.file?.lastError);
  }

  private init(path: string, offset: number): void {
    const L = this.lib;
    const what = `cannot open SquashFS image ${path}${offset ? ` at offset ${offset}` : ''}`;
    try {
      this.file = new OffsetFile(path, { offset });
    } catch (err) {
      throw new CtrError(what, describeSystemError(err), { cause: err });
    }
    const fh = this.file.handle;
    this.superPtr = koffi.alloc(S.sqfs_super_t, 1) as bigint;
    this.ck(L.sqfs_super_read(this.superPtr, fh), what);
    const sv = nativeView(this.superPtr, koffi.sizeof(S.sqfs_super_t));
    const blockSize = sv.getUint32(SUPER.block_size, true);
    const cfg = Buffer.alloc(koffi.sizeof(S.sqfs_compressor_config_t));
    this.ck(L.sqfs_compressor_config_init(cfg, sv.getUint16(SUPER.compression_id, true), blockSize, S.SQFS_COMP_FLAG_UNCOMPRESS), what);
    const out: (bigint | null)[] = [null];
    this.ck(L.sqfs_compressor_create(cfg, out), `${what}: compressor`);
    this.cmp = out[0]!;
    if (sv.getUint16(SUPER.flags, true) & S.SQFS_FLAG_COMPRESSOR_OPTIONS) {
      this.ck(compressorReadOptions(this.cmp, fh), `${what}: compressor options`);
    }
    this.ids = checkPtr(L.sqfs_id_table_create(0), what);
    this.ck(L.sqfs_id_table_read(this.ids, fh, this.superPtr, this.cmp), `${what}: id table`);
    // The dir reader keeps `superPtr`: it lives (koffi-allocated) until close().
    this.dirRd = checkPtr(L.sqfs_dir_reader_create(this.superPtr, this.cmp, fh, 0), `${what}: directory reader`);
    this.dataRd = checkPtr(L.sqfs_data_reader_create(fh, blockSize, this.cmp, 0), `${what}: data reader`);
    this.ck(L.sqfs_data_reader_load_fragment_table(this.dataRd, this.superPtr), `${what}: fragment table`);
  }

  private id(idx: number): number {
    let id = this.idCache.get(idx);
    if (id === undefined) {
      const out = [0];
      this.ck(this.lib.sqfs_id_table_index_to_id(this.ids, idx, out), `cannot read ${this.image}: id table`);
      id = out[0];
      this.idCache.set(idx, id);
    }
    return id;
  }

  /** Run `fn` with the native inode at `path` (no symlinks followed), freeing it after. */
  private withInode<T>(path: string, fn: (inode: bigint) => T): T {
    if (!this.dirRd) throw new Error('SquashfsReader used after close()');
    const L = this.lib;
    const parts = splitPath(path);
    const out: (bigint | null)[] = [null];
    let rc: number;
    if (parts.length === 0) {
      rc = L.sqfs_dir_reader_get_root_inode(this.dirRd, out);
    } else {
      const root: (bigint | null)[] = [null];
      this.ck(L.sqfs_dir_reader_get_root_inode(this.dirRd, root), `cannot read ${this.image}: root inode`);
      try {
        rc = L.sqfs_dir_reader_find_by_path(this.dirRd, root[0], parts.join('/'), out);
      } finally {
        L.sqfs_free(root[0]);
      }
    }
    if (rc === SQFS_ERROR_NO_ENTRY || rc === SQFS_ERROR_NOT_DIR) {
      throw new CtrError(`cannot find /${parts.join('/')} in ${this.image}`, sqfsErrorWords(rc));
    }
    this.ck(rc, `cannot read /${parts.join('/')} in ${this.image}`);
    try {
      return fn(out[0]!);
    } finally {
      L.sqfs_free(out[0]);
    }
  }

  private statOf(inode: bigint): ImageStat {
    const { stat, uidIdx, gidIdx } = decodeInode(inode);
    return { ...stat, uid: this.id(uidIdx), gid: this.id(gidIdx) };
  }

  stat(path: string): ImageStat {
    return this.withInode(path, (inode) => this.statOf(inode));
  }

  /** Entries of a directory, in image order (bytewise sorted), without '.' and '..'. */
  readdir(path: string): DirEntry[] {
    return this.readdirWith(path, (name, type) => ({ name, type }));
  }

  private readdirWith<T>(path: string, each: (name: string, type: ImageEntryType, rd: bigint) => T): T[] {
    const L = this.lib;
    const where = `/${splitPath(path).join('/')}`;
    return this.withInode(path, (inode) => {
      const t = decodeInode(inode).stat.type;
      if (t !== 'dir') throw new CtrError(`cannot list ${where} in ${this.image}`, 'Not a directory');
      this.ck(L.sqfs_dir_reader_open_dir(this.dirRd, inode, 0), `cannot list ${where} in ${this.image}`);
      const result: T[] = [];
      const out: (bigint | null)[] = [null];
      for (;;) {
        const rc = this.ck(L.sqfs_dir_reader_read(this.dirRd, out), `cannot list ${where} in ${this.image}`);
        if (rc > 0) break;
        const ent = out[0]!;
        try {
          const hv = nativeView(ent, 8);
          const type = TYPE_BY_INODE[hv.getUint16(4, true)];
          const nameLen = hv.getUint16(6, true) + 1;
          const name = Buffer.from(new Uint8Array(koffi.view(ent + 8n, nameLen))).toString('utf8');
          result.push(each(name, type, this.dirRd));
        } finally {
          L.sqfs_free(ent);
        }
      }
      return result;
    });
  }

  readlink(path: string): string {
    const st = this.stat(path);
    if (st.type !== 'symlink') throw new CtrError(`cannot read link /${splitPath(path).join('/')} in ${this.image}`, 'not a symbolic link');
    return st.target!;
  }

  /** The whole contents of a regular file (symlinks are not followed). */
  readFile(path: string): Buffer {
    const L = this.lib;
    const where = `/${splitPath(path).join('/')}`;
    return this.withInode(path, (inode) => {
      const { stat } = decodeInode(inode);
      if (stat.type !== 'file') throw new CtrError(`cannot read ${where} in ${this.image}`, stat.type === 'dir' ? 'Is a directory' : 'not a regular file');
      const buf = Buffer.allocUnsafe(stat.size);
      let off = 0;
      while (off < stat.size) {
        const want = Math.min(READ_CHUNK, stat.size - off);
        const n = this.ck(L.sqfs_data_reader_read(this.dataRd, inode, off, buf.subarray(off, off + want), want), `cannot read ${where} in ${this.image}`);
        if (n === 0) throw new CtrError(`cannot read ${where} in ${this.image}`, 'file data ends early');
        off += n;
      }
      return buf;
    });
  }

  /** Visit every entry depth first in image order, the root ('/') first. */
  walk(cb: (path: string, stat: ImageStat) => void): void {
    const visit = (dir: string) => {
      const kids = this.readdirWith(dir, (name, type, rd) => {
        const out: (bigint | null)[] = [null];
        this.ck(this.lib.sqfs_dir_reader_get_inode(rd, out), `cannot read ${dir}/${name} in ${this.image}`);
        try {
          return { name, type, stat: this.statOf(out[0]!) };
        } finally {
          this.lib.sqfs_free(out[0]);
        }
      });
      for (const k of kids) {
        const p = dir === '/' ? `/${k.name}` : `${dir}/${k.name}`;
        cb(p, k.stat);
        if (k.type === 'dir') visit(p);
      }
    };
    cb('/', this.stat('/'));
    visit('/');
  }

  close(): void {
    destroy(this.dataRd);
    destroy(this.dirRd);
    destroy(this.ids);
    destroy(this.cmp);
    this.dataRd = this.dirRd = this.ids = this.cmp = 0n;
    if (this.superPtr) koffi.free(this.superPtr);
    this.superPtr = 0n;
    this.file?.close();
    this.file = undefined;
  }
}
