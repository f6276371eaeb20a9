// The name lists that --nv and --rocm bind from the host (data/nvliblist.conf,
// data/rocmliblist.conf, and a site's own `nv-list`/`rocm-list` files): the format of
// Apptainer's nvliblist.conf, read here. Pure: text in, names out.
import { CtrError } from '../errors.js';

export interface NameList {
  /** Programs, bound at /usr/bin/NAME. */
  programs: string[];
  /** Library names ("libcuda.so"): NAME and NAME.* are bound into the libs directory. */
  libraries: string[];
  /** Absolute paths bound where they are, when they exist. */
  files: string[];
}

/** A list file larger than this is not a list of names. */
export const LIST_MAX = 1 << 20;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;

export function parseNameList(text: string, path: string): NameList {
  const out: NameList = { programs: [], libraries: [], files: [] };
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const fail = (why: string) => new CtrError(`name list ${path}`, `line ${i + 1}: ${why}`);
    if (line.startsWith('/')) {
      if (line.includes('\0') || line.split('/').includes('..')) throw fail(`${JSON.stringify(line)} is not a plain absolute path`);
      out.files.push(line.replace(/\/+/g, '/'));
    } else if (!NAME.test(line)) {
      throw fail(`${JSON.stringify(line)} is not a file name`);
    } else if (line.includes('.so')) {
      out.libraries.push(line);
    } else {
      out.programs.push(line);
    }
  });
  return out;
}

/** LISTS joined, first mention of each name kept. */
export function mergeNameLists(lists: readonly NameList[]): NameList {
  const uniq = (k: keyof NameList) => [...new Set(lists.flatMap((l) => l[k]))];
  return { programs: uniq('programs'), libraries: uniq('libraries'), files: uniq('files') };
}

/** Is FILE (a name in a library directory or the ld.so cache) one of LIBRARY's? */
export function isLibraryFile(file: string, library: string): boolean {
  return file === library || file.startsWith(`${library}.`);
}
