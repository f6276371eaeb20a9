// Struct layouts and constants from libsquashfs 1.2.0's headers (/usr/include/sqfs/*.h).
// Only the structs we read or fill field by field are declared; every other object is a
// `void *` handle (a BigInt) in lib.ts's table. `checkLayouts()` compares koffi's idea of each layout with the numbers
// the C compiler gives for the installed header, so a header change fails loudly at load
// instead of corrupting memory.

import koffi, { type TypeObject } from 'koffi';
import { SUPERBLOCK, SUPERBLOCK_SIZE } from './superblock.js';

/** sqfs_object_t + sqfs_file_t's vtable (io.h): every libsquashfs object starts with destroy/copy. */
export const sqfs_file_vtable = koffi.struct('sqfs_file_vtable', {
  destroy: 'void *',
  copy: 'void *',
  read_at: 'void *',
  write_at: 'void *',
  get_size: 'void *',
  truncate: 'void *',
});

/** sqfs_compressor_t's vtable (compressor.h). */
export const sqfs_compressor_vtable = koffi.struct('sqfs_compressor_vtable', {
  destroy: 'void *',
  copy: 'void *',
  get_configuration: 'void *',
  write_options: 'void *',
  read_options: 'void *',
  do_block: 'void *',
});

export const sqfs_super_t = koffi.struct('sqfs_super_t', {
  magic: 'uint32_t',
  inode_count: 'uint32_t',
  modification_time: 'uint32_t',
  block_size: 'uint32_t',
  fragment_entry_count: 'uint32_t',
  compression_id: 'uint16_t',
  block_log: 'uint16_t',
  flags: 'uint16_t',
  id_count: 'uint16_t',
  version_major: 'uint16_t',
  version_minor: 'uint16_t',
  root_inode_ref: 'uint64_t',
  bytes_used: 'uint64_t',
  id_table_start: 'uint64_t',
  xattr_id_table_start: 'uint64_t',
  inode_table_start: 'uint64_t',
  directory_table_start: 'uint64_t',
  fragment_table_start: 'uint64_t',
  export_table_start: 'uint64_t',
});

export const sqfs_compressor_config_t = koffi.struct('sqfs_compressor_config_t', {
  id: 'uint16_t',
  flags: 'uint16_t',
  block_size: 'uint32_t',
  level: 'uint32_t',
  opt: koffi.array('uint64_t', 2),
});

export const sqfs_block_processor_desc_t = koffi.struct('sqfs_block_processor_desc_t', {
  size: 'uint32_t',
  max_block_size: 'uint32_t',
  num_workers: 'uint32_t',
  max_backlog: 'uint32_t',
  cmp: 'void *',
  wr: 'void *',
  tbl: 'void *',
  file: 'void *',
  uncmp: 'void *',
});

/** sqfs_inode_generic_t's fixed part (inode.h); the union is read through a DataView. */
export const sqfs_inode_base = koffi.struct('sqfs_inode_base', {
  type: 'uint16_t',
  mode: 'uint16_t',
  uid_idx: 'uint16_t',
  gid_idx: 'uint16_t',
  mod_time: 'uint32_t',
  inode_number: 'uint32_t',
  payload_bytes_available: 'uint32_t',
  payload_bytes_used: 'uint32_t',
  data: koffi.array('uint64_t', 5),
});

/** Byte offsets inside sqfs_inode_generic_t used by the DataView accessors in read.ts. */
export const INODE = {
  type: 0, mode: 2, uidIdx: 4, gidIdx: 6, modTime: 8, inodeNumber: 12,
  payloadUsed: 20, data: 24, extra: 64, size: 64,
} as const;

/** Sizes and offsets that gcc reports for the installed 1.2.0 header (x86_64 and aarch64 LP64). */
const EXPECTED: [TypeObject, number, Record<string, number>][] = [
  [sqfs_super_t, SUPERBLOCK_SIZE, SUPERBLOCK], // the on-disk layout (superblock.ts)
  [sqfs_compressor_config_t, 32, { level: 8, opt: 16 }],
  [sqfs_block_processor_desc_t, 56, { cmp: 16, uncmp: 48 }],
  [sqfs_file_vtable, 48, { get_size: 32, truncate: 40 }],
  [sqfs_compressor_vtable, 48, { write_options: 24, read_options: 32 }],
  [sqfs_inode_base, INODE.size, { payload_bytes_used: INODE.payloadUsed, data: INODE.data, inode_number: INODE.inodeNumber }],
];

export function checkLayouts(): void {
  for (const [type, size, offsets] of EXPECTED) {
    const name = type.name;
    if (koffi.sizeof(type) !== size) {
      throw new Error(`libsquashfs binding: sizeof(${name}) is ${koffi.sizeof(type)}, header says ${size}`);
    }
    for (const [member, off] of Object.entries(offsets)) {
      if (koffi.offsetof(type, member) !== off) {
        throw new Error(`libsquashfs binding: offsetof(${name}, ${member}) is ${koffi.offsetof(type, member)}, header says ${off}`);
      }
    }
  }
}

// Enumerations (super.h, inode.h, block.h, meta_writer.h, compressor.h).
export const COMPRESSOR_IDS = { gzip: 1, lzma: 2, lzo: 3, xz: 4, lz4: 5, zstd: 6 } as const;
export type CompressorName = 'gzip' | 'xz' | 'lzo' | 'lz4' | 'zstd';

export const SQFS_COMP_FLAG_UNCOMPRESS = 0x8000;
export const SQFS_FLAG_COMPRESSOR_OPTIONS = 0x0400;
export const SQFS_META_WRITER_KEEP_IN_MEMORY = 0x01;

export const INODE_TYPE = {
  DIR: 1, FILE: 2, SLINK: 3, BDEV: 4, CDEV: 5, FIFO: 6, SOCKET: 7,
  EXT_DIR: 8, EXT_FILE: 9, EXT_SLINK: 10, EXT_BDEV: 11, EXT_CDEV: 12, EXT_FIFO: 13, EXT_SOCKET: 14,
} as const;

export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFDIR = 0o040000;
export const S_IFBLK = 0o060000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFSOCK = 0o140000;

export const NO_XATTR = 0xffffffff;
