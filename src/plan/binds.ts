// `-B/--bind SRC[:DST[:OPTS]]`, repeatable, each a comma list, as Apptainer takes it
// (its pkg/runtime/engine/apptainer/config/bind.go): OPTS is ro or rw, or several
// (`/a:/b:ro,rw`: a piece that is an option belongs to the bind before it); `\,` and `\:`
// put a comma or colon in a path. `image-src=PATH` (default /) and `id=N` make it an image
// bind: SRC is a SquashFS file or a SIF (its partition N, else the primary one) and PATH
// inside it is bound at DST, read-only. Pure: checks syntax only; whether SRC exists is a host
// fact (see host/facts.ts).
import { CtrError } from '../errors.js';

export interface BindSpec {
  src: string;
  dst: string;
  ro: boolean;
  /** An image bind: the path inside the image, and the SIF partition's id if given. */
  image?: { src: string; id?: number };
}

const OPTIONS = ['ro', 'rw'];
/** Apptainer's image binds. */
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
  let image: BindSpec['image'];
  for (const o of opts) {
    if (IMAGE_OPTIONS.test(o)) {
      image = { src: '/', ...image, ...imageOption(text, o) };
      continue;
    }
    if (!OPTIONS.includes(o)) throw new CtrError(`bind ${text}`, `unknown mode "${o}" (ro or rw)`);
  }
  if (!dst.startsWith('/')) throw new CtrError(`bind ${text}`, `destination ${dst} is not an absolute path`);
  if (src === '') throw new CtrError(`bind ${text}`, 'empty source');
  if (image) return { src, dst: normalize(dst), ro: true, image };
  return { src, dst: normalize(dst), ro: opts.includes('ro') };
}

/** `image-src=PATH` (absolute inside the image) or `id=N` (a SIF object id, from 1). */
function imageOption(text: string, o: string): { src: string } | { id: number } {
  const eq = o.indexOf('=');
  const value = eq < 0 ? '' : unescaped(o.slice(eq + 1));
  if (o.startsWith('id')) {
    if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new CtrError(`bind ${text}`, `${o}: id must be a SIF object id (1, 2, ...)`);
    return { id: Number(value) };
  }
  if (!value.startsWith('/')) throw new CtrError(`bind ${text}`, `${o}: image-src must be an absolute path inside the image`);
  return { src: normalize(value) };
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
