// Corrupted images for the FUSE server and the launcher's SquashFS checks: a seeded,
// deterministic generator of variants of one small valid image, so any failure can be
// remade from its seed and index (`variant(bases, seed, i)`).
//
// The bases: a tiny tree (directories, a 300-entry directory with long names, small
// files, a fragment-sized file, a multi-block file, a sparse one, symlinks, user.* and
// security.selinux xattrs) as a zstd SquashFS (mksquashfs), the same with every table
// left uncompressed (-noI -noD -noF -noX) so that structures can be edited in place (a
// directory header's count, an entry's name size), and a SIF wrapping the zstd one
// (siftool, the reference tool).
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SIFTOOL } from '../helpers/paths.js';

export interface Bases { sqfs: Buffer; raw: Buffer; sif: Buffer; sifOffset: number }

export interface Variant {
  name: string;
  /** mutation class, for the summary table */
  kind: string;
  bytes: Buffer;
  /** a SIF file (else a bare SquashFS) */
  sif: boolean;
}

/** The source tree. Root-owned security.selinux xattrs need root (the tests run as root). */
export async function makeTree(dir: string): Promise<void> {
  for (const d of ['etc', 'a/b/c', 'data', 'many', 'empty']) await mkdir(join(dir, d), { recursive: true });
  await writeFile(join(dir, 'etc/hello'), 'hello\n');
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(dir, 'a/b/c/deep'), 'deep\n');
  await symlink('../etc/hello', join(dir, 'a/link'));
  await symlink('/nowhere', join(dir, 'a/dangling'));
  let x = 12345;
  const text = (n: number) => Buffer.from(Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return 97 + ((x >> 16) % 8);
  }));
  await writeFile(join(dir, 'data/frag'), text(3000));
  await writeFile(join(dir, 'data/multi'), text(300 * 1024)); // 3 data blocks, compressible
  await writeFile(join(dir, 'data/sparse'), Buffer.alloc(256 * 1024)); // holes
  await writeFile(join(dir, 'data/empty'), '');
  for (let i = 0; i < 300; i++) await writeFile(join(dir, 'many', `${String(i).padStart(3, '0')}-${'x'.repeat(120)}`), `${i}\n`);
  await execa('setfattr', ['-n', 'user.test', '-v', 'value', join(dir, 'etc/hello')]);
  await execa('find', [dir, '-exec', 'setfattr', '-h', '-n', 'security.selinux', '-v', 'system_u:object_r:bin_t:s0', '{}', '+']);
}

export async function makeBases(work: string): Promise<Bases> {
  const tree = join(work, 'tree');
  if (!existsSync(tree)) await makeTree(tree);
  const common = ['-noappend', '-all-root', '-comp', 'zstd', '-xattrs', '-quiet', '-no-progress'];
  await execa('mksquashfs', [tree, join(work, 'base.sqfs'), ...common]);
  await execa('mksquashfs', [tree, join(work, 'raw.sqfs'), ...common, '-noI', '-noD', '-noF', '-noX']);
  const sif = join(work, 'base.sif');
  await execa(SIFTOOL, ['new', sif]);
  await execa(SIFTOOL, ['add', sif, join(work, 'base.sqfs'), '--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', '2']);
  for (const f of ['base.sqfs', 'raw.sqfs', 'base.sif']) await chmod(join(work, f), 0o644);
  const b: Bases = { sqfs: readFileSync(join(work, 'base.sqfs')), raw: readFileSync(join(work, 'raw.sqfs')), sif: readFileSync(sif), sifOffset: 0 };
  b.sifOffset = b.sif.indexOf(b.sqfs.subarray(0, 96));
  if (b.sifOffset < 0) throw new Error('the SquashFS is not inside the SIF');
  return b;
}

/** mulberry32: small, fast, and the same everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Superblock fields: name, byte offset, width. */
export const SB_FIELDS: Array<[string, number, 2 | 4 | 8]> = [
  ['magic', 0, 4], ['inode_count', 4, 4], ['block_size', 12, 4], ['fragment_count', 16, 4], ['compressor', 20, 2],
  ['block_log', 22, 2], ['flags', 24, 2], ['id_count', 26, 2], ['major', 28, 2], ['minor', 30, 2],
  ['root_inode', 32, 8], ['bytes_used', 40, 8], ['id_table', 48, 8], ['xattr_table', 56, 8],
  ['inode_table', 64, 8], ['directory_table', 72, 8], ['fragment_table', 80, 8], ['export_table', 88, 8],
];

export interface Super { [k: string]: bigint }
export function superblock(b: Buffer, at = 0): Super {
  const s: Super = {};
  for (const [name, off, w] of SB_FIELDS) s[name] = w === 8 ? b.readBigUInt64LE(at + off) : BigInt(w === 4 ? b.readUInt32LE(at + off) : b.readUInt16LE(at + off));
  return s;
}

function put(b: Buffer, off: number, w: number, v: bigint): void {
  if (w === 8) b.writeBigUInt64LE(BigInt.asUintN(64, v), off);
  else if (w === 4) b.writeUInt32LE(Number(BigInt.asUintN(32, v)), off);
  else b.writeUInt16LE(Number(BigInt.asUintN(16, v)), off);
}

/**
 * The uncompressed bytes of a run of metadata blocks in the raw base, from START until
 * END, and for each byte its position in the file, so that a structure can be edited
 * where it lies even when it straddles two blocks.
 */
export function metadata(b: Buffer, start: number, end: number): { data: Buffer; at: number[] } {
  const parts: Buffer[] = [];
  const at: number[] = [];
  for (let pos = start; pos + 2 <= end;) {
    const hdr = b.readUInt16LE(pos);
    const size = hdr & 0x7fff || 0x8000;
    if (!(hdr & 0x8000)) throw new Error('compressed metadata block in the raw base');
    parts.push(b.subarray(pos + 2, pos + 2 + size));
    for (let i = 0; i < size; i++) at.push(pos + 2 + i);
    pos += 2 + size;
  }
  return { data: Buffer.concat(parts), at };
}

function poke(b: Buffer, at: number[], off: number, w: number, v: bigint): void {
  const tmp = Buffer.alloc(8);
  put(tmp, 0, w, v);
  for (let i = 0; i < w && off + i < at.length; i++) b[at[off + i]] = tmp[i];
}

/** Where each directory listing's header and each entry sits in the raw directory table. */
export function dirLayout(raw: Buffer): { headers: number[]; entries: number[]; at: number[] } {
  const s = superblock(raw);
  const fragIndex = Number(raw.readBigUInt64LE(Number(s.fragment_table)));
  const { data, at } = metadata(raw, Number(s.directory_table), fragIndex);
  const headers: number[] = [], entries: number[] = [];
  for (let p = 0; p + 12 <= data.length;) {
    const count = data.readUInt32LE(p) + 1;
    headers.push(p);
    p += 12;
    for (let i = 0; i < count && p + 8 <= data.length; i++) {
      entries.push(p);
      p += 8 + data.readUInt16LE(p + 6) + 1;
    }
  }
  return { headers, entries, at };
}

const INTERESTING = [0n, 1n, 2n, 3n, 0x7fn, 0x80n, 0xffn, 0x100n, 0xfffn, 0x1000n, 0x7fffn, 0x8000n, 0x8001n, 0xffffn,
  0x10000n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0xffffffffffffffffn];

/** The named crashes of libsquashfuse 0.1.105 (each killed the server before the fix). */
export function namedCases(b: Bases): Variant[] {
  const out: Variant[] = [];
  const edit = (name: string, base: Buffer, f: (x: Buffer) => void): void => {
    const x = Buffer.from(base);
    f(x);
    out.push({ name, kind: 'named', bytes: x, sif: false });
  };
  const d = dirLayout(b.raw);
  const s = superblock(b.raw);
  edit('dir header count 0x8001', b.raw, (x) => poke(x, d.at, d.headers[0], 4, 0x8001n));
  edit('dir name size 0xffff', b.raw, (x) => poke(x, d.at, d.entries[0] + 6, 2, 0xffffn));
  edit('block_size 0', b.sqfs, (x) => x.writeUInt32LE(0, 12));
  edit('block_size 1', b.sqfs, (x) => x.writeUInt32LE(1, 12));
  edit('id_count 0', b.sqfs, (x) => x.writeUInt16LE(0, 26));
  const used = s.bytes_used;
  edit('tables in the last bytes', b.raw, (x) => {
    for (const f of ['id_table', 'fragment_table', 'export_table']) x.writeBigUInt64LE(used - 2n, SB_FIELDS.find((e) => e[0] === f)![1]);
  });
  return out;
}

/** Variant I of SEED: the same bytes every time. */
export function variant(b: Bases, seed: number, i: number): Variant {
  const r = prng((seed * 1000003 + i) >>> 0);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const int = (n: number) => Math.floor(r() * n);
  const kinds = ['superblock', 'inode table', 'directory table', 'fragment table', 'id table', 'truncation', 'byte flips', 'sif'];
  const kind = kinds[i % kinds.length];
  const useRaw = r() < 0.5;
  const base = kind === 'sif' ? b.sif : useRaw || ['inode table', 'directory table'].includes(kind) ? b.raw : b.sqfs;
  const x = Buffer.from(base);
  const s = superblock(base, kind === 'sif' ? b.sifOffset : 0);
  let name = '';
  const value = (orig: bigint) => pick([...INTERESTING, orig + 1n, orig - 1n, orig ^ (1n << BigInt(int(32))), s.bytes_used, s.bytes_used - 2n, BigInt(x.length)]);
  switch (kind) {
    case 'superblock': {
      const [f, off, w] = pick(SB_FIELDS);
      const v = value(s[f]);
      put(x, off, w, v);
      name = `${useRaw ? 'raw' : 'zstd'} ${f} = ${v}`;
      break;
    }
    case 'inode table': {
      const { at } = metadata(x, Number(s.inode_table), Number(s.directory_table));
      const off = int(at.length - 4) & ~1, w = pick([2, 4] as const);
      const v = pick(INTERESTING);
      poke(x, at, off, w, v);
      name = `inode table +${off} (${w} bytes) = ${v}`;
      break;
    }
    case 'directory table': {
      const d = dirLayout(x);
      const fields: Array<[string, number, number]> = [['header count', 0, 4], ['header start_block', 4, 4], ['header inode_number', 8, 4]];
      const efields: Array<[string, number, number]> = [['entry offset', 0, 2], ['entry inode delta', 2, 2], ['entry type', 4, 2], ['entry name size', 6, 2]];
      const hdr = r() < 0.35;
      const [f, foff, w] = hdr ? pick(fields) : pick(efields);
      const which = hdr ? pick(d.headers) : pick(d.entries);
      const v = pick(INTERESTING);
      poke(x, d.at, which + foff, w, v);
      name = `${f} at +${which} = ${v}`;
      break;
    }
    case 'fragment table':
    case 'id table': {
      const start = Number(kind === 'id table' ? s.id_table : s.fragment_table);
      const ptr = x.readBigUInt64LE(start);
      if (r() < 0.5) {
        const v = value(ptr);
        x.writeBigUInt64LE(BigInt.asUintN(64, v), start);
        name = `${kind} index[0] = ${v}`;
      } else {
        // The table's entries: 16-byte fragment entries, 4-byte ids, in the block indexed.
        const off = Number(ptr) + 2 + (kind === 'id table' ? 0 : pick([0, 8]));
        const w = kind === 'id table' ? 4 : pick([4, 8] as const);
        const v = pick(INTERESTING);
        if (useRaw || kind === 'id table') put(x, off, w, v); else x[off] ^= 0xff;
        name = `${kind} entry +${off - Number(ptr) - 2} = ${v}`;
      }
      break;
    }
    case 'truncation': {
      const marks = [Number(s.inode_table), Number(s.directory_table), Number(s.fragment_table), Number(s.id_table), Number(s.bytes_used)];
      const at = r() < 0.5 ? Math.max(0, pick(marks) + int(17) - 8) : int(x.length);
      name = `${useRaw ? 'raw' : 'zstd'} truncated at ${at}`;
      return { name, kind, bytes: x.subarray(0, at), sif: false };
    }
    case 'byte flips': {
      const n = 1 + int(8);
      const meta = r() < 0.7;
      const lo = meta ? Number(s.inode_table) : 0;
      const flips: number[] = [];
      for (let k = 0; k < n; k++) {
        const off = lo + int(Number(s.bytes_used) - lo);
        x[off] ^= 1 << int(8);
        flips.push(off);
      }
      name = `${useRaw ? 'raw' : 'zstd'} ${n} bit flips in ${meta ? 'metadata' : 'anywhere'} at ${flips.join(',')}`;
      break;
    }
    case 'sif': {
      // Global header fields, then the partition's descriptor (the second one siftool
      // writes is the partition; the first descriptor is at descriptorsOffset).
      const descs = Number(x.readBigInt64LE(96));
      const targets: Array<[string, number, number]> = [
        ['magic', 32, 2], ['version', 42, 2], ['descriptorsFree', 80, 8], ['descriptorsTotal', 88, 8],
        ['descriptorsOffset', 96, 8], ['descriptorsSize', 104, 8], ['dataOffset', 112, 8], ['dataSize', 120, 8],
      ];
      for (const [f, o, w] of [['dataType', 0, 4], ['used', 4, 2], ['offset', 17, 8], ['size', 25, 8], ['fsType', 201, 4], ['partType', 205, 4]] as const) {
        targets.push([`descriptor ${f}`, descs + o, w]);
      }
      const [f, off, w] = pick(targets);
      const v = pick([...INTERESTING, BigInt(b.sifOffset), BigInt(b.sifOffset + 1), BigInt(x.length), BigInt(x.length - 96)]);
      put(x, off, w, v);
      name = `sif ${f} = ${v}`;
      return { name, kind, bytes: x, sif: true };
    }
  }
  return { name, kind, bytes: x, sif: kind === 'sif' };
}
