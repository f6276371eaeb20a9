// The name clash: Debian's containerd package installs /usr/bin/ctr as well. ctr is also
// installed as ctr-hpc; this finds which `ctr` a PATH runs and whether it is containerd's
// (its `ctr --version` says "ctr github.com/containerd/containerd VERSION"), for the
// hints of `ctr version` and of a Slurm preflight that ran the wrong one (slurm/ctr-srun
// and the SPANK plugin make the same check in their own language).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readAtSync } from '../files.js';

const CONTAINERD = /^ctr github\.com\/containerd\/containerd\b/;

/** The first executable NAME in PATHVAR's directories (absolute ones only). */
export function findOnPath(name: string, pathVar = process.env.PATH ?? ''): string | undefined {
  for (const dir of pathVar.split(':')) {
    if (!dir.startsWith('/')) continue;
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) {
        accessSync(p, constants.X_OK);
        return p;
      }
    } catch { /* not here */ }
  }
  return undefined;
}

/** PROGRAM's version line if it is containerd's ctr, else undefined. Scripts (ctr's own
 * bin/ctr starts with #!) are not run; a binary gets 3 s and 4 KiB of output. */
export function containerdVersion(program: string): string | undefined {
  try {
    if (readAtSync(program, 2, 0, program).toString('latin1') === '#!') return undefined;
  } catch {
    return undefined;
  }
  const r = spawnSync(program, ['--version'], { encoding: 'utf8', timeout: 3000, maxBuffer: 4096, stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: '/usr/bin:/bin' } });
  const first = (r.stdout ?? '').split('\n')[0].trim();
  return CONTAINERD.test(first) ? first.replace(/[^\x20-\x7e]/g, '?') : undefined;
}

export interface CtrClash { path: string; version: string }

/** Containerd's ctr, where it is the `ctr` that PATHVAR finds; else undefined. */
export function ctrClash(pathVar = process.env.PATH ?? ''): CtrClash | undefined {
  const path = findOnPath('ctr', pathVar);
  if (!path) return undefined;
  let real = path;
  try {
    real = realpathSync(path);
  } catch { /* as found */ }
  const version = containerdVersion(real);
  return version ? { path, version } : undefined;
}

/** The words for a hint: what `ctr` runs, and what to do instead. */
export function clashHint(c: CtrClash): string {
  return `the ctr in PATH, ${c.path}, is containerd's (${c.version}), not this ctr: run ctr-hpc, or put ctr's bin directory before ${c.path.replace(/\/ctr$/, '')} in PATH`;
}
