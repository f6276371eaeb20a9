// The IMAGE of exec, run, shell and plan: a path, or an OCI reference run through the
// SIF cache (oci/run-cache.ts), loaded only then.
import type { LaunchOptions } from '../../plan/options.js';

const OCI_REFERENCE = /^(docker:\/\/|oci:|oci-archive:|docker-archive:)/;

export async function resolveImageArg(arg: string, opts: LaunchOptions): Promise<string> {
  if (!OCI_REFERENCE.test(arg)) return arg;
  const { cachedSif } = await import('../../oci/run-cache.js');
  return cachedSif(arg, { https: !opts.noHttps });
}
