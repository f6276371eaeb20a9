// Find out what an IMAGE argument is and where its file system lies, without mounting it:
// a SIF (its primary SquashFS partition), a bare SquashFS, or a directory. Everything
// that would make the launcher fail later (truncation, wrong architecture, a partition
// type we can't mount) is refused here with one clear line.
import { realpathSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { CtrError, describeSystemError } from '../errors.js';
import { readHead } from '../files.js';
import { FsType, goArchFromNode } from '../sif/format.js';
import { primaryPartition, readSif } from '../sif/read.js';
import { checkSquashfsSuperblock, isSquashfs, SUPERBLOCK_SIZE } from '../squashfs/superblock.js';

export interface ImageRef {
  kind: 'sif' | 'squashfs' | 'dir';
  /** Absolute path, symlinks resolved: the launcher sees the host under another root. */
  path: string;
  /** Byte offset of the SquashFS inside the file (0 for a bare SquashFS). */
  offset: number;
}

const SIF_MAGIC_AT = 32;

export async function openImage(arg: string, hostArch = goArchFromNode(process.arch, endianness())): Promise<ImageRef> {
  const what = `image ${arg}`;
  let path: string;
  try {
    path = realpathSync.native(arg);
    if (statSync(path).isDirectory()) return { kind: 'dir', path, offset: 0 };
  } catch (err) {
    throw new CtrError(what, describeSystemError(err));
  }
  const head = await readHead(path, Math.max(SIF_MAGIC_AT + 10, SUPERBLOCK_SIZE), what);
  if (head.subarray(SIF_MAGIC_AT, SIF_MAGIC_AT + 9).toString('latin1') === 'SIF_MAGIC') {
    const sif = await readSif(path);
    const part = primaryPartition(sif, arg);
    const arch = part.partition!.arch;
    if (hostArch && arch !== 'unknown' && arch !== hostArch) {
      throw new CtrError(what, `image is for ${arch}, this machine is ${hostArch}`);
    }
    await checkSquashfsSuperblock(path, part.offset, part.size, what);
    return { kind: 'sif', path, offset: part.offset };
  }
  if (isSquashfs(head)) {
    const { size } = statSync(path);
    await checkSquashfsSuperblock(path, 0, size, what);
    return { kind: 'squashfs', path, offset: 0 };
  }
  throw new CtrError(what, 'not a SIF, SquashFS image or directory');
}


/** A bind image (`-B FILE:DST:image-src=...`): the byte offset of its SquashFS. A bare
 * SquashFS, or a SIF's partition with object id ID (without one, its primary partition,
 * else its first);
 * anything else is refused in one line. */
export async function bindImageOffset(arg: string, id?: number): Promise<number> {
  const what = `bind image ${arg}`;
  let path: string;
  try {
    path = realpathSync.native(arg);
    if (statSync(path).isDirectory()) throw new CtrError(what, 'a directory, not a SquashFS image or SIF', { hint: `bind the directory itself: -B ${arg}:DST` });
  } catch (err) {
    if (err instanceof CtrError) throw err;
    throw new CtrError(what, describeSystemError(err));
  }
  const head = await readHead(path, Math.max(SIF_MAGIC_AT + 10, SUPERBLOCK_SIZE), what);
  if (head.subarray(SIF_MAGIC_AT, SIF_MAGIC_AT + 9).toString('latin1') === 'SIF_MAGIC') {
    const sif = await readSif(path);
    const part = id !== undefined ? sif.descriptors.find((d) => d.id === id)
      : sif.primary ?? sif.descriptors.find((d) => d.partition);
    if (!part) throw new CtrError(what, id !== undefined ? `no object with id ${id} in the SIF` : 'the SIF holds no partition');
    if (!part.partition) throw new CtrError(what, `object ${part.id} is ${part.typeName}, not a partition`);
    if (part.partition.fsType !== FsType.SQUASHFS) {
      throw new CtrError(what, `partition ${part.id} is ${part.partition.fsTypeName}: only SquashFS partitions can be bound`);
    }
    await checkSquashfsSuperblock(path, part.offset, part.size, what);
    return part.offset;
  }
  if (isSquashfs(head)) {
    if (id !== undefined) throw new CtrError(what, `id=${id} names a SIF partition, but this is a bare SquashFS`, { hint: 'leave out id=' });
    await checkSquashfsSuperblock(path, 0, statSync(path).size, what);
    return 0;
  }
  throw new CtrError(what, 'not a SquashFS image or SIF (image binds take no ext3 or other file systems)');
}
