// ctr build [--force] [--compress NAME[:LEVEL]] [-q] OUT SOURCE
import { statSync } from 'node:fs';
import { CtrError } from '../../errors.js';
import { build, BuildRanElsewhere, DEFAULT_COMPRESSOR, DEFAULT_LEVEL } from '../../builder/build.js';
import { quiet, summary } from '../../builder/progress.js';
import { insideBuildNamespace } from '../../builder/userns.js';
import type { CompressorName } from '../../squashfs/structs.js';
import type { FakerootMode } from '../../plan/fakeroot.js';

const COMPRESSORS = ['gzip', 'xz', 'lzo', 'lz4', 'zstd'];

export interface BuildFlags { force: boolean; compress?: string; noHttps: boolean; fakerootMode?: FakerootMode; quiet: boolean; sandbox?: boolean; update?: boolean; fixPerms?: boolean }

export async function buildCommand(out: string, source: string, f: BuildFlags): Promise<void> {
  const t0 = performance.now();
  if (f.quiet) quiet();
  const [name, level] = (f.compress ?? `${DEFAULT_COMPRESSOR}:${DEFAULT_LEVEL}`).split(':');
  if (!COMPRESSORS.includes(name)) throw new CtrError(`compressor ${name}`, `unknown (one of ${COMPRESSORS.join(', ')})`);
  if (level !== undefined && !/^\d+$/.test(level)) throw new CtrError(`compression level ${level}`, 'not a number');
  try {
    await build(out, source, { sandbox: f.sandbox, update: f.update, fixPerms: f.fixPerms, force: f.force, noHttps: f.noHttps, fakerootMode: f.fakerootMode, compressor: name as CompressorName, level: level === undefined ? undefined : Number(level) });
  } catch (err) {
    // The build ran in its user namespace (builder/userns.ts) and said what went wrong.
    if (err instanceof BuildRanElsewhere) process.exit(err.code);
    throw err;
  }
  // Once, from the command the user started (not again from its re-run inside the namespace).
  if (!insideBuildNamespace()) summary(`wrote ${out}`, f.sandbox ? undefined : statSync(out).size, t0);
}
