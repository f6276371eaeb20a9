// ctr pull [--no-https] [--arch A] [--force] OUT.sif REF
import { pullToSif } from '../../oci/pull.js';

export interface PullFlags { https: boolean; arch?: string; force: boolean }

export async function pullCommand(out: string, ref: string, flags: PullFlags): Promise<void> {
  await pullToSif(ref, out, { https: flags.https, arch: flags.arch, force: flags.force });
}
