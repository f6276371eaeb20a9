// Small file-system facts shared by the image, build and pull code.
import { open } from 'node:fs/promises';
import { CtrError, describeSystemError } from './errors.js';

/** The first LENGTH bytes of PATH (fewer if it is shorter); errors name WHAT. */
export async function readHead(path: string, length: number, what: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new CtrError(what, describeSystemError(err));
  }
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } catch (err) {
    throw new CtrError(what, describeSystemError(err));
  } finally {
    await fh.close();
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
