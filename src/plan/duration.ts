// Durations as Apptainer's flags take them (Go's time.ParseDuration): a sequence of
// decimal numbers, each with a unit, e.g. 300ms, 1.5s, 2m, 1h30m. Pure.
import { CtrError } from '../errors.js';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** TEXT in whole milliseconds (at least 1); FLAG names it in the error. */
export function parseDuration(text: string, flag: string): number {
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let ms = 0, at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const m = part.exec(text);
    if (!m) break;
    ms += Number(m[1]) * UNIT_MS[m[2]];
    at = part.lastIndex;
  }
  if (text === '' || at !== text.length) {
    throw new CtrError(`${flag} ${JSON.stringify(text)}`, 'not a duration (a number and a unit: ms, s, m or h; e.g. 30s, 1m30s)');
  }
  const whole = Math.ceil(ms);
  if (whole < 1 || whole > 2 ** 31 - 1) throw new CtrError(`${flag} ${text}`, 'out of range (1ms to about 24 days)');
  return whole;
}
