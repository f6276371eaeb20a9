// What is in an image, read without mounting, in Apptainer's sections: labels (the
// default), the definition file, runscript, startscript, test, help file and environment
// scripts, from SIF objects and the image's /.singularity.d (through libsquashfs); and,
// ctr's own, the image file itself (SIF header and objects, the SquashFS compressor and
// block size). Only the sections asked for are read. Image content is hostile: every file
// read is bounded (MAX_OBJECT_READ), so are the environment scripts' count and the
// labels' nesting; render.ts keeps control characters away from the terminal.
import { CtrError } from '../errors.js';
import { openImage } from '../image/open.js';
import { readSquashfsFacts, type SquashfsFacts } from '../squashfs/superblock.js';
import { MAX_OBJECT_READ, readObject, readSif, type SifDescriptor, type SifHeader } from '../sif/read.js';
import { DataType } from '../sif/format.js';
import { SquashfsReader } from '../squashfs/read.js';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { APP_NAME, APP_NAME_RULE, SCIF_APPS } from '../image/scif.js';

/** Apptainer's sections (cmd/internal/cli/inspect.go), and ctr's `image`. */
export const SECTIONS = ['labels', 'deffile', 'runscript', 'startscript', 'test', 'helpfile', 'environment', 'image'] as const;
export type Section = typeof SECTIONS[number];

export interface ImageFacts {
  path: string;
  kind: 'sif' | 'squashfs' | 'dir';
  header?: SifHeader;
  objects?: Array<Omit<SifDescriptor, 'index'>>;
  squashfs?: SquashfsFacts;
}

/** Apptainer's attributes (pkg/inspect/metadata.go); absent when empty or not asked for. */
export interface Inspection {
  labels?: Record<string, string>;
  deffile?: string;
  runscript?: string;
  startscript?: string;
  test?: string;
  helpfile?: string;
  /** In-image path of each script → its text, as Apptainer keys them. */
  environment?: Record<string, string>;
  image?: ImageFacts;
  /** SCIF apps (/scif/apps/NAME): every app, without sections, for --list-apps; the
   * one --app names with its sections (Apptainer's attributes.apps). */
  apps?: Record<string, AppInspection>;
}

export type AppInspection = Pick<Inspection, 'labels' | 'runscript' | 'startscript' | 'test' | 'helpfile' | 'environment'>;

export interface InspectApps {
  /** --app NAME: the sections from the app's /scif/apps/NAME/scif instead of /.singularity.d. */
  app?: string;
  /** --list-apps */
  listApps?: boolean;
  /** --all: with listApps, each app's sections too. */
  allApps?: boolean;
}

/** More apps than this is not an image anyone built. */
const MAX_APPS = 256;

const SD = '/.singularity.d';
/** More environment scripts than this is not an image anyone built. */
const MAX_ENV_SCRIPTS = 64;

export async function inspectImage(arg: string, sections: ReadonlySet<Section>, apps: InspectApps = {}): Promise<Inspection> {
  const img = await openImage(arg);
  const out: Inspection = {};
  if (apps.app !== undefined && !APP_NAME.test(apps.app)) throw new CtrError(`--app ${JSON.stringify(apps.app)}`, `not an app name (${APP_NAME_RULE})`);
  const sif = img.kind === 'sif' ? await readSif(img.path) : undefined;
  const sifObject = async (type: number) => {
    const d = sif?.descriptors.find((x) => x.dataType === type);
    return d ? (await readObject(img.path, d)).toString('utf8') : undefined;
  };
  const fsys = img.kind === 'dir' ? dirFs(img.path) : squashFs(img.path, img.offset);
  try {
    if (apps.listApps) {
      const names = (await fsys.list(SCIF_APPS)).filter((n) => APP_NAME.test(n)).sort();
      if (names.length > MAX_APPS) throw new CtrError(`image ${img.path}`, `${names.length} apps in ${SCIF_APPS}, more than ${MAX_APPS}`);
      out.apps = {};
      for (const n of names) if ((await fsys.list(`${SCIF_APPS}/${n}/scif`)).length) out.apps[n] = {};
    }
    // --all: every app with the sections asked for, besides the image's own.
    if (apps.allApps) for (const n of Object.keys(out.apps ?? {})) out.apps![n] = await readApp(fsys, n, sections, img.path);
    if (apps.app !== undefined) {
      const meta = `${SCIF_APPS}/${apps.app}/scif`;
      if (!(await fsys.list(meta)).length) throw new CtrError(`app ${apps.app}`, `not in image ${arg} (no ${meta})`, { hint: `ctr inspect --list-apps ${arg}` });
      out.apps = { ...out.apps, [apps.app]: await readApp(fsys, apps.app, sections, img.path) };
      sections = new Set([...sections].filter((x) => x === 'deffile' || x === 'image'));
    }
    if (sections.has('labels')) {
      const labels: Record<string, string> = {};
      const inImage = await fsys.read(`${SD}/labels.json`);
      if (inImage !== undefined) Object.assign(labels, parseLabels(inImage, 'labels.json'));
      for (const d of sif?.descriptors.filter((x) => x.dataType === DataType.LABELS) ?? []) {
        Object.assign(labels, parseLabels((await readObject(img.path, d)).toString('utf8'), `labels object ${d.id}`));
      }
      out.labels = labels;
    }
    if (sections.has('deffile')) {
      out.deffile = (await sifObject(DataType.DEFFILE)) ?? (await fsys.read(`${SD}/Apptainer`)) ?? (await fsys.read(`${SD}/Singularity`));
    }
    if (sections.has('runscript')) out.runscript = await fsys.read(`${SD}/runscript`);
    if (sections.has('startscript')) out.startscript = await fsys.read(`${SD}/startscript`);
    if (sections.has('test')) out.test = await fsys.read(`${SD}/test`);
    if (sections.has('helpfile')) out.helpfile = await fsys.read(`${SD}/runscript.help`);
    if (sections.has('environment')) {
      // Apptainer shows the scripts a build writes: 10-docker*.sh (from an OCI image's
      // config) and 9*-environment.sh (%environment), not the ones it ships itself.
      out.environment = await envScripts(fsys, `${SD}/env`, /^(10-docker.*|9.*-environment)\.sh$/, img.path);
    }
    if (sections.has('image')) {
      out.image = {
        path: img.path, kind: img.kind,
        ...(sif ? { header: sif.header, objects: sif.descriptors.map(({ index: _i, ...d }) => d) } : {}),
        ...(img.kind !== 'dir' ? { squashfs: readSquashfsFacts(img.path, img.offset, `image ${img.path}`) } : {}),
      };
    }
  } finally {
    fsys.close();
  }
  return out;
}

/** The sections of app NAME, from its /scif/apps/NAME/scif. */
async function readApp(fsys: Fs, name: string, sections: ReadonlySet<Section>, image: string): Promise<AppInspection> {
  const meta = `${SCIF_APPS}/${name}/scif`;
  const a: AppInspection = {};
  if (sections.has('labels')) {
    const text = await fsys.read(`${meta}/labels.json`);
    a.labels = text === undefined ? {} : parseLabels(text, `${meta}/labels.json`);
  }
  if (sections.has('runscript')) a.runscript = await fsys.read(`${meta}/runscript`);
  if (sections.has('startscript')) a.startscript = await fsys.read(`${meta}/startscript`);
  if (sections.has('test')) a.test = await fsys.read(`${meta}/test`);
  if (sections.has('helpfile')) a.helpfile = await fsys.read(`${meta}/runscript.help`);
  if (sections.has('environment')) a.environment = await envScripts(fsys, `${meta}/env`, /^9.*-environment\.sh$/, image);
  return a;
}

/** The scripts in DIR whose names match WHICH, keyed by their path in the image. */
async function envScripts(fsys: Fs, dir: string, which: RegExp, image: string): Promise<Record<string, string>> {
  const names = (await fsys.list(dir)).filter((n) => which.test(n)).sort();
  if (names.length > MAX_ENV_SCRIPTS) throw new CtrError(`image ${image}`, `${names.length} environment scripts in ${dir}, more than ${MAX_ENV_SCRIPTS}`);
  const out: Record<string, string> = {};
  for (const n of names) {
    const text = await fsys.read(`${dir}/${n}`);
    if (text !== undefined) out[`${dir}/${n}`] = text;
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
    list: async (p) => (exists(p) && r.stat(p).type === 'dir' ? r.readdir(p).map((e) => e.name) : []),
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

/** Labels as Apptainer has them, name → string; other JSON values as their JSON text. */
function parseLabels(text: string, what: string): Record<string, string> {
  if (jsonDepth(text) > MAX_DEPTH) throw new CtrError(`cannot read ${what}`, `JSON nested more than ${MAX_DEPTH} levels deep`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CtrError(`cannot read ${what}`, `not JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)]));
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
