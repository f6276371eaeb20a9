// Read the CDI spec files of the spec directories (/etc/cdi, then /var/run/cdi, or the
// site's `cdi-spec-dir` lines): *.json, *.yaml and *.yml, each bounded in size and
// checked (cdi-spec.ts). Only when --device is given: a launch without it reads nothing.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CtrError, describeSystemError } from '../errors.js';
import { checkCdiSpec } from './cdi-spec.js';
import type { FoundSpec } from './cdi-resolve.js';

export const DEFAULT_CDI_DIRS = ['/etc/cdi', '/var/run/cdi'];
/** A spec larger than this is not one (nvidia-ctk's for 8 GPUs is ~30 KiB). */
export const SPEC_MAX = 1 << 20;
/** More files than this in one directory is not a spec directory. */
export const FILES_MAX = 256;

export async function readCdiSpecs(dirs: readonly string[]): Promise<FoundSpec[]> {
  const found: FoundSpec[] = [];
  for (const [priority, dir] of dirs.entries()) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => /\.(json|ya?ml)$/.test(n)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new CtrError(`CDI spec directory ${dir}`, describeSystemError(err));
    }
    if (names.length > FILES_MAX) throw new CtrError(`CDI spec directory ${dir}`, `more than ${FILES_MAX} spec files`);
    for (const name of names) {
      const file = join(dir, name);
      found.push({ spec: checkCdiSpec(await parseSpecFile(file), file), priority });
    }
  }
  return found;
}

/**
 * Why a spec or name list can't be trusted, if it can't: another user could change what
 * is bound into this user's containers. Root's or the user's own, and not writable by
 * everyone; undefined when fine.
 */
export function untrusted(st: { uid: number; mode: number }, uid = process.getuid?.() ?? 0): string | undefined {
  if (st.uid !== 0 && st.uid !== uid) return `owned by another user (uid ${st.uid})`;
  if (st.mode & 0o002) return 'writable by every user';
  return undefined;
}

async function parseSpecFile(file: string): Promise<unknown> {
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new CtrError(`CDI spec ${file}`, 'not a regular file');
    if (st.size > SPEC_MAX) throw new CtrError(`CDI spec ${file}`, `larger than ${SPEC_MAX >> 20} MiB`);
    const why = untrusted(st);
    if (why) throw new CtrError(`CDI spec ${file}`, why, { hint: 'a spec decides what is bound into containers: make it root\'s (or yours), not writable by others' });
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof CtrError) throw err;
    throw new CtrError(`CDI spec ${file}`, describeSystemError(err));
  }
  if (file.endsWith('.json')) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new CtrError(`CDI spec ${file}`, `not valid JSON: ${(err as Error).message}`);
    }
  }
  const { parseDocument } = await import('yaml');
  // Aliases bounded: a "billion laughs" document must not take the node's memory.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) throw new CtrError(`CDI spec ${file}`, `not valid YAML: ${doc.errors[0].message.split('\n')[0]}`);
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new CtrError(`CDI spec ${file}`, `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}
