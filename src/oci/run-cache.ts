// `ctr exec docker://REF CMD` (and oci:, oci-archive:, docker-archive:): the image runs
// straight from the reference, as Apptainer runs one, through a cache of SIFs beside the
// blob cache ($CTR_CACHEDIR/sif/). An entry is named after the image's config (which
// holds its layers' digests), so a tag that moves gets a new entry and an unchanged image
// is only looked up, not rebuilt. Each launch asks the registry for the manifest and config.
import { createHash } from 'node:crypto';
import { mkdir, access } from 'node:fs/promises';
import { join } from 'node:path';
import { progress } from '../builder/progress.js';
import { defaultCacheDir } from './cache.js';
import { writeFetched } from './pull.js';
import { fetchImage, type FetchOptions } from './source.js';

/** The cached SIF of REF, made first if missing; returns its path. */
export async function cachedSif(ref: string, opts: FetchOptions = {}): Promise<string> {
  const img = await fetchImage(ref, opts);
  const key = createHash('sha256').update(JSON.stringify({ config: img.config, platform: img.platform })).digest('hex');
  const dir = join(defaultCacheDir(), 'sif');
  const sif = join(dir, `${key}.sif`);
  try {
    await access(sif);
    await img.close();
    return sif;
  } catch { /* not cached yet */ }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  progress(`${ref} is not in the cache: converting it to ${sif}`);
  await writeFetched(img, ref, sif);
  return sif;
}
