// `ctr cache list [--type T] [-v]` and `ctr cache clean [--type T] [--days N] [--dry-run]`:
// ctr's two caches under $CTR_CACHEDIR, by Apptainer's type names: `blob`, the OCI blobs
// (src/oci/cache.ts), and `oci`, the SIFs that `ctr exec docker://REF` runs
// (src/oci/run-cache.ts). --type takes a comma list; the default is all of them.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CtrError, describeSystemError } from '../../errors.js';
import { BlobCache, defaultCacheDir } from '../../oci/cache.js';
import { humanSize } from '../../human.js';

interface Entry { name: string; path: string; size: number; used: number; created: number }
type CacheType = 'blob' | 'oci';

/** Each cache: where it is, what one entry is called, how an entry is shown. */
const CACHES: Record<CacheType, { dir: () => string; one: string; many: string; label: (name: string) => string }> = {
  blob: { dir: () => new BlobCache().dir, one: 'blob', many: 'blobs', label: (n) => (n.endsWith('.tmp') ? n : `sha256:${n}`) },
  oci: { dir: () => join(defaultCacheDir(), 'sif'), one: 'image (SIF)', many: 'images (SIF)', label: (n) => n },
};
/** Apptainer's other cache types: ctr keeps nothing of theirs. */
const NOT_KEPT = ['library', 'shub', 'net', 'oras'];
const USAGE = { hint: 'usage: ctr cache list|clean [--type blob,oci,all] [--days N] [--dry-run] [-v]' };

function entries(dir: string): Entry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CtrError(`cannot read the cache ${dir}`, describeSystemError(err));
  }
  return names.sort().flatMap((name) => {
    const path = join(dir, name);
    try {
      const st = statSync(path);
      // Last use: the later of its last read and its writing.
      return st.isFile() ? [{ name, path, size: st.size, used: Math.max(st.atimeMs, st.mtimeMs), created: st.mtimeMs }] : [];
    } catch { return []; }
  });
}

const count = (t: CacheType, n: number) => `${n} ${n === 1 ? CACHES[t].one : CACHES[t].many}`;
const total = (list: Entry[]) => list.reduce((s, e) => s + e.size, 0);

export interface CacheFlags { days?: string; type?: string; dryRun?: boolean; verbose?: boolean; force?: boolean }

function types(spec: string | undefined): CacheType[] {
  const out = new Set<CacheType>();
  for (const t of (spec ?? 'all').split(',').map((x) => x.trim()).filter(Boolean)) {
    if (t === 'all') ['blob', 'oci'].forEach((x) => out.add(x as CacheType));
    else if (t === 'blob' || t === 'oci') out.add(t);
    else if (NOT_KEPT.includes(t)) throw new CtrError(`--type ${t}`, 'ctr keeps no cache of that type (only blob and oci)', USAGE);
    else throw new CtrError(`--type ${t}`, 'unknown cache type (blob, oci or all)', USAGE);
  }
  if (!out.size) throw new CtrError('--type', 'no cache type given (blob, oci or all)', USAGE);
  return [...out];
}

const date = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');

export function cacheCommand(sub: string, f: CacheFlags, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const which = types(f.type);
  if (sub === 'list') {
    for (const [flag, set] of [['--days', f.days !== undefined], ['--dry-run', f.dryRun], ['--force', f.force]] as const) {
      if (set) throw new CtrError(`option ${flag}`, 'only for ctr cache clean', USAGE);
    }
    const lists = which.map((t) => ({ t, dir: CACHES[t].dir(), list: entries(CACHES[t].dir()) }));
    if (f.verbose) {
      const rows = lists.flatMap(({ t, list }) => list.map((e) => [CACHES[t].label(e.name), date(e.created), humanSize(e.size), t]));
      const width = rows.reduce((w, r) => w.map((x, i) => Math.max(x, r[i].length)), ['NAME', 'DATE CREATED', 'SIZE', 'TYPE'].map((h) => h.length));
      for (const r of [['NAME', 'DATE CREATED', 'SIZE', 'TYPE'], ...rows]) out(`${r.map((x, i) => (i === 2 ? x.padStart(width[i]) : x.padEnd(width[i]))).join('  ').trimEnd()}\n`);
      out('\n');
    }
    for (const { t, dir, list } of lists) out(`${count(t, list.length)}, ${humanSize(total(list))} in ${dir}\n`);
    if (lists.length > 1) out(`total ${humanSize(lists.reduce((s, l) => s + total(l.list), 0))}\n`);
    return;
  }
  if (sub === 'clean') {
    if (f.verbose) throw new CtrError('option --verbose', 'only for ctr cache list', USAGE);
    let cutoff = Infinity;
    if (f.days !== undefined) {
      if (!/^\d+(\.\d+)?$/.test(f.days)) throw new CtrError('option --days', `${JSON.stringify(f.days)} is not a number of days`);
      cutoff = Date.now() - Number(f.days) * 86400_000;
    }
    const age = f.days === undefined ? '' : ` unused for more than ${f.days} day${f.days === '1' ? '' : 's'}`;
    for (const t of which) {
      const dir = CACHES[t].dir();
      const gone = entries(dir).filter((e) => e.used < cutoff);
      for (const e of gone) {
        if (f.dryRun) {
          out(`would remove ${CACHES[t].label(e.name)} (${humanSize(e.size)})\n`);
          continue;
        }
        try {
          rmSync(e.path, { force: true });
        } catch (err) {
          throw new CtrError(`cannot remove ${e.path}`, describeSystemError(err));
        }
      }
      out(`${f.dryRun ? 'would remove' : 'removed'} ${count(t, gone.length)}${age}, ${humanSize(total(gone))}, from ${dir}\n`);
    }
    return;
  }
  throw new CtrError(`unknown cache command '${sub}'`, '', USAGE);
}
