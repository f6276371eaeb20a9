// ctr build [--force] [--compress NAME[:LEVEL]] OUT SOURCE
import { CtrError } from '../../errors.js';
import { build, BuildRanElsewhere, DEFAULT_COMPRESSOR, DEFAULT_LEVEL } from '../../builder/build.js';
import type { CompressorName } from '../../squashfs/structs.js';
import type { FakerootMode } from '../../plan/fakeroot.js';

const COMPRESSORS = ['gzip', 'xz', 'lzo', 'lz4', 'zstd'];

export async function buildCommand(out: string, source: string, force: boolean, compress?: string, noHttps = false, fakerootMode?: FakerootMode): Promise<void> {
  const [name, level] = (compress ?? `${DEFAULT_COMPRESSOR}:${DEFAULT_LEVEL}`).split(':');
  if (!COMPRESSORS.includes(name)) throw new CtrError(`compressor ${name}`, `unknown (one of ${COMPRESSORS.join(', ')})`);
  if (level !== undefined && !/^\d+$/.test(level)) throw new CtrError(`compression level ${level}`, 'not a number');
  try {
    await build(out, source, { force, noHttps, fakerootMode, compressor: name as CompressorName, level: level === undefined ? undefined : Number(level) });
  } catch (err) {
    // The build ran in its user namespace (builder/userns.ts) and said what went wrong.
    if (err instanceof BuildRanElsewhere) process.exit(err.code);
    throw err;
  }
}
