// Small file-system facts shared by the image, build and pull code.
//
// Reads on `ctr exec`'s path are synchronous on purpose: each is a few bytes from the
// page cache, and an asynchronous one goes through libuv's thread pool, whose start and
// round trips cost more than the read (this is the per-rank start-up path).
import { closeSync, openSync, readSync } from 'node:fs';
import { CtrError, describeSystemError } from './errors.js';

/** The first LENGTH bytes of PATH (fewer if it is shorter); errors name WHAT. */
export async function readHead(path: string, length: number, what: string): Promise<Buffer> {
  return readAtSync(path, length, 0, what);
}

/** LENGTH bytes of open file FD from POSITION (fewer at end of file). */
export function readFdAt(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

/** LENGTH bytes of PATH from POSITION (fewer at end of file); errors name WHAT. */
export function readAtSync(path: string, length: number, position: number, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new CtrError(what, describeSystemError(err));
  }
  try {
    return readFdAt(fd, length, position);
  } catch (err) {
    throw new CtrError(what, describeSystemError(err));
  } finally {
    closeSync(fd);
  }
}

/**
 * SOURCE_DATE_EPOCH (reproducible-builds.org): the one time every file, the SquashFS and
 * the SIF get, so the same input gives the same bytes. Undefined when unset.
 */
export function sourceDateEpoch(): number | undefined {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new CtrError('SOURCE_DATE_EPOCH', `${JSON.stringify(v)} is not a number of seconds`);
  return Number(v);
}
