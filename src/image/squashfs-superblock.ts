// The few SquashFS superblock fields worth checking before a mount: a truncated or
// foreign file is then refused with a reason instead of failing inside squashfuse.
// Layout: squashfs-tools' squashfs_fs.h (struct squashfs_super_block), little-endian.
import { CtrError } from '../errors.js';
import { readAtSync } from '../files.js';

export const SQUASHFS_SUPERBLOCK_SIZE = 96;
const MAGIC = 0x73717368; // "hsqs"

export async function checkSquashfsSuperblock(path: string, offset: number, room: number, what: string): Promise<void> {
  const sb = readAtSync(path, SQUASHFS_SUPERBLOCK_SIZE, offset, what);
  if (sb.length < SQUASHFS_SUPERBLOCK_SIZE) throw new CtrError(what, `truncated SquashFS: superblock at ${offset} ends past end of file`);
  if (sb.readUInt32LE(0) !== MAGIC) throw new CtrError(what, `no SquashFS at offset ${offset} (bad magic)`);
  const major = sb.readUInt16LE(28);
  if (major !== 4) throw new CtrError(what, `SquashFS version ${major} is not supported (only 4.x)`);
  const bytesUsed = Number(sb.readBigUInt64LE(40));
  if (bytesUsed > room) {
    throw new CtrError(what, `truncated SquashFS: it needs ${bytesUsed} bytes but only ${room} are there`);
  }
}
