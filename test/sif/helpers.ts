// Shared bits for the SIF tests: the reference siftool as an oracle, scratch dirs, and
// rendering our parsed descriptors the way `siftool list` prints them.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { SifDescriptor } from '../../src/sif/read.js';

export { SIFTOOL } from '../helpers/paths.js';
import { SIFTOOL } from '../helpers/paths.js';
export const REF_IMAGES = '/usr/share/gocode/src/github.com/sylabs/sif/test/images';

export async function siftool(...args: string[]): Promise<string> {
  const r = await execa(SIFTOOL, args, { stripFinalNewline: false });
  return r.stdout;
}

export async function siftoolBytes(...args: string[]): Promise<Buffer> {
  const r = await execa(SIFTOOL, args, { encoding: 'buffer', stripFinalNewline: false });
  return Buffer.from(r.stdout);
}

export async function scratch(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ctr-sif-test-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Rows of `siftool list` output: [id, group, link, position, type], trimmed. */
export function parseSiftoolList(out: string): string[][] {
  return out.split('\n')
    .filter((l) => /^\d+\s+\|/.test(l))
    .map((l) => l.split('|').map((c) => c.trim()));
}

const SIFTOOL_TYPE_NAMES: Record<string, string> = { Partition: 'FS', 'Def.File': 'Def.FILE' };

/** Our descriptor as a `siftool list` row (siftool says "*System" for the primary partition). */
export function asSiftoolRow(d: SifDescriptor): string[] {
  const type = SIFTOOL_TYPE_NAMES[d.typeName] ?? d.typeName;
  let typeCol = type;
  if (d.partition) {
    const pt = d.partition.partType === 2 ? '*System' : d.partition.partTypeName;
    typeCol = `${type} (${d.partition.fsTypeName}/${pt}/${d.partition.arch})`;
  } else if (d.signature) {
    typeCol = `${type} (${d.signature.hashTypeName})`;
  } else if (d.cryptoMessage) {
    typeCol = `${type} (${d.cryptoMessage.formatTypeName}/${d.cryptoMessage.messageTypeName})`;
  } else if (d.sbom) {
    typeCol = `${type} (${d.sbom.formatName})`;
  }
  return [
    String(d.id),
    d.groupId === 0 ? 'NONE' : String(d.groupId),
    d.link === 0 ? 'NONE' : d.linkIsGroup ? `${String(d.link).padEnd(3)} (G)` : String(d.link),
    `${d.offset}-${d.offset + d.size}`,
    typeCol,
  ];
}

/** `siftool header` output as a key → value map. */
export function parseSiftoolHeader(out: string): Record<string, string> {
  const m: Record<string, string> = {};
  for (const l of out.split('\n')) {
    const i = l.indexOf(':');
    if (i > 0) m[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  return m;
}

/** Build a squashfs of a tiny tree with mksquashfs; returns its path. */
export async function makeSquashfs(dir: string): Promise<string> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const root = join(dir, 'rootfs');
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'hello'), 'hello from squashfs\n');
  const img = join(dir, 'rootfs.sqfs');
  await execa('mksquashfs', [root, img, '-noappend', '-quiet', '-all-root', '-mkfs-time', '0', '-all-time', '0']);
  return img;
}
