// A root file system directory → a SIF: definition file and labels as SIF objects, then
// the SquashFS written straight at its final offset (no temporary image, no copy).
import { open } from 'node:fs/promises';
import type { RateMeter } from './progress.js';
import { CtrError } from '../errors.js';
import { defFileObject, labelsObject, writeSif, type SifObjectInput } from '../sif/write.js';
import { DataType, PartType, FsType } from '../sif/format.js';
import { writeSquashfsFromDir } from '../squashfs/fromdir.js';
import type { CompressorName } from '../squashfs/structs.js';

export interface PackOptions {
  compressor: CompressorName;
  level?: number;
  /** Fixed time (seconds) for every file, the SquashFS and the SIF: reproducible output. */
  epoch?: number;
  arch: string;
  deffile?: string;
  labels?: Record<string, string>;
  /** Store the files' owners (a build over a subordinate id range); else all root. */
  keepOwnership?: boolean;
  /** Where the files' bytes are counted, on a terminal (progress.ts). */
  meter?: RateMeter;
}

export async function packSif(rootfs: string, out: string, opts: PackOptions): Promise<void> {
  const objects: SifObjectInput[] = [];
  if (opts.deffile !== undefined) objects.push(defFileObject(opts.deffile));
  if (opts.labels && Object.keys(opts.labels).length) objects.push(labelsObject(opts.labels));
  objects.push({
    dataType: DataType.PARTITION,
    partition: { fsType: FsType.SQUASHFS, partType: PartType.PRIMSYS, arch: opts.arch },
    data: {
      writeAt: async ({ fh, offset }) => {
        const r = await writeSquashfsFromDir(rootfs, fh.fd, {
          offset, compressor: opts.compressor, level: opts.level, mtime: opts.epoch, keepOwnership: opts.keepOwnership,
          onData: opts.meter && ((n) => opts.meter!.add(n)),
        });
        return r.bytes;
      },
    },
  });
  try {
    await writeSif(out, objects, { arch: opts.arch, ...sifIdentity(opts.epoch) });
  } finally {
    opts.meter?.end();
  }
}

/** Reproducible builds: with a fixed time, the SIF's time and id derive from it. */
export function sifIdentity(epoch: number | undefined): { time?: Date; id?: string } {
  if (epoch === undefined) return {};
  return { time: new Date(epoch * 1000), id: `00000000-0000-4000-8000-${epoch.toString(16).padStart(12, '0').slice(-12)}` };
}

/** OUT must not exist unless --force; checked before any work starts. */
export async function checkOutput(out: string, force: boolean): Promise<void> {
  if (force) return;
  try {
    const fh = await open(out, 'r');
    await fh.close();
  } catch {
    return;
  }
  throw new CtrError(`output ${out}`, 'already exists (use --force to overwrite)');
}
