// One error vocabulary for the TypeScript side. Anything the user can fix is a CtrError:
// the top-level handler prints `ctr: error: <what>: <why>` (plus a hint line when there is
// one) and exits with `exitCode`. Anything else is a bug and is printed with its stack.

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

/** `fs` errors carry a code; turn the common ones into words a user reads. */
export function describeSystemError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT': return 'no such file or directory';
    case 'EACCES': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'not a directory';
    case 'ENOSPC': return 'no space left on device';
    case 'EEXIST': return 'file exists';
    default: return e?.message ?? String(err);
  }
}
