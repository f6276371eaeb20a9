// What is in an image, read without mounting: the SIF header and objects (as the
// reference tool's `list` shows them), the definition file and labels stored as SIF
// objects, and from the root file system (through libsquashfs) the runscript, the
// environment scripts, labels.json and help.
import { CtrError } from '../errors.js';
import { openImage } from '../image/open.js';
import { readObject, readSif, type SifDescriptor, type SifHeader } from '../sif/read.js';
import { DataType } from '../sif/format.js';
import { SquashfsReader } from '../squashfs/read.js';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface Inspection {
  path: string;
  kind: 'sif' | 'squashfs' | 'dir';
  header?: SifHeader;
  objects?: Array<Omit<SifDescriptor, 'index'>>;
  deffile?: string;
  labels: Record<string, unknown>;
  runscript?: string;
  environment: Record<string, string>;
  help?: string;
}

const SD = '/.singularity.d';

export async function inspectImage(arg: string): Promise<Inspection> {
  const img = await openImage(arg);
  const out: Inspection = { path: img.path, kind: img.kind, labels: {}, environment: {} };
  if (img.kind === 'sif') {
    const sif = await readSif(img.path);
    out.header = sif.header;
    out.objects = sif.descriptors.map(({ index: _i, ...d }) => d);
    const def = sif.descriptors.find((d) => d.dataType === DataType.DEFFILE);
    if (def) out.deffile = (await readObject(img.path, def)).toString('utf8');
    for (const d of sif.descriptors.filter((x) => x.dataType === DataType.LABELS)) {
      Object.assign(out.labels, parseJson((await readObject(img.path, d)).toString('utf8'), `labels object ${d.id}`));
    }
  }
  const fsys = img.kind === 'dir' ? dirFs(img.path) : squashFs(img.path, img.offset);
  try {
    out.runscript = await fsys.read(`${SD}/runscript`);
    out.help = await fsys.read(`${SD}/runscript.help`);
    const labels = await fsys.read(`${SD}/labels.json`);
    if (labels) out.labels = { ...parseJson(labels, 'labels.json'), ...out.labels };
    for (const name of (await fsys.list(`${SD}/env`)).filter((n) => n.endsWith('.sh')).sort()) {
      out.environment[name] = (await fsys.read(`${SD}/env/${name}`)) ?? '';
    }
  } finally {
    fsys.close();
  }
  return out;
}

interface Fs { read(p: string): Promise<string | undefined>; list(p: string): Promise<string[]>; close(): void }

function squashFs(path: string, offset: number): Fs {
  const r = SquashfsReader.open(path, { offset });
  const exists = (p: string) => { try { r.stat(p); return true; } catch { return false; } };
  return {
    read: async (p) => (exists(p) && r.stat(p).type === 'file' ? r.readFile(p).toString('utf8') : undefined),
    list: async (p) => (exists(p) ? r.readdir(p).map((e) => e.name) : []),
    close: () => r.close(),
  };
}

function dirFs(root: string): Fs {
  return {
    read: (p) => readFile(join(root, p), 'utf8').catch(() => undefined),
    list: (p) => readdir(join(root, p)).catch(() => []),
    close: () => undefined,
  };
}

function parseJson(text: string, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' ? v : {};
  } catch (err) {
    throw new CtrError(`cannot read ${what}`, `not JSON: ${(err as Error).message}`);
  }
}

/** Human-readable rendering, sections separated by headings. */
export function renderInspection(i: Inspection): string {
  const lines: string[] = [`Image: ${i.path} (${i.kind})`];
  if (i.header) {
    const h = i.header;
    lines.push(`ID: ${h.id}`, `Arch: ${h.arch ?? 'unknown'}`, `Created: ${h.created.toISOString()}`, '', 'Objects:',
      '  ID  |GROUP |LINK |SIF POSITION (start-end)  |TYPE');
    for (const o of i.objects ?? []) {
      const type = o.partition ? `${o.typeName} (${o.partition.fsTypeName}/${o.partition.partTypeName}/${o.partition.arch})` : o.typeName;
      lines.push(`  ${String(o.id).padEnd(4)}|${(o.groupId ? String(o.groupId) : 'NONE').padEnd(6)}|${(o.link ? String(o.link) : 'NONE').padEnd(5)}|${`${o.offset}-${o.offset + o.size}`.padEnd(26)}|${type}`);
    }
  }
  const labels = Object.entries(i.labels);
  if (labels.length) lines.push('', 'Labels:', ...labels.map(([k, v]) => `  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`));
  for (const [name, text] of Object.entries(i.environment)) lines.push('', `Environment (${name}):`, indent(text));
  if (i.runscript) lines.push('', 'Runscript:', indent(i.runscript));
  if (i.help) lines.push('', 'Help:', indent(i.help));
  if (i.deffile) lines.push('', 'Definition file:', indent(i.deffile));
  return lines.join('\n') + '\n';
}

const indent = (s: string) => s.replace(/\s+$/, '').split('\n').map((l) => `  ${l}`).join('\n');
