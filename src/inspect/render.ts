// `ctr inspect`'s output, as Apptainer's: sections as plain text (in Apptainer's order:
// definition file, runscript, startscript, test, help, environment, labels), or JSON in
// Apptainer's schema, {"data":{"attributes":{...}},"type":"container"} (pkg/inspect/
// metadata.go: empty attributes left out, tab-indented, keys of maps sorted), with ctr's
// `image` beside `data` when asked for. Pure.
//
// Text goes to a terminal: what an image holds is printed with its control characters
// (escape sequences, carriage returns, C1 codes) shown as \xHH, never raw. JSON escapes
// them itself.
import type { ImageFacts, Inspection } from './inspect.js';

/** TEXT with every control character but newline and tab shown as \xHH (or \u{HHHH}). */
export function printable(text: string, keepNewlines = true): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\n' && keepNewlines) return c;
    if (c === '\t') return c;
    const n = c.codePointAt(0)!;
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
}

const trim = (s: string) => s.replace(/\n+$/, '');
const sorted = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

export function inspectionJson(i: Inspection): string {
  const a = attributes(i);
  if (i.apps && Object.keys(i.apps).length) a.apps = Object.fromEntries(Object.keys(i.apps).sort().map((n) => [n, attributes(i.apps![n])]));
  const out: Record<string, unknown> = { data: { attributes: a }, type: 'container' };
  if (i.image) out.image = i.image;
  return JSON.stringify(out, null, '\t') + '\n';
}

/** Apptainer's attributes of the image or of an app: empty ones left out. */
function attributes(i: Inspection): Record<string, unknown> {
  const a: Record<string, unknown> = {};
  if (i.environment && Object.keys(i.environment).length) a.environment = sorted(Object.fromEntries(Object.entries(i.environment).map(([k, v]) => [k, trim(v)])));
  if (i.labels && Object.keys(i.labels).length) a.labels = sorted(i.labels);
  for (const k of ['runscript', 'test', 'helpfile', 'deffile', 'startscript'] as const) {
    if (i[k]) a[k] = trim(i[k]!);
  }
  return a;
}

export function inspectionText(i: Inspection, app?: string): string {
  const parts: string[] = [];
  if (i.image) parts.push(imageText(i.image));
  // --list-apps: the names, one a line; --app NAME: that app's sections, as the image's.
  if (i.apps && app === undefined) for (const n of Object.keys(i.apps).sort()) parts.push(`${printable(n, false)}\n`);
  if (app !== undefined && i.apps?.[app]) return parts.join('') + inspectionText({ ...i.apps[app], deffile: i.deffile });
  for (const k of ['deffile', 'runscript', 'startscript', 'test', 'helpfile'] as const) {
    if (i[k]) parts.push(`${printable(trim(i[k]!))}\n`);
  }
  for (const [file, text] of Object.entries(sorted(i.environment ?? {}))) parts.push(`=== ${printable(file, false)} ===\n${printable(trim(text))}\n\n`);
  for (const [k, v] of Object.entries(sorted(i.labels ?? {}))) parts.push(`${printable(k, false)}: ${printable(v, false)}\n`);
  return parts.join('');
}

function imageText(m: ImageFacts): string {
  const lines = [`Image: ${printable(m.path, false)} (${m.kind})`];
  if (m.header) lines.push(`ID: ${m.header.id}`, `Arch: ${printable(m.header.arch ?? 'unknown', false)}`, `Created: ${m.header.created.toISOString()}`);
  if (m.squashfs) {
    const s = m.squashfs;
    lines.push(`SquashFS: ${s.compressor}, block size ${s.blockSize >= 1024 ? `${s.blockSize / 1024} KiB` : `${s.blockSize} B`}, ` +
      `${s.bytes} bytes, ${s.inodes} inodes, version ${s.version}, made ${s.created}`);
  }
  if (m.objects) {
    lines.push('Objects:', '  ID  |GROUP |LINK |SIF POSITION (start-end)  |TYPE');
    for (const o of m.objects) {
      const type = o.partition ? `${o.typeName} (${o.partition.fsTypeName}/${o.partition.partTypeName}/${o.partition.arch})` : o.typeName;
      lines.push(printable(`  ${String(o.id).padEnd(4)}|${(o.groupId ? String(o.groupId) : 'NONE').padEnd(6)}|${(o.link ? String(o.link) : 'NONE').padEnd(5)}|${`${o.offset}-${o.offset + o.size}`.padEnd(26)}|${type}`, false));
    }
  }
  return lines.join('\n') + '\n';
}
