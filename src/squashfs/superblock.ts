// The SquashFS 4.0 superblock: the one layout every reader and writer in ctr uses
// (squashfs-tools' squashfs_fs.h, struct squashfs_super_block; little-endian, 96 bytes;
// libsquashfs' sqfs_super_t is checked against it in structs.ts). No koffi here: the
// launch path reads superblocks before any binding is loaded.
import { CtrError } from '../errors.js';
import { readAtSync } from '../files.js';

export const SUPERBLOCK_SIZE = 96;
export const SQUASHFS_MAGIC = 0x73717368; // "hsqs"

/** Byte offsets of the fields, named as in the C headers. */
export const SUPERBLOCK = {
  magic: 0, inode_count: 4, modification_time: 8, block_size: 12, fragment_entry_count: 16,
  compression_id: 20, block_log: 22, flags: 24, id_count: 26, version_major: 28, version_minor: 30,
  root_inode_ref: 32, bytes_used: 40, id_table_start: 48, xattr_id_table_start: 56,
  inode_table_start: 64, directory_table_start: 72, fragment_table_start: 80, export_table_start: 88,
} as const;

/** Whether HEAD (a file's first bytes) starts with a SquashFS superblock's magic. */
export function isSquashfs(head: Uint8Array): boolean {
  return head.length >= 4 && Buffer.from(head.buffer, head.byteOffset, 4).readUInt32LE(0) === SQUASHFS_MAGIC;
}

/**
 * The few fields worth checking before a mount: a truncated or foreign file is then
 * refused with a reason instead of failing inside the FUSE server.
 */
export async function checkSquashfsSuperblock(path: string, offset: number, room: number, what: string): Promise<void> {
  const sb = readAtSync(path, SUPERBLOCK_SIZE, offset, what);
  if (sb.length < SUPERBLOCK_SIZE) throw new CtrError(what, `truncated SquashFS: superblock at ${offset} ends past end of file`);
  if (sb.readUInt32LE(SUPERBLOCK.magic) !== SQUASHFS_MAGIC) throw new CtrError(what, `no SquashFS at offset ${offset} (bad magic)`);
  const major = sb.readUInt16LE(SUPERBLOCK.version_major);
  if (major !== 4) throw new CtrError(what, `SquashFS version ${major} is not supported (only 4.x)`);
  const bytesUsed = Number(sb.readBigUInt64LE(SUPERBLOCK.bytes_used));
  if (bytesUsed > room) {
    throw new CtrError(what, `truncated SquashFS: it needs ${bytesUsed} bytes but only ${room} are there`);
  }
}

/** Compressor ids of the superblock (squashfs_fs.h). */
const COMPRESSORS: Record<number, string> = { 1: 'gzip', 2: 'lzma', 3: 'lzo', 4: 'xz', 5: 'lz4', 6: 'zstd' };

export interface SquashfsFacts {
  compressor: string;
  blockSize: number;
  /** Bytes the file system takes (bytes_used). */
  bytes: number;
  inodes: number;
  version: string;
  /** mkfs time (SOURCE_DATE_EPOCH when the builder was given one). */
  created: string;
}

/** What `ctr inspect --image` says of a SquashFS at OFFSET in PATH, from its superblock. */
export function readSquashfsFacts(path: string, offset: number, what: string): SquashfsFacts {
  const sb = readAtSync(path, SUPERBLOCK_SIZE, offset, what);
  if (sb.length < SUPERBLOCK_SIZE || sb.readUInt32LE(SUPERBLOCK.magic) !== SQUASHFS_MAGIC) throw new CtrError(what, `no SquashFS at offset ${offset}`);
  const id = sb.readUInt16LE(SUPERBLOCK.compression_id);
  return {
    compressor: COMPRESSORS[id] ?? `unknown (id ${id})`,
    blockSize: sb.readUInt32LE(SUPERBLOCK.block_size),
    bytes: Number(sb.readBigUInt64LE(SUPERBLOCK.bytes_used)),
    inodes: sb.readUInt32LE(SUPERBLOCK.inode_count),
    version: `${sb.readUInt16LE(SUPERBLOCK.version_major)}.${sb.readUInt16LE(SUPERBLOCK.version_minor)}`,
    created: new Date(sb.readUInt32LE(SUPERBLOCK.modification_time) * 1000).toISOString(),
  };
}
