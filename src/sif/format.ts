// SIF ("Singularity Image Format", spec version "01" as written by Sylabs sif v2, Apptainer and
// Singularity 3.x): the on-disk constants and struct layouts, and nothing else. No fs here, so the
// reader and the writer can share one definition of every byte position.
//
// All integers are little-endian and the structs are packed (Go's encoding/binary writes fields
// back to back, no alignment padding), which is why the descriptor is an odd 585 bytes.

/** Magic at offset 32 of the global header, NUL included. */
export const SIF_MAGIC = Buffer.from('SIF_MAGIC\0', 'latin1');
/** The only spec version there is; stored as "01\0". */
export const SIF_VERSION = '01';

/** Global header layout (128 bytes). */
export const HEADER = {
  size: 128,
  launch: { offset: 0, length: 32 },
  magic: { offset: 32, length: 10 },
  version: { offset: 42, length: 3 },
  arch: { offset: 45, length: 3 },
  id: { offset: 48, length: 16 },
  createdAt: 64, // int64, Unix seconds
  modifiedAt: 72, // int64
  descriptorsFree: 80, // int64
  descriptorsTotal: 88, // int64
  descriptorsOffset: 96, // int64
  descriptorsSize: 104, // int64
  dataOffset: 112, // int64
  dataSize: 120, // int64 (includes alignment padding between objects)
} as const;

/** Descriptor layout (585 bytes, packed). */
export const DESCRIPTOR = {
  size: 585,
  dataType: 0, // int32
  used: 4, // bool (1 byte)
  id: 5, // uint32
  groupId: 9, // uint32, with GROUP_MASK set when the object is in a group
  link: 13, // uint32, with GROUP_MASK set when it links to a group
  offset: 17, // int64
  size_: 25, // int64 (object size)
  sizeWithPadding: 33, // int64 (size plus the alignment gap before the object)
  createdAt: 41, // int64
  modifiedAt: 49, // int64
  uid: 57, // int64, deprecated, always 0
  gid: 65, // int64, deprecated, always 0
  name: { offset: 73, length: 128 },
  extra: { offset: 201, length: 384 }, // type-specific metadata, see below
} as const;

/** Offsets inside the descriptor's `extra` field, per data type. */
export const EXTRA = {
  partition: { fsType: 0, partType: 4, arch: 8 }, // int32, int32, [3]byte arch code
  signature: { hashType: 0, entity: 4, entityLength: 256, fingerprintLength: 20 },
  cryptoMessage: { formatType: 0, messageType: 4 },
  sbom: { format: 0 },
} as const;

/** Bit set in groupId (and in link, to mean "links to a group"). */
export const GROUP_MASK = 0xf0000000;

/** What the reference tool (and Apptainer) use when creating an image. */
export const DEFAULTS = {
  descriptorsOffset: 4096,
  descriptorCapacity: 48,
  /** Partitions are page-aligned so that they can be loop/fuse-mounted at their offset. */
  partitionAlignment: 4096,
  objectGroup: 1,
  launchScript: '#!/usr/bin/env run-singularity\n',
} as const;

export const DataType = {
  DEFFILE: 0x4001,
  ENVVAR: 0x4002,
  LABELS: 0x4003,
  PARTITION: 0x4004,
  SIGNATURE: 0x4005,
  GENERIC_JSON: 0x4006,
  GENERIC: 0x4007,
  CRYPTO_MESSAGE: 0x4008,
  SBOM: 0x4009,
} as const;

const DATA_TYPE_NAMES: Record<number, string> = {
  [DataType.DEFFILE]: 'Def.File',
  [DataType.ENVVAR]: 'Env.Vars',
  [DataType.LABELS]: 'JSON.Labels',
  [DataType.PARTITION]: 'Partition',
  [DataType.SIGNATURE]: 'Signature',
  [DataType.GENERIC_JSON]: 'JSON.Generic',
  [DataType.GENERIC]: 'Generic/Raw',
  [DataType.CRYPTO_MESSAGE]: 'Cryptographic Message',
  [DataType.SBOM]: 'SBOM',
};
export function dataTypeName(t: number): string {
  return DATA_TYPE_NAMES[t] ?? `Unknown (0x${t.toString(16)})`;
}

export const FsType = { SQUASHFS: 1, EXT3: 2, IMMUOBJ: 3, RAW: 4, ENCRYPTED_SQUASHFS: 5 } as const;
const FS_TYPE_NAMES: Record<number, string> = {
  1: 'Squashfs', 2: 'Ext3', 3: 'Archive', 4: 'Raw', 5: 'Encrypted squashfs',
};
export function fsTypeName(t: number): string {
  return FS_TYPE_NAMES[t] ?? `Unknown (${t})`;
}

export const PartType = { SYSTEM: 1, PRIMSYS: 2, DATA: 3, OVERLAY: 4 } as const;
const PART_TYPE_NAMES: Record<number, string> = {
  1: 'System', 2: 'Primary System', 3: 'Data', 4: 'Overlay',
};
export function partTypeName(t: number): string {
  return PART_TYPE_NAMES[t] ?? `Unknown (${t})`;
}

/** Signature hash types; names as Go's crypto.Hash prints them. */
const HASH_TYPE_NAMES: Record<number, string> = {
  1: 'SHA-256', 2: 'SHA-384', 3: 'SHA-512', 4: 'BLAKE2s-256', 5: 'BLAKE2b-256',
};
export function hashTypeName(t: number): string {
  return HASH_TYPE_NAMES[t] ?? `Unknown (${t})`;
}

const FORMAT_TYPE_NAMES: Record<number, string> = { 1: 'OpenPGP', 2: 'PEM' };
export function formatTypeName(t: number): string {
  return FORMAT_TYPE_NAMES[t] ?? 'Unknown';
}
const MESSAGE_TYPE_NAMES: Record<number, string> = { 0x100: 'Clear Signature', 0x200: 'RSA-OAEP' };
export function messageTypeName(t: number): string {
  return MESSAGE_TYPE_NAMES[t] ?? 'Unknown';
}
const SBOM_FORMAT_NAMES: Record<number, string> = {
  1: 'cyclonedx-json', 2: 'cyclonedx-xml', 3: 'github-json', 4: 'spdx-json',
  5: 'spdx-rdf', 6: 'spdx-tag-value', 7: 'spdx-yaml', 8: 'syft-json',
};
export function sbomFormatName(t: number): string {
  return SBOM_FORMAT_NAMES[t] ?? 'unknown';
}

// Architectures: one table for SIF, OCI and the host (src/arch.ts).
export { ARCH_UNKNOWN_CODE, archCode, archFromCode, goArchFromNode, normalizeArch } from '../arch.js';

/** Round `offset` up to a multiple of `alignment` (0 or 1: no alignment). */
export function alignUp(offset: number, alignment: number): number {
  if (alignment <= 1) return offset;
  const rem = offset % alignment;
  return rem === 0 ? offset : offset + alignment - rem;
}

/** UUID bytes → canonical 8-4-4-4-12 lowercase string. */
export function uuidToString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Canonical UUID string → 16 bytes; undefined when the string is not a UUID. */
export function uuidToBytes(s: string): Buffer | undefined {
  if (!/^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/.test(s)) return undefined;
  return Buffer.from(s.replace(/-/g, ''), 'hex');
}

/** A fixed-size NUL-padded string field → its text (trailing NULs dropped, as Go does). */
export function cString(b: Buffer): string {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.toString('utf8', 0, end);
}
