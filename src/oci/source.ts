// fetchImage(): any supported reference → the image config and its layers as decompressed
// tar streams. Registry blobs go through the blob cache (downloaded in parallel, verified,
// then read back from the cache and verified again); layout and archive blobs are read in
// place and verified as they are read. Layers can be opened any number of times.
import { createReadStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { makeTempDir } from '../tmp.js';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CtrError, describeSystemError } from '../errors.js';
import type { Credentials } from './auth.js';
import { BlobCache, verified } from './cache.js';
import { decompress } from '../stream/decompress.js';
import { extractArchive } from './archive.js';
import {
  hostPlatform, parseConfig, parseManifest, parsePlatform, platformName, selectPlatform,
  type Descriptor, type ImageConfig, type ImageManifest, type Platform,
} from './manifest.js';
import { DownloadProgress } from './progress.js';
import { parseReference, type ImageRef } from './reference.js';
import { Registry } from './registry.js';

export interface FetchOptions {
  /** false: talk plain http to the registry (`--no-https`). Default true. */
  https?: boolean;
  /** Platform to pick from a multi-arch image: 'amd64', 'arm64', 'arm/v7', Node names too. Default the host. */
  arch?: string;
  /** Cache root (blobs under CACHE/blobs/sha256); default $XDG_CACHE_HOME/ctr or ~/.cache/ctr. */
  cacheDir?: string;
  credentials?: Credentials;
  /** Parallel blob downloads (default 4). */
  parallel?: number;
  /** Attempts per request and first backoff in ms (defaults 4 and 250). */
  attempts?: number;
  backoffMs?: number;
}

export interface FetchedImage {
  ref: ImageRef;
  config: ImageConfig;
  /** The platform of the image that was chosen (from its config). */
  platform: Platform;
  layerCount: number;
  /** Layer `i` (0 = bottom) as a decompressed tar stream, verified as it is read. */
  openLayer(i: number): Readable;
  /** Every layer in order, bottom first; each stream must be consumed before the next. */
  layers: AsyncIterable<Readable>;
  /** Remove temporary files (archives are unpacked to a temporary directory). */
  close(): Promise<void>;
}

interface RawLayer { label: string; open: () => AsyncIterable<Uint8Array>; diffId?: string }

export async function fetchImage(reference: string, opts: FetchOptions = {}): Promise<FetchedImage> {
  const ref = parseReference(reference);
  const what = `cannot pull ${reference}`;
  const want = opts.arch ? parsePlatform(opts.arch) : hostPlatform();
  let tmp: string | undefined;
  let got: { config: ImageConfig; layers: RawLayer[] };
  try {
    switch (ref.transport) {
      case 'docker':
        got = await fromRegistry(ref, want, opts, what);
        break;
      case 'oci':
        got = await fromLayout(ref.path, ref.tag, want, what);
        break;
      case 'oci-archive':
        tmp = await unpack(ref.path, what);
        got = await fromLayout(tmp, ref.tag, want, what);
        break;
      case 'docker-archive':
        tmp = await unpack(ref.path, what);
        got = await fromDockerArchive(tmp, what);
        break;
    }
  } catch (err) {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const { config, layers } = got;
  const openLayer = (i: number): Readable => {
    const l = layers[i];
    let tar = decompress(l.open(), `cannot read ${l.label}`);
    if (l.diffId) tar = verified(tar, l.diffId, undefined, { what, label: `${l.label} (uncompressed)` });
    return Readable.from(tar, { objectMode: false });
  };
  return {
    ref,
    config,
    platform: { os: config.os ?? 'linux', architecture: config.architecture ?? want.architecture },
    layerCount: layers.length,
    openLayer,
    layers: { async *[Symbol.asyncIterator]() { for (let i = 0; i < layers.length; i++) yield openLayer(i); } },
    close: async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); },
  };
}

const short = (d: string) => d.slice(0, 'sha256:'.length + 12);
const layerLabel = (i: number, n: number, d?: string) => `layer ${i + 1}/${n}${d ? ` (${short(d)})` : ''}`;

async function fromRegistry(ref: Extract<ImageRef, { transport: 'docker' }>, want: Platform, opts: FetchOptions, what: string) {
  const cache = new BlobCache(opts.cacheDir);
  const progress = new DownloadProgress();
  const reg = new Registry(ref.registry, ref.repository, {
    https: opts.https ?? true, credentials: opts.credentials, attempts: opts.attempts, backoffMs: opts.backoffMs,
    onBytes: (n) => progress.bytes(n),
  }, what);
  let m = await reg.manifest(ref.digest ?? ref.tag!);
  let doc = parseManifest(m.bytes, m.mediaType);
  if (doc.kind === 'index') {
    const d = selectPlatform(doc, want, what);
    m = await reg.manifest(d.digest);
    doc = parseManifest(m.bytes, m.mediaType);
    if (doc.kind !== 'manifest') throw new CtrError(what, `malformed manifest: the entry for ${platformName(want)} is an index, not an image manifest`);
  }
  const manifest = doc;
  const n = manifest.layers.length;
  const blobs: Array<{ d: Descriptor; label: string }> = [
    { d: manifest.config, label: `config (${short(manifest.config.digest)})` },
    ...manifest.layers.map((d, i) => ({ d, label: layerLabel(i, n, d.digest) })),
  ];
  for (const b of blobs) if (!(await cache.has(b.d.digest, b.d.size))) progress.add(b.d.size);
  try {
    await pool(blobs, opts.parallel ?? 4, (b) => reg.blob(b.d.digest, b.d.size, cache, b.label));
  } finally {
    progress.end();
  }
  const config = parseConfig(await collect(cache.read(manifest.config.digest, manifest.config.size, { what, label: blobs[0].label })));
  checkPlatform(config, want, what);
  return {
    config,
    layers: manifest.layers.map((d, i) => ({
      label: layerLabel(i, n, d.digest),
      open: () => cache.read(d.digest, d.size, { what, label: layerLabel(i, n, d.digest) }),
    })),
  };
}

function checkPlatform(config: ImageConfig, want: Platform, what: string): void {
  if (config.architecture && config.architecture !== want.architecture) {
    throw new CtrError(what, `the image is for ${config.os ?? 'linux'}/${config.architecture}, not ${platformName(want)}`, { hint: 'choose the platform with --arch' });
  }
}

/** Run `fn` on every item, at most `n` at a time; the first failure wins (after the others settle). */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      const t = items[next++];
      try {
        await fn(t);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failure) throw failure.err;
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

// --- OCI image layouts (oci:DIR, and oci-archive: once unpacked) ---

const REF_NAME = 'org.opencontainers.image.ref.name';

async function fromLayout(dir: string, tag: string | undefined, want: Platform, what: string) {
  const blobPath = (digest: string) => join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const readBlob = async (d: Descriptor, label: string) =>
    collect(verified(createReadStream(blobPath(d.digest)), d.digest, d.size, { what, label })).catch((err) => {
      if (err instanceof CtrError) throw err;
      throw new CtrError(what, `${label}: ${describeSystemError(err)}`);
    });
  let indexBytes: Buffer;
  try {
    indexBytes = await readFile(join(dir, 'index.json'));
  } catch (err) {
    throw new CtrError(what, `not an OCI image layout: ${join(dir, 'index.json')}: ${describeSystemError(err)}`);
  }
  const index = parseManifest(indexBytes, undefined, 'index.json');
  if (index.kind !== 'index') throw new CtrError(what, 'malformed index.json: not an image index');
  const tags = index.manifests.map((m) => m.annotations?.[REF_NAME]).filter((t): t is string => !!t);
  let desc: Descriptor | undefined;
  if (tag !== undefined) {
    desc = index.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
    if (!desc) throw new CtrError(what, `no image tagged ${JSON.stringify(tag)} in the layout (tags: ${tags.join(', ') || 'none'})`);
  } else if (index.manifests.length === 1) {
    desc = index.manifests[0];
  } else {
    throw new CtrError(what, `the layout holds ${index.manifests.length} images; name one with :TAG (tags: ${tags.join(', ') || 'none'})`);
  }
  let doc = parseManifest(await readBlob(desc, `manifest ${short(desc.digest)}`), desc.mediaType);
  if (doc.kind === 'index') {
    const d = selectPlatform(doc, want, what);
    doc = parseManifest(await readBlob(d, `manifest ${short(d.digest)}`), d.mediaType);
    if (doc.kind !== 'manifest') throw new CtrError(what, `malformed manifest: the entry for ${platformName(want)} is an index, not an image manifest`);
  }
  const manifest: ImageManifest = doc;
  const config = parseConfig(await readBlob(manifest.config, `config (${short(manifest.config.digest)})`));
  const n = manifest.layers.length;
  return {
    config,
    layers: manifest.layers.map((d, i) => {
      const label = layerLabel(i, n, d.digest);
      return { label, open: () => verified(createReadStream(blobPath(d.digest), { highWaterMark: 1 << 20 }), d.digest, d.size, { what, label }) };
    }),
  };
}

// --- docker save tarballs ---

async function fromDockerArchive(dir: string, what: string) {
  let list: Array<{ Config?: string; Layers?: string[] }>;
  try {
    list = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  } catch (err) {
    throw new CtrError(what, `not a docker save archive: manifest.json: ${err instanceof SyntaxError ? err.message : describeSystemError(err)}`);
  }
  const entry = Array.isArray(list) ? list[0] : undefined;
  if (!entry || typeof entry.Config !== 'string' || !Array.isArray(entry.Layers)) {
    throw new CtrError(what, 'malformed manifest.json: expected [{Config, Layers}]');
  }
  const inside = (p: string) => {
    if (p.split('/').includes('..') || p.startsWith('/')) throw new CtrError(what, `malformed manifest.json: path ${JSON.stringify(p)} leaves the archive`);
    return join(dir, p);
  };
  let configBytes: Buffer;
  try {
    configBytes = await readFile(inside(entry.Config));
  } catch (err) {
    throw new CtrError(what, `image config ${entry.Config}: ${describeSystemError(err)}`);
  }
  const config = parseConfig(configBytes);
  const diffIds = config.rootfs?.diff_ids ?? [];
  const n = entry.Layers.length;
  return {
    config,
    layers: entry.Layers.map((p, i) => ({
      label: `layer ${i + 1}/${n} (${p})`,
      open: () => createReadStream(inside(p), { highWaterMark: 1 << 20 }),
      ...(diffIds.length === n && /^sha256:[a-f0-9]{64}$/.test(diffIds[i]) ? { diffId: diffIds[i] } : {}),
    })),
  };
}

async function unpack(archive: string, what: string): Promise<string> {
  const dir = await makeTempDir('ctr-pull-');
  try {
    await extractArchive(archive, dir, what);
    return dir;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
