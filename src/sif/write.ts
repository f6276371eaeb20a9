// Writing SIF "01" images the way the reference implementation (sylabs/sif v2, used by
// Apptainer) lays them out, so that siftool/Apptainer/Singularity read them:
//
//   0       128-byte global header
//   4096    descriptor table, 48 × 585 bytes (ends at 32176 = the data offset)
//   32176   objects, in input order, back to back; partitions start on a 4096 boundary (so
//           they can be mounted at their offset), the gap counted in sizeWithPadding.
//
// Determinism: the output is a pure function of the inputs, the id and the time (no
// randomness, no wall clock, every gap explicitly zeroed), so builds under SOURCE_DATE_EPOCH
// are byte-reproducible when the caller also fixes the id.
//
// Two levels: writeSif() does everything; planLayout() + encodeSifMetadata() let a caller that
// writes a partition itself (e.g. mksquashfs -o <offset> into the output file) know the offset
// in advance and produce the header and descriptor table afterwards.

import { randomUUID } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { CtrError, describeSystemError } from '../errors.js';
import { tempBeside } from '../tmp.js';
import {
  ARCH_UNKNOWN_CODE, DEFAULTS, DESCRIPTOR, DataType, EXTRA, FsType, GROUP_MASK, HEADER, PartType,
  SIF_MAGIC, SIF_VERSION, alignUp, archCode, normalizeArch, uuidToBytes,
} from './format.js';

/** Where an object's bytes come from. */
export type SifDataSource =
  | Buffer
  | { path: string }
  | { stream: AsyncIterable<Uint8Array> }
  /** The callback writes the data itself at `offset` (fh or path) and returns the byte count. */
  | { writeAt: (target: { fh: FileHandle; path: string; offset: number }) => Promise<number> };

/** Everything about an object except its bytes. */
export interface SifObjectMeta {
  dataType: number;
  name?: string;
  /** Object group; default 1 like the reference tool, 0 = no group. */
  groupId?: number;
  /** Linked object ID (or group ID with linkIsGroup); default none. */
  link?: number;
  linkIsGroup?: boolean;
  /** Byte alignment of the object's offset; default 4096 for partitions, none otherwise. */
  alignment?: number;
  /** Required for DataType.PARTITION. arch defaults to the image arch (opts.arch). */
  partition?: { fsType?: number; partType?: number; arch?: string };
  /** Object time; default the image time. */
  time?: Date;
}

export interface SifObjectInput extends SifObjectMeta {
  data: SifDataSource;
}

export interface SifWriteOptions {
  /** Launch script, at most 31 bytes; default `#!/usr/bin/env run-singularity\n`. */
  launch?: string;
  /** Image UUID; default a random one (pass one for reproducible output). */
  id?: string;
  /** Image creation/modification time; default now (pass one for reproducible output). */
  time?: Date;
  /** Architecture of the image's partitions, Go ('amd64') or Node ('x64') naming. */
  arch: string;
  /** Descriptor table capacity; default 48 like the reference. */
  descriptorCapacity?: number;
}

export interface PlacedObject {
  meta: SifObjectMeta;
  id: number;
  offset: number;
  /** Zero bytes between the previous object's end and `offset`. */
  padding: number;
  /** Undefined only for a last object whose size was not known at planning time. */
  size?: number;
}

export interface SifLayout {
  descriptorsOffset: number;
  descriptorCapacity: number;
  descriptorsSize: number;
  dataOffset: number;
  objects: PlacedObject[];
}

function bad(out: string, why: string): never {
  throw new CtrError(`SIF ${out}`, why);
}

function defaultAlignment(m: SifObjectMeta): number {
  return m.alignment ?? (m.dataType === DataType.PARTITION ? DEFAULTS.partitionAlignment : 0);
}

/**
 * Place objects in order after the descriptor table. Every object needs a size except the last,
 * whose offset does not depend on its own size: that is the slot for a streamed squashfs.
 */
export function planLayout(objects: Array<SifObjectMeta & { size?: number }>, opts: { descriptorCapacity?: number } = {}): SifLayout {
  const descriptorCapacity = opts.descriptorCapacity ?? DEFAULTS.descriptorCapacity;
  if (objects.length > descriptorCapacity) {
    throw new Error(`planLayout: ${objects.length} objects do not fit in ${descriptorCapacity} descriptors`);
  }
  const descriptorsOffset = DEFAULTS.descriptorsOffset;
  const descriptorsSize = descriptorCapacity * DESCRIPTOR.size;
  const dataOffset = descriptorsOffset + descriptorsSize;
  let cursor = dataOffset;
  const placed: PlacedObject[] = objects.map((o, i) => {
    const offset = alignUp(cursor, defaultAlignment(o));
    const { size, ...meta } = o;
    if (size === undefined && i !== objects.length - 1) {
      throw new Error(`planLayout: object ${i + 1} has no size but is not the last object`);
    }
    const p: PlacedObject = { meta, id: i + 1, offset, padding: offset - cursor, ...(size !== undefined ? { size } : {}) };
    cursor = offset + (size ?? 0);
    return p;
  });
  return { descriptorsOffset, descriptorCapacity, descriptorsSize, dataOffset, objects: placed };
}

function writeInt64(buf: Buffer, at: number, v: number): void {
  buf.writeBigInt64LE(BigInt(v), at);
}

function unixSeconds(t: Date): number {
  return Math.floor(t.getTime() / 1000);
}

/**
 * Header and descriptor table for a layout whose objects all have final sizes (`sizes[i]`
 * overrides/completes `layout.objects[i].size`). Returns one buffer covering file offsets
 * 0..dataOffset: header, zero gap, table.
 */
export function encodeSifMetadata(layout: SifLayout, opts: SifWriteOptions, sizes: Array<number | undefined> = [], out = '<buffer>'): Buffer {
  const launch = Buffer.from(opts.launch ?? DEFAULTS.launchScript, 'utf8');
  if (launch.length >= HEADER.launch.length) {
    bad(out, `launch script is ${launch.length} bytes; at most ${HEADER.launch.length - 1} fit in the header`);
  }
  const idBytes = uuidToBytes(opts.id ?? randomUUID());
  if (!idBytes) bad(out, `image id ${JSON.stringify(opts.id)} is not a UUID`);
  const goArch = normalizeArch(opts.arch);
  if (!goArch) bad(out, `architecture ${JSON.stringify(opts.arch)} has no SIF code`);
  const time = unixSeconds(opts.time ?? new Date());

  const buf = Buffer.alloc(layout.dataOffset);
  let headerArch: string = ARCH_UNKNOWN_CODE;
  let dataEnd = layout.dataOffset;

  layout.objects.forEach((o, i) => {
    const size = sizes[i] ?? o.size;
    if (size === undefined) throw new Error(`encodeSifMetadata: object ${o.id} has no size`);
    const m = o.meta;
    const d = buf.subarray(layout.descriptorsOffset + i * DESCRIPTOR.size, layout.descriptorsOffset + (i + 1) * DESCRIPTOR.size);
    d.writeInt32LE(m.dataType, DESCRIPTOR.dataType);
    d[DESCRIPTOR.used] = 1;
    d.writeUInt32LE(o.id, DESCRIPTOR.id);
    const group = m.groupId ?? DEFAULTS.objectGroup;
    // The reference always sets the mask bit, even for "no group" (group 0).
    d.writeUInt32LE((group | GROUP_MASK) >>> 0, DESCRIPTOR.groupId);
    const link = m.link ?? 0;
    d.writeUInt32LE(link !== 0 && m.linkIsGroup ? (link | GROUP_MASK) >>> 0 : link, DESCRIPTOR.link);
    writeInt64(d, DESCRIPTOR.offset, o.offset);
    writeInt64(d, DESCRIPTOR.size_, size);
    writeInt64(d, DESCRIPTOR.sizeWithPadding, o.padding + size);
    const t = m.time ? unixSeconds(m.time) : time;
    writeInt64(d, DESCRIPTOR.createdAt, t);
    writeInt64(d, DESCRIPTOR.modifiedAt, t);
    const name = Buffer.from(m.name ?? '', 'utf8');
    if (name.length > DESCRIPTOR.name.length) bad(out, `object ${o.id} name is ${name.length} bytes; at most ${DESCRIPTOR.name.length} fit`);
    name.copy(d, DESCRIPTOR.name.offset);

    const x = d.subarray(DESCRIPTOR.extra.offset);
    if (m.dataType === DataType.PARTITION) {
      const p = m.partition ?? {};
      const pArch = normalizeArch(p.arch ?? goArch);
      const code = pArch && archCode(pArch);
      if (!code) bad(out, `object ${o.id}: architecture ${JSON.stringify(p.arch)} has no SIF code`);
      const partType = p.partType ?? PartType.PRIMSYS;
      x.writeInt32LE(p.fsType ?? FsType.SQUASHFS, EXTRA.partition.fsType);
      x.writeInt32LE(partType, EXTRA.partition.partType);
      x.write(code, EXTRA.partition.arch, 'latin1');
      if (partType === PartType.PRIMSYS) {
        if (headerArch !== ARCH_UNKNOWN_CODE) bad(out, `object ${o.id} is a second primary partition`);
        headerArch = code;
      }
    } else if (m.partition) {
      bad(out, `object ${o.id} has partition metadata but data type 0x${m.dataType.toString(16)}`);
    }
    dataEnd = o.offset + size;
  });

  launch.copy(buf, HEADER.launch.offset);
  SIF_MAGIC.copy(buf, HEADER.magic.offset);
  buf.write(SIF_VERSION, HEADER.version.offset, 'latin1');
  buf.write(headerArch, HEADER.arch.offset, 'latin1');
  idBytes.copy(buf, HEADER.id.offset);
  writeInt64(buf, HEADER.createdAt, time);
  writeInt64(buf, HEADER.modifiedAt, time);
  writeInt64(buf, HEADER.descriptorsFree, layout.descriptorCapacity - layout.objects.length);
  writeInt64(buf, HEADER.descriptorsTotal, layout.descriptorCapacity);
  writeInt64(buf, HEADER.descriptorsOffset, layout.descriptorsOffset);
  writeInt64(buf, HEADER.descriptorsSize, layout.descriptorsSize);
  writeInt64(buf, HEADER.dataOffset, layout.dataOffset);
  writeInt64(buf, HEADER.dataSize, dataEnd - layout.dataOffset);
  return buf;
}

async function writeFully(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Write one object's bytes at `offset`; returns how many were written. */
async function writeSource(fh: FileHandle, path: string, offset: number, src: SifDataSource): Promise<number> {
  if (Buffer.isBuffer(src)) {
    await writeFully(fh, src, offset);
    return src.length;
  }
  if ('writeAt' in src) return src.writeAt({ fh, path, offset });
  let pos = offset;
  if ('path' in src) {
    const inFh = await open(src.path, 'r');
    try {
      const chunk = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const { bytesRead } = await inFh.read(chunk, 0, chunk.length, null);
        if (bytesRead === 0) break;
        await writeFully(fh, chunk.subarray(0, bytesRead), pos);
        pos += bytesRead;
      }
    } finally {
      await inFh.close();
    }
    return pos - offset;
  }
  for await (const chunk of src.stream) {
    await writeFully(fh, chunk, pos);
    pos += chunk.length;
  }
  return pos - offset;
}

/**
 * Write a complete SIF to `out`: via a temporary file in the same directory, renamed into place
 * once complete, so a failed or interrupted build never leaves a half-written image behind.
 * Objects are written in order; a `writeAt` source receives the temporary path and its offset.
 */
export async function writeSif(out: string, objects: SifObjectInput[], opts: SifWriteOptions): Promise<void> {
  const what = `SIF ${out}`;
  if (objects.length > (opts.descriptorCapacity ?? DEFAULTS.descriptorCapacity)) {
    bad(out, `${objects.length} objects do not fit in ${opts.descriptorCapacity ?? DEFAULTS.descriptorCapacity} descriptors`);
  }
  // Fix id and time once, and check the header inputs before writing gigabytes of data.
  opts = { ...opts, id: opts.id ?? randomUUID(), time: opts.time ?? new Date() };
  encodeSifMetadata(planLayout([], opts), opts, [], out);
  const tmp = tempBeside(out);
  let fh: FileHandle | undefined;
  try {
    // w+: a SquashFS written in place reads its own blocks back (deduplication).
    fh = await open(tmp, 'w+', 0o755);
    // Offsets depend on the sizes before them, so place objects one at a time as written.
    const metas: Array<SifObjectMeta & { size: number }> = [];
    for (const o of objects) {
      const { data, ...meta } = o;
      const layout = planLayout([...metas, meta], opts);
      const placed = layout.objects[layout.objects.length - 1];
      const start = placed.offset - placed.padding;
      if (placed.padding > 0) await writeFully(fh, Buffer.alloc(placed.padding), start);
      const size = await writeSource(fh, tmp, placed.offset, data);
      metas.push({ ...meta, size });
    }
    const layout = planLayout(metas, opts);
    const meta = encodeSifMetadata(layout, opts, [], out);
    await writeFully(fh, meta, 0);
    const last = layout.objects[layout.objects.length - 1];
    await fh.truncate(last ? last.offset + last.size! : layout.dataOffset);
    await fh.close();
    fh = undefined;
    await rename(tmp, out);
  } catch (err) {
    await fh?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    if (err instanceof CtrError) throw err;
    throw new CtrError(what, `writing SIF: ${describeSystemError(err)}`, { cause: err });
  }
}

/** A primary squashfs partition (the image's root filesystem). */
export function partitionObject(data: SifDataSource, opts: { arch?: string; fsType?: number; partType?: number; name?: string } = {}): SifObjectInput {
  return {
    dataType: DataType.PARTITION,
    data,
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    partition: {
      fsType: opts.fsType ?? FsType.SQUASHFS,
      partType: opts.partType ?? PartType.PRIMSYS,
      ...(opts.arch !== undefined ? { arch: opts.arch } : {}),
    },
  };
}

/** The definition file the image was built from (data type 0x4001). */
export function defFileObject(text: string | Buffer): SifObjectInput {
  return { dataType: DataType.DEFFILE, data: Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8') };
}

/**
 * Image labels as JSON (data type 0x4003). Keys are sorted so that the bytes do not depend on
 * insertion order (Go's encoding/json sorts map keys too).
 */
export function labelsObject(labels: Record<string, string> | Buffer): SifObjectInput {
  const data = Buffer.isBuffer(labels) ? labels
    : Buffer.from(JSON.stringify(Object.fromEntries(Object.keys(labels).sort().map((k) => [k, labels[k]]))), 'utf8');
  return { dataType: DataType.LABELS, data };
}
