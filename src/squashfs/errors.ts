// libsquashfs reports failures as negative SQFS_ERROR codes (error.h). One table maps
// them to names and words; `check()` turns a negative return into a CtrError naming what
// we were doing.

import { CtrError } from '../errors.js';

const SQFS_ERRORS: Record<number, [name: string, words: string]> = {
  [-1]: ['SQFS_ERROR_ALLOC', 'out of memory'],
  [-2]: ['SQFS_ERROR_IO', 'input/output error'],
  [-3]: ['SQFS_ERROR_COMPRESSOR', 'compressor error (corrupted data?)'],
  [-4]: ['SQFS_ERROR_INTERNAL', 'internal libsquashfs error'],
  [-5]: ['SQFS_ERROR_CORRUPTED', 'image is corrupted'],
  [-6]: ['SQFS_ERROR_UNSUPPORTED', 'unsupported feature'],
  [-7]: ['SQFS_ERROR_OVERFLOW', 'size overflow (corrupted image?)'],
  [-8]: ['SQFS_ERROR_OUT_OF_BOUNDS', 'out-of-bounds access (truncated or corrupted image?)'],
  [-9]: ['SFQS_ERROR_SUPER_MAGIC', 'not a SquashFS image (bad magic)'],
  [-10]: ['SFQS_ERROR_SUPER_VERSION', 'unsupported SquashFS version'],
  [-11]: ['SQFS_ERROR_SUPER_BLOCK_SIZE', 'invalid block size'],
  [-12]: ['SQFS_ERROR_NOT_DIR', 'Not a directory'],
  [-13]: ['SQFS_ERROR_NO_ENTRY', 'No such file or directory'],
  [-14]: ['SQFS_ERROR_LINK_LOOP', 'hard link loop'],
  [-15]: ['SQFS_ERROR_NOT_FILE', 'not a regular file'],
  [-16]: ['SQFS_ERROR_ARG_INVALID', 'invalid argument'],
  [-17]: ['SQFS_ERROR_SEQUENCE', 'calls made in the wrong order'],
};

export const SQFS_ERROR_IO = -2;
export const SQFS_ERROR_UNSUPPORTED = -6;
export const SQFS_ERROR_OUT_OF_BOUNDS = -8;
export const SQFS_ERROR_NOT_DIR = -12;
export const SQFS_ERROR_NO_ENTRY = -13;

export function sqfsErrorName(code: number): string {
  return SQFS_ERRORS[code]?.[0] ?? `SQFS_ERROR(${code})`;
}

export function sqfsErrorWords(code: number): string {
  return SQFS_ERRORS[code]?.[1] ?? `libsquashfs error ${code}`;
}

/** An error from libsquashfs, kept as a CtrError so the CLI prints it plainly. */
export class SqfsError extends CtrError {
  readonly code: number;
  constructor(what: string, code: number, cause?: unknown) {
    const why = cause instanceof Error ? `${sqfsErrorWords(code)}: ${cause.message}` : sqfsErrorWords(code);
    super(what, why, { cause });
    this.code = code;
  }
}

/** Throw if `rc` is a negative SQFS_ERROR; return it otherwise. `ioCause` is a JS error a callback stored. */
export function check(rc: number, what: string, ioCause?: () => unknown): number {
  if (rc < 0) throw new SqfsError(what, rc, ioCause?.());
  return rc;
}

/** Throw if a constructor-style call returned NULL. */
export function checkPtr(p: bigint | null, what: string): bigint {
  if (!p) throw new SqfsError(what, -1);
  return p;
}
