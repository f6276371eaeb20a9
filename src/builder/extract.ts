// Unpack a SquashFS image into a directory through libsquashfs (no mount, no root):
// regular files (a hard link becomes a copy), directories and symlinks, with their modes
// and times. Device nodes, FIFOs and sockets are left out and returned, for the caller
// to name.
import { chmod, lutimes, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SquashfsReader } from '../squashfs/read.js';

export async function extractImage(reader: SquashfsReader, dir: string): Promise<{ skipped: string[] }> {
  const skipped: string[] = [];
  const entries: Array<{ path: string; stat: ReturnType<SquashfsReader['stat']> }> = [];
  reader.walk((path, stat) => entries.push({ path, stat }));
  const dirs: typeof entries = [];
  for (const { path, stat } of entries) {
    const at = join(dir, path);
    switch (stat.type) {
      case 'dir':
        await mkdir(at, { recursive: true });
        dirs.push({ path, stat });
        break;
      case 'file':
        await writeFile(at, reader.readFile(path));
        await chmod(at, stat.mode & 0o7777);
        await utimes(at, stat.mtime, stat.mtime);
        break;
      case 'symlink':
        await symlink(reader.readlink(path), at);
        await lutimes(at, stat.mtime, stat.mtime).catch(() => undefined);
        break;
      default:
        skipped.push(path);
    }
  }
  // Directory modes and times last: writing into them changed their times, and a
  // read-only directory would have refused its children.
  for (const { path, stat } of dirs.reverse()) {
    const at = join(dir, path);
    await chmod(at, stat.mode & 0o7777);
    await utimes(at, stat.mtime, stat.mtime);
  }
  return { skipped };
}
