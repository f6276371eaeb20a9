// What is in an image, read without mounting: the SIF header and objects (as the
// reference tool's `list` shows them), the definition file and labels stored as SIF
// objects, and from the root file system (through libsquashfs) the runscript, the
// environment scripts, labels.json and help.
import { CtrError } from '../errors.js';
import { openImage } from '../image/open.js';
import { MAX_OBJECT_READ, readObject, readSif, type SifDescriptor, type SifHeader } from '../sif/read.js';
import { DataType } from '../sif/format.js';
import { SquashfsReader } from '../squashfs/read.js';
import { readFile, readdir, stat } from 'node:fs/promises';
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
    read: async (p) => {
      if (!exists(p) || r.stat(p).type !== 'file') return undefined;
      if (r.stat(p).size > MAX_OBJECT_READ) throw new CtrError(`image ${path}`, `${p} is larger than ${MAX_OBJECT_READ >> 20} MiB`);
      return r.readFile(p).toString('utf8');
    },
    list: async (p) => (exists(p) ? r.readdir(p).map((e) => e.name) : []),
    close: () => r.close(),
  };
}

function dirFs(root: string): Fs {
  return {
    // Only regular files, bounded: a FIFO would block the read for ever.
    read: async (p) => {
      const st = await stat(join(root, p)).catch(() => undefined);
      if (!st?.isFile()) return undefined;
      if (st.size > MAX_OBJECT_READ) throw new CtrError(`image ${root}`, `${p} is larger than ${MAX_OBJECT_READ >> 20} MiB`);
      return readFile(join(root, p), 'utf8').catch(() => undefined);
    },
    list: (p) => readdir(join(root, p)).catch(() => []),
    close: () => undefined,
  };
}

/** Labels nest no deeper than this (Apptainer's are name → string); deeper JSON is
 * refused rather than walked, rendered or re-serialised by recursion. */
const MAX_DEPTH = 32;

function parseJson(text: string, what: string): Record<string, unknown> {
  if (jsonDepth(text) > MAX_DEPTH) throw new CtrError(`cannot read ${what}`, `JSON nested more than ${MAX_DEPTH} levels deep`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CtrError(`cannot read ${what}`, `not JSON: ${(err as Error).message}`);
  }
  return v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : {};
}

/** The deepest nesting of brackets in TEXT, outside strings (a linear scan, no recursion). */
function jsonDepth(text: string): number {
  let depth = 0, max = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') max = Math.max(max, ++depth);
    else if (c === '}' || c === ']') depth--;
  }
  return max;
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
