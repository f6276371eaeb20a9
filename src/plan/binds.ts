// `-B/--bind SRC[:DST[:ro|rw]]`, repeatable, each a comma list, as Apptainer takes it.
// Pure: checks syntax only; whether SRC exists is a host fact (see host/facts.ts).
import { CtrError } from '../errors.js';

export interface BindSpec {
  src: string;
  dst: string;
  ro: boolean;
}

export function parseBinds(values: readonly string[]): BindSpec[] {
  return values.flatMap((v) => v.split(',')).filter((s) => s !== '').map(parseOne);
}

function parseOne(spec: string): BindSpec {
  const parts = spec.split(':');
  if (parts.length > 3) throw new CtrError(`bind ${spec}`, 'expected SRC[:DST[:ro|rw]]');
  const [src, dst = src, mode = 'rw'] = parts;
  if (mode !== 'ro' && mode !== 'rw') throw new CtrError(`bind ${spec}`, `unknown mode "${mode}" (ro or rw)`);
  if (!dst.startsWith('/')) throw new CtrError(`bind ${spec}`, `destination ${dst} is not an absolute path`);
  if (src === '') throw new CtrError(`bind ${spec}`, 'empty source');
  return { src, dst: normalize(dst), ro: mode === 'ro' };
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
