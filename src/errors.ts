// One error vocabulary for the TypeScript side. Anything the user can fix is a CtrError:
// the top-level handler prints `ctr: error: <what>: <why>` (plus a hint line when there is
// one) and exits with `exitCode`. Anything else is a bug and is printed with its stack.

import { hostname } from 'node:os';

export class CtrError extends Error {
  readonly what: string;
  readonly why: string;
  readonly hint?: string;
  readonly exitCode: number;

  constructor(what: string, why: string, opts: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(why ? `${what}: ${why}` : what, { cause: opts.cause });
    this.name = 'CtrError';
    this.what = what;
    this.why = why;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? EXIT_CTR_FAILURE;
  }
}

/** ctr's own failures exit 255, as Apptainer's do; 126/127 and 128+N belong to the command. */
export const EXIT_CTR_FAILURE = 255;

/**
 * `fs` errors carry a code; say the common ones in glibc's words, as strerror() does on
 * the launcher's side, in Slurm's logs and in the container's own tools, so one failure
 * reads the same whichever side of ctr reports it.
 */
export function describeSystemError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return (e?.code && STRERROR[e.code]) || (e?.message ?? String(err));
}

/** glibc's strerror() for the codes ctr's TypeScript side reports itself. */
export const STRERROR: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ENOSPC: 'No space left on device',
  EEXIST: 'File exists',
  ELOOP: 'Too many levels of symbolic links',
  EROFS: 'Read-only file system',
};

/** The variables a job launcher sets to a process's rank, in the launcher's order (launch_misc.c). */
const RANK_VARIABLES = ['SLURM_PROCID', 'PMIX_RANK', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'] as const;

/**
 * In a job, "node NODE rank N pid P: ", put after the level of every line (`ctr: error:
 * node n3 rank 17 pid 4242: ...`): 1,000 ranks share one log. Outside a job, nothing.
 */
export function reportWhere(env: NodeJS.ProcessEnv = process.env): string {
  const rank = RANK_VARIABLES.map((v) => env[v]).find((v) => v);
  if (!rank) return '';
  return `node ${(env.SLURMD_NODENAME || hostname()).slice(0, 64)} rank ${rank.slice(0, 16)} pid ${process.pid}: `;
}

/** `ctr: error: WHERE<message>`, and its hint line: how every failure is printed. */
export function errorLines(message: string, hint?: string): string {
  return `ctr: error: ${reportWhere()}${message}\n${hint ? `ctr: hint: ${hint}\n` : ''}`;
}
