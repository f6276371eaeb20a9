// pullToSif(): an image reference → a SIF file, as `ctr pull` does. The image is fetched
// (fetchImage), its layers read twice (headers, then the surviving files' bytes: see
// rootfs.ts), Apptainer's /.singularity.d added from the image config, and the SquashFS
// written straight at its offset inside the SIF. OUT appears only when complete: writeSif
// writes a temporary file beside it and renames it; Ctrl-C removes that file and any blob
// being downloaded.
import { closeSync, openSync } from 'node:fs';
import { checkOutput, sifIdentity } from '../builder/pack.js';
import { progress } from '../builder/progress.js';
import { Cleanup } from '../host/cleanup.js';
import { singularityDir, STANDARD_DIRS } from '../image/layout.js';
import { sourceDateEpoch } from '../files.js';
import { tempBeside } from '../tmp.js';
import { DataType, FsType, PartType, normalizeArch } from '../sif/format.js';
import { defFileObject, labelsObject, writeSif, type SifObjectInput } from '../sif/write.js';
import type { CompressorName } from '../squashfs/structs.js';
import { inFlight } from './cache.js';
import { containerFiles } from './container.js';
import type { RootfsTree } from './layers.js';
import { readLayers, writeRootfs } from './rootfs.js';
import { fetchImage, type FetchedImage, type FetchOptions } from './source.js';

export interface PullOptions extends FetchOptions {
  /** Overwrite OUT if it exists. */
  force?: boolean;
  /** SquashFS compression (default zstd level 3, as ctr build). */
  compressor?: CompressorName;
  level?: number;
}


export async function pullToSif(ref: string, out: string, opts: PullOptions = {}): Promise<void> {
  await checkOutput(out, !!opts.force);
  const epoch = sourceDateEpoch();
  const cleanup = new Cleanup('pull');
  cleanup.file(() => [tempBeside(out), ...inFlight]);
  try {
    await writeFetched(await fetchImage(ref, opts), ref, out, opts, epoch);
  } finally {
    cleanup.disarm();
  }
}

/** The SIF of IMG (fetched already) written to OUT; IMG is closed. */
export async function writeFetched(img: FetchedImage, ref: string, out: string, opts: PullOptions = {}, epoch = sourceDateEpoch()): Promise<void> {
  try {
    progress(`reading ${img.layerCount} layer${img.layerCount === 1 ? '' : 's'}`);
    const tree = await readLayers(img);
    const labels = addContainerFiles(tree, img, epoch);
    const arch = normalizeArch(img.platform.architecture) ?? img.platform.architecture;
    const bootstrap = img.ref.transport;
    const objects: SifObjectInput[] = [defFileObject(`bootstrap: ${bootstrap}\nfrom: ${ref.slice(ref.indexOf(':') + 1).replace(/^\/\//, '')}\n`)];
    if (Object.keys(labels).length) objects.push(labelsObject(labels));
    objects.push({
      dataType: DataType.PARTITION,
      partition: { fsType: FsType.SQUASHFS, partType: PartType.PRIMSYS, arch },
      data: {
        writeAt: async ({ path, offset }) => {
          progress('writing the SquashFS');
          // writeSif's handle is write-only, and libsquashfs reads blocks back to find
          // duplicates: give the writer a descriptor of its own that can read.
          const fd = openSync(path, 'r+');
          try {
            const r = await writeRootfs(tree, img, fd, { offset, compressor: opts.compressor ?? 'zstd', level: opts.level ?? (opts.compressor ? undefined : 3), mtime: epoch });
            return r.bytes;
          } finally {
            closeSync(fd);
          }
        },
      },
    });
    await writeSif(out, objects, { arch, ...sifIdentity(epoch) });
  } finally {
    await img.close();
  }
}

/** /.singularity.d from the image config, WORKDIR and the usual mount points; returns the labels. */
function addContainerFiles(tree: RootfsTree, img: FetchedImage, epoch: number | undefined): Record<string, string> {
  const f = containerFiles(img.config);
  const created = Date.parse((img.config as { created?: string }).created ?? '');
  const mtime = epoch ?? (Number.isFinite(created) ? Math.floor(created / 1000) : Math.floor(Date.now() / 1000));
  const dir = (mode = 0o755) => ({ type: 'dir' as const, mode, mtime, size: 0, children: new Map() });
  const file = (text: string, mode: number) => ({ type: 'file' as const, mode, mtime, size: Buffer.byteLength(text), bytes: Buffer.from(text) });
  for (const [p, mode] of STANDARD_DIRS) if (!tree.has(p)) tree.put(p, dir(mode));
  if (f.workdir && !tree.has(f.workdir)) tree.put(f.workdir, dir());
  for (const e of singularityDir({ runscript: f.runscript, env: { '10-docker2singularity.sh': f.env }, labels: f.labels })) {
    // The image's own /singularity or /environment (a file, or a link somewhere) stays.
    if (e.type === 'dir') {
      if (!tree.has(e.path)) tree.put(e.path, dir(e.mode));
    } else if (e.type === 'file') {
      tree.put(e.path, file(e.content, e.mode));
    } else if (!tree.has(e.path)) {
      tree.put(e.path, { type: 'symlink', mode: 0o777, mtime, size: 0, target: e.target });
    }
  }
  if (f.skippedEnv.length) progress(`ENV entries that sh can't export were left out: ${f.skippedEnv.join(' ')}`);
  return f.labels;
}
