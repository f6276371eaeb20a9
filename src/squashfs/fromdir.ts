// Pack a host directory into a SquashFS image: walk it with lstat (links are not followed),
// detect hard links by device and inode, feed SquashfsWriter through its synchronous
// addChild() fast path. File data is read in 1 MiB chunks while it is added, so memory
// stays flat however big the files are.

import fs from 'node:fs';
import path from 'node:path';
import { CtrError, describeSystemError, STRERROR } from '../errors.js';
import { type Node, SquashfsWriter, type TreeEntry, type WriterOptions } from './write.js';

export interface FromDirOptions extends WriterOptions {
  /** Keep the files' uid/gid; by default everything is stored as owned by root (0:0). */
  keepOwnership?: boolean;
  /** Told each regular file's size once it is added (progress: builder/progress.ts). */
  onData?: (bytes: number) => void;
}

/** The image entry type for an lstat result. */
export function entryType(st: fs.Stats): Exclude<TreeEntry['type'], 'hardlink'> {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

export async function writeSquashfsFromDir(dir: string, out: string | number, opts: FromDirOptions): Promise<{ bytes: number }> {
  const fail = (p: string, err: unknown) => new CtrError(`cannot read ${p}`, describeSystemError(err), { cause: err });
  let rootSt: fs.Stats;
  try {
    rootSt = fs.statSync(dir);
  } catch (err) {
    throw fail(dir, err);
  }
  if (!rootSt.isDirectory()) throw new CtrError(`cannot read ${dir}`, STRERROR.ENOTDIR);

  const root = path.resolve(dir);
  const keep = opts.keepOwnership === true;
  const writer = new SquashfsWriter(out, opts);
  try {
    const mtime = (st: fs.Stats) => Math.floor(st.mtimeMs / 1000);
    writer.addSync({ path: '', type: 'dir', mode: rootSt.mode, mtime: mtime(rootSt), uid: keep ? rootSt.uid : 0, gid: keep ? rootSt.gid : 0 });

    // Everything below is synchronous: one walk, no Promise per entry. Directories are
    // handed to the writer as nodes, so no path is split or looked up again.
    const seen = new Map<string, Node>(); // "dev:ino" → the first name's node
    const stack: { abs: string; node: Node }[] = [{ abs: root, node: writer.root }];
    while (stack.length) {
      const { abs, node: parent } = stack.pop()!;
      let names: string[];
      try {
        names = fs.readdirSync(abs);
      } catch (err) {
        throw fail(abs, err);
      }
      for (const name of names) {
        const absChild = `${abs}/${name}`;
        let st: fs.Stats;
        try {
          st = fs.lstatSync(absChild);
        } catch (err) {
          throw fail(absChild, err);
        }
        const type = entryType(st);
        const uid = keep ? st.uid : 0, gid = keep ? st.gid : 0;
        if (type !== 'dir' && st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          const first = seen.get(key);
          if (first !== undefined) {
            writer.addChild(parent, name, 'hardlink', st.mode, uid, gid, mtime(st), first);
            continue;
          }
          seen.set(key, writer.addChild(parent, name, type, st.mode, uid, gid, mtime(st), argFor(type, absChild, st, fail), st.size));
          if (type === 'file') opts.onData?.(st.size);
          continue;
        }
        const node = writer.addChild(parent, name, type, st.mode, uid, gid, mtime(st), argFor(type, absChild, st, fail), st.size);
        if (type === 'dir') stack.push({ abs: absChild, node });
        else if (type === 'file') opts.onData?.(st.size);
      }
    }
    return await writer.finish();
  } catch (err) {
    writer.close();
    throw err;
  }
}

/** What SquashfsWriter.addChild needs besides the attributes: source path, link target, device. */
function argFor(type: TreeEntry['type'], abs: string, st: fs.Stats, fail: (p: string, err: unknown) => Error): string | number | undefined {
  switch (type) {
    case 'file':
      return abs;
    case 'symlink':
      try {
        return fs.readlinkSync(abs);
      } catch (err) {
        throw fail(abs, err);
      }
    case 'char': case 'block':
      return st.rdev;
    default:
      return undefined;
  }
}
