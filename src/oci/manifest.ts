// Manifests, image indexes and image configs: validation and platform selection. Pure:
// bytes in, checked objects out. Both OCI and Docker v2 schema 2 media types are accepted.
import { endianness } from 'node:os';
import { archVariant, goArchFromNode, normalizeArch } from '../arch.js';
import { CtrError } from '../errors.js';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** What a registry is asked for, best first. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(', ');

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform { os: string; architecture: string; variant?: string }

export interface ImageManifest { kind: 'manifest'; config: Descriptor; layers: Descriptor[] }
export interface ImageIndex { kind: 'index'; manifests: Descriptor[] }

/** The parts of the image config that shape the container. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: {
    Env?: string[] | null;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
  };
  rootfs?: { type?: string; diff_ids?: string[] };
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

function malformed(what: string, why: string): CtrError {
  return new CtrError(`malformed ${what}`, why);
}

function descriptor(d: unknown, what: string, where: string): Descriptor {
  const o = d as Record<string, unknown>;
  if (!o || typeof o !== 'object') throw malformed(what, `${where} is not an object`);
  if (typeof o.digest !== 'string' || !DIGEST_RE.test(o.digest)) {
    throw malformed(what, `${where} has no valid sha256 digest${typeof o.digest === 'string' ? ` (${JSON.stringify(o.digest)})` : ''}`);
  }
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw malformed(what, `${where} has no valid size`);
  return o as unknown as Descriptor;
}

/** Parse manifest or index bytes; `mediaType` is the Content-Type the registry sent, if any. */
export function parseManifest(bytes: Uint8Array, mediaType?: string, what = 'manifest'): ImageManifest | ImageIndex {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw malformed(what, `not JSON (${(err as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw malformed(what, 'not a JSON object');
  const type = (typeof doc.mediaType === 'string' && doc.mediaType) || (mediaType ?? '').split(';')[0].trim();
  if (doc.schemaVersion !== 2) throw malformed(what, `unsupported schemaVersion ${JSON.stringify(doc.schemaVersion)} (schema 2 is supported)`);
  const isIndex = type === MEDIA.ociIndex || type === MEDIA.dockerList || (!type && Array.isArray(doc.manifests));
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) throw malformed(what, 'index without a manifests list');
    return { kind: 'index', manifests: doc.manifests.map((m, i) => descriptor(m, what, `manifests[${i}]`)) };
  }
  if (type && type !== MEDIA.ociManifest && type !== MEDIA.dockerManifest) throw malformed(what, `unsupported media type ${type}`);
  if (!doc.config) throw malformed(what, 'no config');
  if (!Array.isArray(doc.layers)) throw malformed(what, 'no layers list');
  return {
    kind: 'manifest',
    config: descriptor(doc.config, what, 'config'),
    layers: doc.layers.map((l, i) => descriptor(l, what, `layers[${i}]`)),
  };
}

export function parseConfig(bytes: Uint8Array): ImageConfig {
  let doc: ImageConfig;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw malformed('image config', `not JSON (${(err as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw malformed('image config', 'not a JSON object');
  const c = doc.config;
  if (c !== undefined && c !== null && typeof c !== 'object') throw malformed('image config', '"config" is not an object');
  for (const k of ['Env', 'Entrypoint', 'Cmd'] as const) {
    const v = c?.[k];
    if (v != null && (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))) throw malformed('image config', `${k} is not a list of strings`);
  }
  return doc;
}

/** The platform to pull for a machine of Node's ARCH (or any other naming: see arch.ts). */
export function hostPlatform(nodeArch: string = process.arch, endian: 'LE' | 'BE' = endianness()): Platform {
  const architecture = goArchFromNode(nodeArch, endian) ?? normalizeArch(nodeArch) ?? nodeArch;
  const variant = archVariant(architecture);
  return { os: 'linux', architecture, ...(variant ? { variant } : {}) };
}

/** `--arch` values: Go names, Node names, and `arm/v7`-style variants. */
export function parsePlatform(arch: string): Platform {
  const [a, variant] = arch.split('/');
  const base = hostPlatform(a);
  return variant ? { ...base, variant } : base;
}

export function platformName(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * The index entry for `want`: same os and architecture; a variant must match when both give
 * one (arm64 entries often carry none). Attestation entries (os "unknown") never match.
 */
export function selectPlatform(index: ImageIndex, want: Platform, what: string): Descriptor {
  const fits = index.manifests.filter((m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture);
  const exact = fits.find((m) => (m.platform!.variant ?? '') === (want.variant ?? ''));
  const loose = fits.find((m) => !m.platform!.variant || !want.variant);
  const hit = exact ?? loose;
  if (hit) return hit;
  const avail = index.manifests.filter((m) => m.platform && m.platform.os !== 'unknown').map((m) => platformName(m.platform!));
  throw new CtrError(`${what}: no image for platform ${platformName(want)}`,
    `available: ${avail.length ? [...new Set(avail)].join(', ') : 'none'}`, { hint: 'choose one with --arch' });
}
