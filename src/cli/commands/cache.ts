// `ctr cache list` and `ctr cache clean [--days N]`: the blob cache (src/oci/cache.ts).
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CtrError, describeSystemError } from '../../errors.js';
import { BlobCache } from '../../oci/cache.js';
import { humanSize } from '../../human.js';

interface Entry { name: string; path: string; size: number; used: number }

function entries(dir: string): Entry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CtrError(`cannot read the blob cache ${dir}`, describeSystemError(err));
  }
  return names.sort().flatMap((name) => {
    const path = join(dir, name);
    try {
      const st = statSync(path);
      // Last use: the later of its last read and its writing.
      return st.isFile() ? [{ name, path, size: st.size, used: Math.max(st.atimeMs, st.mtimeMs) }] : [];
    } catch { return []; }
  });
}

const blobs = (n: number) => `${n} blob${n === 1 ? '' : 's'}`;

export function cacheCommand(sub: string, days: string | undefined, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const cache = new BlobCache();
  if (sub === 'list') {
    if (days !== undefined) throw new CtrError('option --days', 'only for ctr cache clean', { hint: 'usage: ctr cache list|clean [--days N]' });
    const list = entries(cache.dir);
    for (const e of list) out(`${humanSize(e.size).padStart(10)}  ${e.name.endsWith('.tmp') ? e.name : `sha256:${e.name}`}\n`);
    out(`${blobs(list.length)}, ${humanSize(list.reduce((s, e) => s + e.size, 0))} in ${cache.dir}\n`);
    return;
  }
  if (sub === 'clean') {
    let cutoff = Infinity;
    if (days !== undefined) {
      if (!/^\d+(\.\d+)?$/.test(days)) throw new CtrError('option --days', `${JSON.stringify(days)} is not a number of days`);
      cutoff = Date.now() - Number(days) * 86400_000;
    }
    const gone = entries(cache.dir).filter((e) => e.used < cutoff);
    for (const e of gone) {
      try {
        rmSync(e.path, { force: true });
      } catch (err) {
        throw new CtrError(`cannot remove ${e.path}`, describeSystemError(err));
      }
    }
    const age = days === undefined ? '' : ` unused for more than ${days} day${days === '1' ? '' : 's'}`;
    out(`removed ${blobs(gone.length)}${age}, ${humanSize(gone.reduce((s, e) => s + e.size, 0))}, from ${cache.dir}\n`);
    return;
  }
  throw new CtrError(`unknown cache command '${sub}'`, '', { hint: 'usage: ctr cache list|clean [--days N]' });
}
