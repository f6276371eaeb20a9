// The image config → Apptainer's /.singularity.d, as Apptainer converts OCI images:
//
//   runscript                      cd WORKDIR; exec ENTRYPOINT CMD, where arguments given
//                                  to `ctr run` replace CMD (Docker's rule); /bin/sh when the
//                                  image has neither
//   env/10-docker2singularity.sh   one `export NAME='value'` per ENV entry, single-quoted
//   labels.json                    the image's labels (also stored as the SIF labels object)
//
// Pure: returns the files' contents; the caller puts them in the image.
import type { ImageConfig } from './manifest.js';

export interface ContainerFiles {
  runscript: string;
  env: string;
  labels: Record<string, string>;
  labelsJson: string;
  workdir?: string;
  /** ENV entries that could not be exported from sh (not NAME=VALUE with a shell name). */
  skippedEnv: string[];
}

/** Single-quote for sh: everything literal, embedded quotes as '\''. */
export function shQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const words = (xs: string[]) => xs.map(shQuote).join(' ');

export function containerFiles(config: ImageConfig): ContainerFiles {
  const c = config.config ?? {};
  const entrypoint = c.Entrypoint ?? [];
  const cmd = c.Cmd ?? [];
  const workdir = c.WorkingDir && c.WorkingDir !== '/' ? c.WorkingDir : undefined;
  const lines = ['#!/bin/sh', '# Written by ctr pull from the image config (ENTRYPOINT, CMD, WORKDIR).'];
  if (workdir) lines.push(`cd ${shQuote(workdir)} || exit 1`);
  if (entrypoint.length === 0 && cmd.length === 0) {
    lines.push('exec /bin/sh "$@"');
  } else {
    if (cmd.length) lines.push(`if [ $# -eq 0 ]; then set -- ${words(cmd)}; fi`);
    lines.push(entrypoint.length ? `exec ${words(entrypoint)} "$@"` : 'exec "$@"');
  }
  const env = ['#!/bin/sh', '# Written by ctr pull from the image config (ENV).'];
  const skippedEnv: string[] = [];
  for (const e of c.Env ?? []) {
    const eq = e.indexOf('=');
    const name = eq < 0 ? e : e.slice(0, eq);
    if (eq < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      skippedEnv.push(e);
      continue;
    }
    env.push(`export ${name}=${shQuote(e.slice(eq + 1))}`);
  }
  const labels = { ...(c.Labels ?? {}) };
  const sorted = Object.fromEntries(Object.keys(labels).sort().map((k) => [k, String(labels[k])]));
  return {
    runscript: lines.join('\n') + '\n',
    env: env.join('\n') + '\n',
    labels: sorted,
    labelsJson: JSON.stringify(sorted, null, '\t') + '\n',
    ...(workdir ? { workdir } : {}),
    skippedEnv,
  };
}
