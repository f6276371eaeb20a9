// Inodes in sqfs_inode_generic_t's layout (libsquashfs inode.h; offsets in structs.ts):
// the ones the writer builds itself (symlinks, devices, FIFOs, sockets), and the fields
// it fills in on every inode, whoever made it (block processor, dir writer, or here).
import * as S from './structs.js';
import type { Node, NodeType } from './tree.js';

export const TYPE_BITS: Record<NodeType, number> = {
  file: S.S_IFREG, dir: S.S_IFDIR, symlink: S.S_IFLNK, char: S.S_IFCHR, block: S.S_IFBLK, fifo: S.S_IFIFO, socket: S.S_IFSOCK,
};

const NLINK = S.INODE.data; // nlink is the first member of dev, ipc and slink

export function symlinkInode(n: Node): Buffer {
  const target = Buffer.from(n.target!);
  const b = Buffer.alloc(S.INODE.size + target.length);
  b.writeUInt16LE(S.INODE_TYPE.SLINK, S.INODE.type);
  b.writeUInt32LE(target.length, S.INODE.payloadUsed - 4);
  b.writeUInt32LE(target.length, S.INODE.payloadUsed);
  b.writeUInt32LE(n.nlink, NLINK);
  b.writeUInt32LE(target.length, NLINK + 4);
  target.copy(b, S.INODE.extra);
  return b;
}

/** A character or block device (with its number), a FIFO or a socket. */
export function deviceInode(n: Node): Buffer {
  const b = Buffer.alloc(S.INODE.size);
  const type = { char: S.INODE_TYPE.CDEV, block: S.INODE_TYPE.BDEV, fifo: S.INODE_TYPE.FIFO, socket: S.INODE_TYPE.SOCKET }[n.type as 'char'];
  b.writeUInt16LE(type, S.INODE.type);
  b.writeUInt32LE(n.nlink, NLINK);
  if (n.type === 'char' || n.type === 'block') b.writeUInt32LE(Number(BigInt(n.rdev ?? 0) & 0xffffffffn), NLINK + 4);
  return b;
}

/** Mode, owner indices, time and number: the same on every inode. */
export function setCommonFields(b: Buffer, n: Node, uidIdx: number, gidIdx: number): void {
  b.writeUInt16LE(TYPE_BITS[n.type] | n.mode, S.INODE.mode);
  b.writeUInt16LE(uidIdx, S.INODE.uidIdx);
  b.writeUInt16LE(gidIdx, S.INODE.gidIdx);
  b.writeUInt32LE(n.mtime, S.INODE.modTime);
  b.writeUInt32LE(n.inodeNum, S.INODE.inodeNumber);
  if (n.type === 'dir') {
    // libsquashfs 1.2.0 counts every entry as a link; store 2 + subdirectories as
    // Linux and mksquashfs do (find's leaf optimisation relies on it).
    const ext = b.readUInt16LE(S.INODE.type) === S.INODE_TYPE.EXT_DIR;
    b.writeUInt32LE(n.nlink, S.INODE.data + (ext ? 0 : 4));
  }
}
