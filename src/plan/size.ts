// Sizes on the command line: "64M", "1G", "512K", or a plain number of MiB (as
// Apptainer's --size options take). Pure.
import { CtrError } from '../errors.js';

const UNITS: Record<string, number> = { '': 2 ** 20, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

export function parseSize(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  const bytes = m ? Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new CtrError(`${what} ${JSON.stringify(text)}`, 'expected a size such as 64M, 1G or 512K (a plain number is MiB)');
  }
  return bytes;
}
