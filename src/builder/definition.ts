// Apptainer definition files: a header of `Key: value` lines, then `%section` blocks.
// Pure parsing; every error names the line. Sections kept verbatim (scripts).
import { CtrError } from '../errors.js';
import { APP_NAME, APP_NAME_RULE } from '../image/scif.js';

export const SECTIONS = ['pre', 'setup', 'files', 'post', 'environment', 'runscript', 'labels', 'help', 'test', 'startscript', 'arguments'] as const;
/** Sections whose header line may name the shell: `%post -c /bin/bash`. */
const SHELL_SECTIONS: readonly SectionName[] = ['pre', 'setup', 'post', 'test'];
export type SectionName = (typeof SECTIONS)[number];
/** SCIF app sections (Apptainer's internal/pkg/build/apps): `%appinstall NAME`. */
export const APP_SECTIONS = ['appinstall', 'appfiles', 'appenv', 'apptest', 'apphelp', 'apprun', 'appstart', 'applabels'] as const;
export type AppSectionName = (typeof APP_SECTIONS)[number];

/** One SCIF app: its sections' text, as the definition file has them. */
export interface AppDefinition {
  name: string;
  sections: Partial<Record<AppSectionName, string>>;
}

export interface Definition {
  /** Header keys, lower-cased: bootstrap, from, include, mirrorurl, osversion, ... */
  header: Record<string, string>;
  bootstrap: string;
  sections: Partial<Record<SectionName, string>>;
  /** `%post -c /bin/bash -l`: the shell command line a script section runs under. */
  shells: Partial<Record<SectionName, string>>;
  /** %files lines as [src, dst] (dst defaults to src). */
  files: Array<[string, string]>;
  /** %labels as name → value. */
  labels: Record<string, string>;
  /** SCIF apps, in the order the file first names them (%appinstall runs in that order). */
  apps: AppDefinition[];
  raw: string;
}

const BOOTSTRAPS = ['localimage', 'busybox', 'debootstrap', 'scratch', 'docker', 'oci', 'oci-archive', 'docker-archive'];

export function parseDefinition(text: string, file: string): Definition {
  const fail = (line: number, why: string): never => { throw new CtrError(`definition file ${file}`, `line ${line}: ${why}`); };
  const header: Record<string, string> = {};
  const sections: Partial<Record<SectionName, string>> = {};
  const shells: Partial<Record<SectionName, string>> = {};
  const lines = text.split('\n');
  const apps = new Map<string, AppDefinition>();
  let current: SectionName | undefined;
  let currentApp: { app: AppDefinition; section: AppSectionName } | undefined;
  let body: string[] = [];
  const close = () => {
    const text = body.join('\n').replace(/\s+$/, '') + '\n';
    if (currentApp) currentApp.app.sections[currentApp.section] = text;
    else if (current) sections[current] = text;
  };
  lines.forEach((raw, i) => {
    const n = i + 1;
    const sec = /^%([A-Za-z]+)\b(.*)$/.exec(raw);
    if (sec) {
      const name = sec[1].toLowerCase() as SectionName;
      if ((APP_SECTIONS as readonly string[]).includes(name)) {
        const appName = sec[2].split('#')[0].trim().split(/\s+/)[0];
        if (!appName) fail(n, `%${name}: no app name (%${name} NAME)`);
        if (!APP_NAME.test(appName)) fail(n, `%${name} ${appName}: not an app name (${APP_NAME_RULE})`);
        const app = apps.get(appName) ?? { name: appName, sections: {} };
        apps.set(appName, app);
        const section = name as unknown as AppSectionName;
        if (app.sections[section] !== undefined || (currentApp?.app === app && currentApp.section === section)) fail(n, `section %${name} ${appName} appears twice`);
        close();
        current = name;
        currentApp = { app, section };
        body = [];
        return;
      }
      if (!SECTIONS.includes(name)) fail(n, `unknown section %${sec[1]}`);
      if (sections[name] !== undefined || current === name) fail(n, `section %${name} appears twice`);
      const args = sec[2].split('#')[0].trim();
      if (name === 'files' && /^from\s/.test(args)) fail(n, `%files ${args}: multi-stage builds are not supported`);
      if (args !== '' && SHELL_SECTIONS.includes(name)) shells[name] = sectionShell(args, name, (why) => fail(n, why));
      close();
      current = name;
      currentApp = undefined;
      body = [];
      return;
    }
    // A second header after the sections: Apptainer's multi-stage build, which ctr
    // refuses whole rather than building one stage and ignoring the others.
    if (current && /^bootstrap\s*:/i.test(raw)) {
      fail(n, 'multi-stage definitions (a second "Bootstrap:") are not supported; build the first stage to a SIF and start the next from it with "Bootstrap: localimage"');
    }
    if (current) { body.push(raw); return; }
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const kv = /^([A-Za-z][A-Za-z0-9_-]*)\s*:\s*(.*)$/.exec(line);
    if (!kv) fail(n, `expected "Key: value" in the header, got ${JSON.stringify(line)}`);
    const key = kv![1].toLowerCase();
    if (key in header) fail(n, `header key ${kv![1]} appears twice`);
    header[key] = kv![2].trim();
  });
  close();
  const bootstrap = (header.bootstrap ?? '').toLowerCase();
  if (!bootstrap) fail(1, 'no "Bootstrap:" header');
  if (!BOOTSTRAPS.includes(bootstrap)) fail(lineOf(lines, /^\s*bootstrap\s*:/i), `unknown bootstrap agent "${header.bootstrap}" (one of ${BOOTSTRAPS.join(', ')})`);
  if (['localimage', 'docker', 'oci', 'oci-archive', 'docker-archive'].includes(bootstrap) && !header.from) {
    fail(lineOf(lines, /^\s*bootstrap\s*:/i), `bootstrap ${bootstrap} needs a "From:" header`);
  }
  return { header, bootstrap, sections, shells, files: parseFiles(sections.files, lines, fail), labels: parseLabels(sections.labels), apps: [...apps.values()], raw: text };
}

/** `-c SHELL [ARGS]` (Apptainer's only section option): everything after -c is the shell. */
function sectionShell(args: string, name: string, fail: (why: string) => never): string {
  const words = args.split(/\s+/);
  const c = words.indexOf('-c');
  if (c < 0) fail(`%${name} ${args}: unknown option (only -c SHELL)`);
  if (c === words.length - 1) fail(`%${name} -c: no shell given`);
  return words.slice(c + 1).join(' ');
}

function lineOf(lines: string[], re: RegExp): number {
  return lines.findIndex((l) => re.test(l)) + 1;
}

function parseFiles(body: string | undefined, lines: string[], fail: (line: number, why: string) => never): Array<[string, string]> {
  if (!body) return [];
  const start = lineOf(lines, /^%files\b/i);
  const out: Array<[string, string]> = [];
  body.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    if (parts.length > 2) fail(start + 1 + i, `%files line has ${parts.length} fields; expected SRC [DST]`);
    out.push([parts[0], parts[1] ?? parts[0]]);
  });
  return out;
}

export function parseLabels(body: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of (body ?? '').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    out[m[1]] = m[2];
  }
  return out;
}
