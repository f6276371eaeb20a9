// What ctr would print for an error a unit throws: tests assert the words exactly.
import * as assert from 'uvu/assert';
import { CtrError } from '../../src/errors.js';

/** The CtrError FN throws (uvu fails the test if it throws nothing or something else). */
export function ctrError(fn: () => unknown): CtrError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, CtrError);
    return err as CtrError;
  }
  assert.unreachable('expected a CtrError, nothing was thrown');
  throw new Error('unreachable');
}

/** The message ctr would print for what FN throws (the part after "ctr: error: "). */
export const message = (fn: () => unknown): string => ctrError(fn).message;
