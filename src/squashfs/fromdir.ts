// Pack a host directory into a SquashFS image: walk it with lstat (links are not followed),
// detect hard links by device and inode, feed SquashfsWriter. File data is read in 1 MiB
// chunks while it is added, so memory stays flat however big the files are.

import fs from 'node:fs';
import path from 'node:path';
import { CtrError, describeSystemError } from '../errors.js';
import { SquashfsWriter, TreeEntry, WriterOptions } from './write.js';

export interface FromDirOptions extends WriterOptions {
  /** Keep the files' uid/gid; by default everything is stored as owned by root (0:0). */
  keepOwnership?: boolean;
}

function entryType(st: fs.Stats): TreeEntry['type'] {
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
  if (!rootSt.isDirectory()) throw new CtrError(`cannot read ${dir}`, 'not a directory');

  const root = path.resolve(dir);
  const writer = new SquashfsWriter(out, opts);
  try {
    const own = (st: fs.Stats) => (opts.keepOwnership ? { uid: st.uid, gid: st.gid } : { uid: 0, gid: 0 });
    const mtime = (st: fs.Stats) => Math.floor(st.mtimeMs / 1000);
    await writer.add({ path: '', type: 'dir', mode: rootSt.mode, mtime: mtime(rootSt), ...own(rootSt) });

    const seen = new Map<string, string>(); // "dev:ino" → first image path
    const stack: string[] = [''];
    while (stack.length) {
      const rel = stack.pop()!;
      const abs = rel ? `${root}/${rel}` : root;
      let names: string[];
      try {
        names = fs.readdirSync(abs);
      } catch (err) {
        throw fail(abs, err);
      }
      for (const name of names) {
        const relChild = rel ? `${rel}/${name}` : name;
        const absChild = `${abs}/${name}`;
        let st: fs.Stats;
        try {
          st = fs.lstatSync(absChild);
        } catch (err) {
          throw fail(absChild, err);
        }
        const type = entryType(st);
        const common = { path: relChild, mode: st.mode, mtime: mtime(st), ...own(st) };
        if (type !== 'dir' && st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          const first = seen.get(key);
          if (first !== undefined) {
            await writer.add({ ...common, type: 'hardlink', target: first });
            continue;
          }
          seen.set(key, relChild);
        }
        switch (type) {
          case 'dir':
            await writer.add({ ...common, type });
            stack.push(relChild);
            break;
          case 'file':
            await writer.add({ ...common, type, data: { path: absChild, size: st.size } });
            break;
          case 'symlink': {
            let target: string;
            try {
              target = fs.readlinkSync(absChild);
            } catch (err) {
              throw fail(absChild, err);
            }
            await writer.add({ ...common, type, target });
            break;
          }
          case 'char': case 'block':
            await writer.add({ ...common, type, rdev: st.rdev });
            break;
          default:
            await writer.add({ ...common, type });
        }
      }
    }
    return await writer.finish();
  } catch (err) {
    writer.close();
    throw err;
  }
}
