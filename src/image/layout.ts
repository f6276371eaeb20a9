// What every image ctr makes holds besides its own files: the standard mount points and
// Apptainer's /.singularity.d (runscript, env scripts, labels, help, test, the definition),
// laid out as Apptainer does so that Apptainer and ctr run the image as its author meant.
// Pure: entries out; builds write them to a directory (builder/metadata.ts), pulls put
// them in the layer tree (oci/pull.ts).

/** Mount points, with the modes an empty image gets (the launcher binds onto these). */
export const STANDARD_DIRS: ReadonlyArray<readonly [string, number]> = [
  ['proc', 0o755], ['sys', 0o755], ['dev', 0o755], ['tmp', 0o1777], ['var/tmp', 0o1777],
  ['home', 0o755], ['root', 0o700], ['etc', 0o755], ['opt', 0o755], ['mnt', 0o755],
];

export type LayoutEntry =
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'file'; mode: number; content: string }
  | { path: string; type: 'symlink'; target: string };

export interface SingularityParts {
  runscript?: string;
  startscript?: string;
  test?: string;
  help?: string;
  /** Scripts for /.singularity.d/env, by file name (10-docker2singularity.sh, 90-environment.sh). */
  env?: Record<string, string>;
  labels: Record<string, string>;
  /** The definition file it was built from. */
  deffile?: string;
}

/** An executable script: a body with no #! line runs under /bin/sh, as Apptainer writes it. */
const script = (body: string) => (body.startsWith('#!') ? body : `#!/bin/sh\n\n${body}`);

/** The entries of /.singularity.d and its two links at the root, in the order to make them. */
export function singularityDir(parts: SingularityParts): LayoutEntry[] {
  const sd = '.singularity.d';
  const out: LayoutEntry[] = ['', '/env', '/actions', '/libs'].map((d) => ({ path: `${sd}${d}`, type: 'dir', mode: 0o755 }));
  for (const [name, text] of Object.entries(parts.env ?? {})) out.push({ path: `${sd}/env/${name}`, type: 'file', mode: 0o755, content: text });
  if (parts.runscript !== undefined) out.push({ path: `${sd}/runscript`, type: 'file', mode: 0o755, content: script(parts.runscript) });
  if (parts.startscript !== undefined) out.push({ path: `${sd}/startscript`, type: 'file', mode: 0o755, content: script(parts.startscript) });
  if (parts.test !== undefined) out.push({ path: `${sd}/test`, type: 'file', mode: 0o755, content: script(parts.test) });
  if (parts.help !== undefined) out.push({ path: `${sd}/runscript.help`, type: 'file', mode: 0o644, content: parts.help });
  out.push({ path: `${sd}/labels.json`, type: 'file', mode: 0o644, content: JSON.stringify(parts.labels, null, '\t') + '\n' });
  if (parts.deffile !== undefined) out.push({ path: `${sd}/Singularity`, type: 'file', mode: 0o644, content: parts.deffile });
  out.push({ path: 'singularity', type: 'symlink', target: `${sd}/runscript` });
  if (parts.env?.['90-environment.sh'] !== undefined) out.push({ path: 'environment', type: 'symlink', target: `${sd}/env/90-environment.sh` });
  return out;
}

/** %environment as Apptainer stores it. */
export function environmentScript(body: string): string {
  return `#!/bin/sh\n# Custom environment shell code should follow\n\n${body}`;
}
