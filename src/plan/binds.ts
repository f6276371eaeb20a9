// `-B/--bind SRC[:DST[:OPTS]]`, repeatable, each a comma list, as Apptainer takes it
// (its pkg/runtime/engine/apptainer/config/bind.go): OPTS is ro or rw, or several
// (`/a:/b:ro,rw`: a piece that is an option belongs to the bind before it); `\,` and `\:`
// put a comma or colon in a path. Pure: checks syntax only; whether SRC exists is a host
// fact (see host/facts.ts).
import { CtrError } from '../errors.js';

export interface BindSpec {
  src: string;
  dst: string;
  ro: boolean;
}

const OPTIONS = ['ro', 'rw'];
/** Apptainer's image binds, which ctr does not do. */
const IMAGE_OPTIONS = /^(image-src|id)(=|$)/;

/** Split S on SEP where it is not escaped by a backslash; the escapes stay. */
function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && (s[i + 1] === ',' || s[i + 1] === ':')) {
      cur += s[i] + s[i + 1];
      i++;
    } else if (s[i] === sep) {
      out.push(cur);
      cur = '';
    } else cur += s[i];
  }
  out.push(cur);
  return out;
}

const unescaped = (p: string) => p.replace(/\\([,:])/g, '$1');

export function parseBinds(values: readonly string[]): BindSpec[] {
  const specs: Array<{ text: string; parts: string[]; opts: string[] }> = [];
  for (const v of values) {
    for (const raw of splitUnescaped(v, ',')) {
      const piece = raw.trim();
      if (piece === '') continue;
      const last = specs[specs.length - 1];
      if ((OPTIONS.includes(piece) || IMAGE_OPTIONS.test(piece)) && last && last.parts.length === 3) {
        last.opts.push(piece);
        last.text += `,${piece}`;
        continue;
      }
      const parts = splitUnescaped(piece, ':');
      specs.push({ text: piece, parts, opts: parts.length === 3 ? [parts[2]] : [] });
    }
  }
  return specs.map(parseOne);
}

function parseOne({ text, parts, opts }: { text: string; parts: string[]; opts: string[] }): BindSpec {
  if (parts.length > 3) throw new CtrError(`bind ${text}`, 'expected SRC[:DST[:ro|rw]]');
  const src = unescaped(parts[0]);
  const dst = parts.length > 1 ? unescaped(parts[1]) : src;
  for (const o of opts) {
    if (IMAGE_OPTIONS.test(o)) throw new CtrError(`bind ${text}`, `${o}: image binds are not supported`);
    if (!OPTIONS.includes(o)) throw new CtrError(`bind ${text}`, `unknown mode "${o}" (ro or rw)`);
  }
  if (!dst.startsWith('/')) throw new CtrError(`bind ${text}`, `destination ${dst} is not an absolute path`);
  if (src === '') throw new CtrError(`bind ${text}`, 'empty source');
  return { src, dst: normalize(dst), ro: opts.includes('ro') };
}

/** Collapse "//" and a trailing "/" so destinations compare equal. */
export function normalize(path: string): string {
  const out = path.replace(/\/+/g, '/');
  return out.length > 1 ? out.replace(/\/$/, '') : out;
}

/** `-H/--home SRC[:DST]`. */
export function parseHome(spec: string): { src: string; dst?: string } {
  const [src, dst, ...rest] = spec.split(':');
  if (rest.length || !src) throw new CtrError(`home ${spec}`, 'expected SRC[:DST]');
  if (dst !== undefined && !dst.startsWith('/')) throw new CtrError(`home ${spec}`, `destination ${dst} is not an absolute path`);
  return dst === undefined ? { src } : { src, dst: normalize(dst) };
}
