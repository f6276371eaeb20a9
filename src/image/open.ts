// Find out what an IMAGE argument is and where its file system lies, without mounting it:
// a SIF (its primary SquashFS partition), a bare SquashFS, or a directory. Everything
// that would make the launcher fail later (truncation, wrong architecture, a partition
// type we can't mount) is refused here with one clear line.
import { realpathSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { CtrError, describeSystemError } from '../errors.js';
import { readHead } from '../files.js';
import { goArchFromNode } from '../sif/format.js';
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

