// `ctr build OUT.sif IN.sif`: a SIF as the build source, as Apptainer takes one. The image
// is not unpacked: its SquashFS partition is copied byte for byte into a new SIF, with the
// definition file and labels it carries, and a new identity (UUID, time).
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { readObject, readSif, primaryPartition } from '../sif/read.js';
import { DataType } from '../sif/format.js';
import { writeSif, partitionObject, defFileObject, labelsObject, type SifObjectInput } from '../sif/write.js';
import { sifIdentity } from './pack.js';

export const SIF_MAGIC = 'SIF_MAGIC';

/** Is HEAD (the file's first bytes) a SIF header? The magic follows the 32-byte launch line. */
export function isSif(head: Buffer): boolean {
  return head.subarray(32, 32 + SIF_MAGIC.length).toString('latin1') === SIF_MAGIC;
}

export async function resif(source: string, out: string, epoch: number | undefined): Promise<void> {
  const img = await readSif(source);
  const part = primaryPartition(img, source);
  const objects: SifObjectInput[] = [];
  for (const d of img.descriptors) {
    if (d.dataType === DataType.DEFFILE) objects.push(defFileObject(await readObject(source, d)));
    if (d.dataType === DataType.LABELS) objects.push(labelsObject(await readObject(source, d)));
  }
  const arch = part.partition!.arch;
  objects.push(partitionObject({
    writeAt: async ({ fh, offset }) => {
      let at = offset;
      await pipeline(createReadStream(source, { start: part.offset, end: part.offset + part.size - 1 }), new Writable({
        write(chunk: Buffer, _enc, done) {
          fh.write(chunk, 0, chunk.length, at).then(({ bytesWritten }) => { at += bytesWritten; done(); }, done);
        },
      }));
      return at - offset;
    },
  }, { arch }));
  await writeSif(out, objects, { arch, ...sifIdentity(epoch) });
}
