// Where ctr makes temporary files and directories: $CTR_TMPDIR, else $TMPDIR, else /tmp
// (only absolute paths count: a relative one would move with the working directory).
// One variable for all of them: a build's root file system, an unpacked image archive.
// Files written to be renamed into place (SIF outputs, blobs, plan files) are made beside
// their final name instead, so that the rename stays on one file system.
import { mkdtemp } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CtrError, describeSystemError } from './errors.js';

export function tempRoot(env: NodeJS.ProcessEnv = process.env): string {
  for (const v of [env.CTR_TMPDIR, env.TMPDIR]) if (v?.startsWith('/')) return v;
  return '/tmp';
}

/** A new directory PREFIX-XXXXXX in tempRoot() (mode 0700), or one clear error. */
export async function makeTempDir(prefix: string): Promise<string> {
  const root = tempRoot();
  try {
    return await mkdtemp(join(root, prefix));
  } catch (err) {
    throw new CtrError(`cannot make a temporary directory in ${root}`, describeSystemError(err),
      { hint: 'set CTR_TMPDIR (or TMPDIR) to a directory you can write to' });
  }
}

/** The name beside OUT that a writer fills, then renames over OUT (TAG tells writers apart). */
export function tempBeside(out: string, tag = String(process.pid)): string {
  return join(dirname(out), `.${basename(out)}.${tag}.tmp`);
}
