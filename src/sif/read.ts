// Reading SIF images: only the 128-byte header and the descriptor table are read; object data
// (a multi-GB squashfs) is never touched unless a caller asks for one object with readObject.
//
// Every structural inconsistency is reported as a CtrError naming the image and the exact
// offsets involved, because a corrupt or truncated download is the common case in practice and
// "invalid argument" from a later mount attempt tells the user nothing.
//
// Nothing here assumes objects are packed or ordered: Singularity 3.x wrote every object at a
// page-aligned offset, sif v2 aligns only partitions; we go by each descriptor's offset/size.

import { closeSync, fstatSync, openSync } from 'node:fs';
import { CtrError, describeSystemError } from '../errors.js';
import { readFdAt } from '../files.js';
import {
  ARCH_UNKNOWN_CODE, DESCRIPTOR, DataType, EXTRA, FsType, GROUP_MASK, HEADER, PartType,
  SIF_MAGIC, SIF_VERSION, archFromCode, cString, dataTypeName, formatTypeName, fsTypeName,
  hashTypeName, messageTypeName, partTypeName, sbomFormatName, uuidToString,
} from './format.js';

export interface SifHeader {
  launch: string;
  version: string;
  /** Go arch name of the primary partition; absent when the header says "unknown". */
  arch?: string;
  id: string;
  created: Date;
  modified: Date;
  descriptorsFree: number;
  descriptorsTotal: number;
  descriptorsOffset: number;
  descriptorsSize: number;
  dataOffset: number;
  dataSize: number;
}

export interface SifPartitionInfo {
  fsType: number;
  fsTypeName: string;
  partType: number;
  partTypeName: string;
  /** Go arch name ('amd64'), or 'unknown'. */
  arch: string;
}

export interface SifSignatureInfo {
  hashType: number;
  hashTypeName: string;
  /** Upper-case hex of the signing key fingerprint (20 bytes); absent when not recorded. */
  entity?: string;
}

export interface SifDescriptor {
  /** Position in the descriptor table (0-based); IDs are usually index + 1 but need not be. */
  index: number;
  id: number;
  /** Group ID without the group mask bit; 0 = in no group. */
  groupId: number;
  /** Linked object ID, or group ID when linkIsGroup; 0 = no link. */
  link: number;
  linkIsGroup: boolean;
  dataType: number;
  typeName: string;
  offset: number;
  size: number;
  sizeWithPadding: number;
  created: Date;
  modified: Date;
  name: string;
  partition?: SifPartitionInfo;
  signature?: SifSignatureInfo;
  cryptoMessage?: { formatType: number; formatTypeName: string; messageType: number; messageTypeName: string };
  sbom?: { format: number; formatName: string };
}

export interface SifImage {
  header: SifHeader;
  /** Used descriptors only, in table order. */
  descriptors: SifDescriptor[];
  /** The first partition of type Primary System, if any. */
  primary?: SifDescriptor;
}

/** Same `what` for every image error, so the printed line reads `ctr: error: image X: ...`. */
function fail(path: string, why: string, cause?: unknown): never {
  throw new CtrError(`image ${path}`, why, { cause });
}

/** int64 → number, refusing values a JS number cannot hold exactly (never valid in a SIF). */
function int64(buf: Buffer, at: number, path: string, field: string): number {
  const v = buf.readBigInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    fail(path, `corrupt SIF: ${field} ${v} is out of range`);
  }
  return Number(v);
}

/** Unix seconds → Date. Go's zero time (year 1) is what deterministic images carry; keep it. */
function unixDate(seconds: number): Date {
  return new Date(seconds * 1000);
}

/**
 * Parse and validate the 128-byte global header. `buf` is the start of the file (at least
 * min(fileSize, 128) bytes); the descriptor table's position is checked against fileSize.
 */
export function parseHeader(buf: Buffer, fileSize: number, path = '<buffer>'): SifHeader {
  const magicEnd = HEADER.magic.offset + HEADER.magic.length;
  if (fileSize < magicEnd) {
    fail(path, `not a SIF file: ${fileSize} bytes is too short to hold a SIF header`);
  }
  if (!buf.subarray(HEADER.magic.offset, magicEnd).equals(SIF_MAGIC)) {
    fail(path, `not a SIF file: no SIF_MAGIC at offset ${HEADER.magic.offset}`);
  }
  if (fileSize < HEADER.size) {
    fail(path, `truncated SIF: the header needs ${HEADER.size} bytes but the file has ${fileSize}`);
  }
  if (buf.length < HEADER.size) throw new Error(`parseHeader: buffer holds ${buf.length} bytes, need ${HEADER.size}`);

  const version = cString(buf.subarray(HEADER.version.offset, HEADER.version.offset + HEADER.version.length));
  if (version !== SIF_VERSION) {
    fail(path, `unsupported SIF version ${JSON.stringify(version)} (ctr reads version "${SIF_VERSION}")`);
  }

  const archCodeStr = cString(buf.subarray(HEADER.arch.offset, HEADER.arch.offset + HEADER.arch.length));
  const arch = archCodeStr === ARCH_UNKNOWN_CODE ? undefined : archFromCode(archCodeStr);
  const h: SifHeader = {
    launch: cString(buf.subarray(HEADER.launch.offset, HEADER.launch.offset + HEADER.launch.length)),
    version,
    ...(arch !== undefined && arch !== 'unknown' ? { arch } : {}),
    id: uuidToString(buf.subarray(HEADER.id.offset, HEADER.id.offset + HEADER.id.length)),
    created: unixDate(int64(buf, HEADER.createdAt, path, 'creation time')),
    modified: unixDate(int64(buf, HEADER.modifiedAt, path, 'modification time')),
    descriptorsFree: int64(buf, HEADER.descriptorsFree, path, 'free descriptor count'),
    descriptorsTotal: int64(buf, HEADER.descriptorsTotal, path, 'descriptor count'),
    descriptorsOffset: int64(buf, HEADER.descriptorsOffset, path, 'descriptor table offset'),
    descriptorsSize: int64(buf, HEADER.descriptorsSize, path, 'descriptor table size'),
    dataOffset: int64(buf, HEADER.dataOffset, path, 'data offset'),
    dataSize: int64(buf, HEADER.dataSize, path, 'data size'),
  };

  if (h.descriptorsTotal < 0 || h.descriptorsFree < 0 || h.descriptorsFree > h.descriptorsTotal) {
    fail(path, `corrupt SIF: header counts ${h.descriptorsFree} free descriptors out of ${h.descriptorsTotal}`);
  }
  if (h.descriptorsSize < h.descriptorsTotal * DESCRIPTOR.size) {
    fail(path, `corrupt SIF: descriptor table of ${h.descriptorsSize} bytes cannot hold ` +
      `${h.descriptorsTotal} descriptors of ${DESCRIPTOR.size} bytes`);
  }
  if (h.descriptorsOffset < HEADER.size) {
    fail(path, `corrupt SIF: descriptor table at offset ${h.descriptorsOffset} overlaps the ${HEADER.size}-byte header`);
  }
  const tableEnd = h.descriptorsOffset + h.descriptorsSize;
  if (tableEnd > fileSize) {
    fail(path, `truncated SIF: descriptor table ends at ${tableEnd}, past end of file (${fileSize} bytes)`);
  }
  if (h.dataOffset < tableEnd && h.dataSize > 0) {
    fail(path, `corrupt SIF: descriptor table (${h.descriptorsOffset}-${tableEnd}) overlaps the data section ` +
      `starting at ${h.dataOffset}`);
  }
  return h;
}

/** Decode one used descriptor (`d` is exactly DESCRIPTOR.size bytes). */
function parseDescriptor(d: Buffer, index: number, path: string): SifDescriptor {
  const dataType = d.readInt32LE(DESCRIPTOR.dataType);
  const rawGroup = d.readUInt32LE(DESCRIPTOR.groupId);
  const rawLink = d.readUInt32LE(DESCRIPTOR.link);
  const field = (name: string) => `descriptor ${index} ${name}`;
  const desc: SifDescriptor = {
    index,
    id: d.readUInt32LE(DESCRIPTOR.id),
    groupId: (rawGroup & ~GROUP_MASK) >>> 0,
    link: (rawLink & ~GROUP_MASK) >>> 0,
    linkIsGroup: (rawLink & GROUP_MASK) >>> 0 === GROUP_MASK,
    dataType,
    typeName: dataTypeName(dataType),
    offset: int64(d, DESCRIPTOR.offset, path, field('offset')),
    size: int64(d, DESCRIPTOR.size_, path, field('size')),
    sizeWithPadding: int64(d, DESCRIPTOR.sizeWithPadding, path, field('padded size')),
    created: unixDate(int64(d, DESCRIPTOR.createdAt, path, field('creation time'))),
    modified: unixDate(int64(d, DESCRIPTOR.modifiedAt, path, field('modification time'))),
    name: cString(d.subarray(DESCRIPTOR.name.offset, DESCRIPTOR.name.offset + DESCRIPTOR.name.length)),
  };
  const x = d.subarray(DESCRIPTOR.extra.offset, DESCRIPTOR.extra.offset + DESCRIPTOR.extra.length);
  switch (dataType) {
    case DataType.PARTITION: {
      const fsType = x.readInt32LE(EXTRA.partition.fsType);
      const partType = x.readInt32LE(EXTRA.partition.partType);
      const code = cString(x.subarray(EXTRA.partition.arch, EXTRA.partition.arch + 3));
      desc.partition = { fsType, fsTypeName: fsTypeName(fsType), partType, partTypeName: partTypeName(partType), arch: archFromCode(code) };
      break;
    }
    case DataType.SIGNATURE: {
      const hashType = x.readInt32LE(EXTRA.signature.hashType);
      const fp = x.subarray(EXTRA.signature.entity, EXTRA.signature.entity + EXTRA.signature.fingerprintLength);
      desc.signature = {
        hashType, hashTypeName: hashTypeName(hashType),
        ...(fp.some((b) => b !== 0) ? { entity: fp.toString('hex').toUpperCase() } : {}),
      };
      break;
    }
    case DataType.CRYPTO_MESSAGE: {
      const formatType = x.readInt32LE(EXTRA.cryptoMessage.formatType);
      const messageType = x.readInt32LE(EXTRA.cryptoMessage.messageType);
      desc.cryptoMessage = { formatType, formatTypeName: formatTypeName(formatType), messageType, messageTypeName: messageTypeName(messageType) };
      break;
    }
    case DataType.SBOM: {
      const format = x.readInt32LE(EXTRA.sbom.format);
      desc.sbom = { format, formatName: sbomFormatName(format) };
      break;
    }
  }
  return desc;
}

function span(d: SifDescriptor): string {
  return `${d.offset}-${d.offset + d.size}`;
}

/**
 * Decode the descriptor table (`table` = the header's descriptorsSize bytes at descriptorsOffset)
 * and check every object against the file: inside it, clear of the header/table, no overlaps.
 */
export function parseDescriptors(table: Buffer, header: SifHeader, fileSize: number, path = '<buffer>'): SifDescriptor[] {
  const descriptors: SifDescriptor[] = [];
  for (let i = 0; i < header.descriptorsTotal; i++) {
    const d = table.subarray(i * DESCRIPTOR.size, (i + 1) * DESCRIPTOR.size);
    if (d[DESCRIPTOR.used] === 0) continue;
    descriptors.push(parseDescriptor(d, i, path));
  }

  const expectUsed = header.descriptorsTotal - header.descriptorsFree;
  if (descriptors.length !== expectUsed) {
    fail(path, `corrupt SIF: header counts ${expectUsed} used descriptors (${header.descriptorsTotal} total, ` +
      `${header.descriptorsFree} free) but the table has ${descriptors.length}`);
  }

  const seen = new Map<number, SifDescriptor>();
  const tableEnd = header.descriptorsOffset + header.descriptorsSize;
  for (const d of descriptors) {
    const label = `object ${d.id} (${d.typeName})`;
    const other = seen.get(d.id);
    if (other) fail(path, `corrupt SIF: descriptors ${other.index} and ${d.index} both have ID ${d.id}`);
    seen.set(d.id, d);
    if (d.offset < 0 || d.size < 0) {
      fail(path, `corrupt SIF: ${label} has offset ${d.offset} and size ${d.size}`);
    }
    if (d.offset + d.size > fileSize) {
      fail(path, `truncated SIF: ${label} at ${span(d)} ends past end of file (${fileSize} bytes)`);
    }
    if (d.size === 0) continue; // an empty object occupies no bytes, so it can overlap nothing
    if (d.offset < HEADER.size) {
      fail(path, `corrupt SIF: ${label} at ${span(d)} overlaps the ${HEADER.size}-byte header`);
    }
    if (d.offset < tableEnd && d.offset + d.size > header.descriptorsOffset) {
      fail(path, `corrupt SIF: ${label} at ${span(d)} overlaps the descriptor table (${header.descriptorsOffset}-${tableEnd})`);
    }
  }

  const byOffset = descriptors.filter((d) => d.size > 0).sort((a, b) => a.offset - b.offset || a.index - b.index);
  for (let i = 1; i < byOffset.length; i++) {
    const a = byOffset[i - 1], b = byOffset[i];
    if (b.offset < a.offset + a.size) {
      fail(path, `corrupt SIF: object ${a.id} (${span(a)}) and object ${b.id} (${span(b)}) overlap`);
    }
  }
  return descriptors;
}

function findPrimary(descriptors: SifDescriptor[]): SifDescriptor | undefined {
  return descriptors.find((d) => d.partition?.partType === PartType.PRIMSYS);
}

/**
 * Parse a SIF from an in-memory prefix of the file (`buf` starts at file offset 0 and reaches at
 * least the end of the descriptor table, or the end of file). `fileSize` is the real file size,
 * against which truncation is judged. Pure: this is what corruption tests drive.
 */
export function parseSif(buf: Buffer, fileSize: number, path = '<buffer>'): SifImage {
  const header = parseHeader(buf, fileSize, path);
  const tableEnd = header.descriptorsOffset + header.descriptorsSize;
  if (buf.length < tableEnd) throw new Error(`parseSif: buffer holds ${buf.length} bytes, the descriptor table ends at ${tableEnd}`);
  const descriptors = parseDescriptors(buf.subarray(header.descriptorsOffset, tableEnd), header, fileSize, path);
  const primary = findPrimary(descriptors);
  return { header, descriptors, ...(primary ? { primary } : {}) };
}

/** Read and validate a SIF's header and descriptor table (two reads; no object data). */
export async function readSif(path: string): Promise<SifImage> {
  return withFile(path, 'reading SIF', (fd) => {
    const { size: fileSize } = fstatSync(fd);
    const head = readFdAt(fd, HEADER.size, 0);
    const header = parseHeader(head, fileSize, path);
    const table = readFdAt(fd, header.descriptorsSize, header.descriptorsOffset);
    if (table.length < header.descriptorsSize) {
      fail(path, `truncated SIF: descriptor table ends at ${header.descriptorsOffset + header.descriptorsSize}, ` +
        `past end of file (${header.descriptorsOffset + table.length} bytes readable)`);
    }
    const descriptors = parseDescriptors(table, header, fileSize, path);
    const primary = findPrimary(descriptors);
    return { header, descriptors, ...(primary ? { primary } : {}) };
  });
}

/** Metadata objects (definition file, labels...) are read whole; an image is hostile
 * input, and a sparse multi-GB "labels" object must not be allocated. */
export const MAX_OBJECT_READ = 16 << 20;

/** Read one object's data (def file, labels, ...). Meant for small objects; it is all in memory. */
export async function readObject(path: string, desc: SifDescriptor): Promise<Buffer> {
  if (desc.size > MAX_OBJECT_READ) {
    fail(path, `object ${desc.id} (${desc.typeName}) is ${desc.size} bytes, more than the ${MAX_OBJECT_READ >> 20} MiB ctr reads of a metadata object`);
  }
  return withFile(path, `reading object ${desc.id}`, (fd) => {
    const data = readFdAt(fd, desc.size, desc.offset);
    if (data.length < desc.size) {
      fail(path, `truncated SIF: object ${desc.id} (${desc.typeName}) at ${span(desc)} ends past end of file ` +
        `(${desc.offset + data.length} bytes)`);
    }
    return data;
  });
}

/** Open PATH, run FN on it, close it; system errors become `image PATH: DOING: why`.
 * Synchronous, as src/files.ts explains: header reads on the per-rank start-up path. */
function withFile<T>(path: string, doing: string, fn: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    fail(path, describeSystemError(err), err);
  }
  try {
    return fn(fd);
  } catch (err) {
    if (err instanceof CtrError) throw err;
    fail(path, `${doing}: ${describeSystemError(err)}`, err);
  } finally {
    closeSync(fd);
  }
}

/**
 * The partition to mount: the one of type Primary System, which must be a plain squashfs.
 * Errors name what is wrong; ext3, encrypted squashfs and raw/archive partitions are refused.
 */
export function primaryPartition(img: SifImage, path: string): SifDescriptor {
  const prims = img.descriptors.filter((d) => d.partition?.partType === PartType.PRIMSYS);
  if (prims.length === 0) {
    const parts = img.descriptors.filter((d) => d.partition);
    fail(path, parts.length === 0
      ? 'no primary partition: the SIF holds no partition at all'
      : `no primary partition: the SIF has ${parts.length} partition(s) (${parts.map((p) => `object ${p.id}: ${p.partition!.partTypeName}`).join(', ')}) but none of type Primary System`);
  }
  if (prims.length > 1) {
    fail(path, `corrupt SIF: ${prims.length} primary partitions (objects ${prims.map((p) => p.id).join(', ')}); expected one`);
  }
  const p = prims[0];
  const fs = p.partition!.fsType;
  if (fs !== FsType.SQUASHFS) {
    const why = fs === FsType.ENCRYPTED_SQUASHFS ? 'encrypted images are not supported'
      : fs === FsType.EXT3 ? 'ext3 images need a kernel mount, which rootless ctr cannot do'
      : 'only squashfs partitions can be mounted';
    fail(path, `partition type ${p.partition!.fsTypeName} cannot be mounted (object ${p.id}): ${why}`);
  }
  return p;
}
