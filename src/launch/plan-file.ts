// A plan file: "#!<launcher> --plan\n" and the plan's words, each ending in NUL.
// Executing it runs the launcher on it directly; no Node on the per-rank path.
import { writeFile, rename, chmod } from 'node:fs/promises';
import { CtrError, describeSystemError } from '../errors.js';

export function encodePlanFile(launcher: string, args: readonly string[]): Buffer {
  if (/\s/.test(launcher)) throw new CtrError(`launcher path ${launcher}`, 'contains white space, which a #! line cannot hold');
  for (const a of args) if (a.includes('\0')) throw new CtrError('plan', `argument contains a NUL byte: ${JSON.stringify(a)}`);
  return Buffer.concat([Buffer.from(`#!${launcher} --plan\n`), ...args.map((a) => Buffer.from(`${a}\0`))]);
}

export async function writePlanFile(out: string, launcher: string, args: readonly string[]): Promise<void> {
  const tmp = `${out}.tmp${process.pid}`;
  try {
    await writeFile(tmp, encodePlanFile(launcher, args));
    await chmod(tmp, 0o755);
    await rename(tmp, out);
  } catch (err) {
    if (err instanceof CtrError) throw err;
    throw new CtrError(`cannot write plan file ${out}`, describeSystemError(err));
  }
}
