// ctr pull [--no-https] [--arch A] [--force] [-q] OUT.sif REF
import { statSync } from 'node:fs';
import { quiet, summary } from '../../builder/progress.js';
import { pullToSif } from '../../oci/pull.js';

export interface PullFlags { https: boolean; arch?: string; force: boolean; quiet: boolean }

export async function pullCommand(out: string, ref: string, flags: PullFlags): Promise<void> {
  const t0 = performance.now();
  if (flags.quiet) quiet();
  await pullToSif(ref, out, { https: flags.https, arch: flags.arch, force: flags.force });
  summary(`wrote ${out}`, statSync(out).size, t0);
}
