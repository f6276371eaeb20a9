// What build and pull say while they work, on standard error:
// - progress(): one line per phase, on a terminal only (batch logs stay clean);
// - RateMeter: bytes through a phase, one line rewritten in place on a terminal, with the
//   rate and, when the total is known, the time left;
// - summary(): the one final line (what was written, its size, how long), on a terminal
//   or not, so that a job log records it.
// All of it is silenced by -q/--quiet (quiet()), or CTR_QUIET set: -q sets CTR_QUIET, so
// a build re-run inside its user namespace is quiet too.
import { humanSize } from '../human.js';

let started = 0;
const onTerminal = () => !!process.stderr.isTTY && !process.env.CTR_QUIET;

export function quiet(): void {
  process.env.CTR_QUIET = '1';
}

export function progress(msg: string): void {
  if (!onTerminal()) return;
  if (!started) started = Date.now();
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(`ctr: [${secs}s] ${msg}\n`);
}

/** The final line: `ctr: wrote OUT (SIZE) in SECONDS s`, unless quiet. */
export function summary(what: string, bytes: number | undefined, startedAt: number): void {
  if (process.env.CTR_QUIET) return;
  const secs = (performance.now() - startedAt) / 1000;
  process.stderr.write(`ctr: ${what}${bytes === undefined ? '' : ` (${humanSize(bytes)})`} in ${secs.toFixed(1)} s\n`);
}

/** m:ss, or h:mm:ss. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const [h, m, r] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const mm = h ? String(m).padStart(2, '0') : String(m);
  return `${h ? `${h}:` : ''}${mm}:${String(r).padStart(2, '0')}`;
}

/** `12.3 MiB / 45.6 MiB, 5.2 MiB/s, 0:07 left`: DONE of TOTAL (0: unknown) after SECONDS. */
export function rateLine(done: number, total: number, seconds: number): string {
  const rate = seconds > 0 ? done / seconds : 0;
  const left = total > 0 && rate > 0 ? `, ${clock((total - done) / rate)} left` : '';
  return `${humanSize(done)}${total > 0 ? ` / ${humanSize(total)}` : ''}, ${humanSize(Math.round(rate))}/s${left}`;
}

/** Bytes through one phase, drawn at most five times a second, on a terminal only. */
export class RateMeter {
  private done = 0;
  private last = 0;
  private shown = false;
  private readonly t0 = performance.now();
  private readonly on = onTerminal();

  constructor(private readonly label: () => string, private total = 0) {}

  grow(total: number): void {
    this.total += total;
  }

  add(n: number): void {
    this.done += n;
    if (!this.on) return;
    const now = performance.now();
    if (now - this.last < 200) return;
    this.last = now;
    this.draw();
  }

  private draw(): void {
    process.stderr.write(`\rctr: ${this.label()}: ${rateLine(this.done, this.total, (performance.now() - this.t0) / 1000)}\x1b[K`);
    this.shown = true;
  }

  /** The last state, and a newline; nothing if nothing was counted. */
  end(): void {
    if (!this.on || this.done === 0) return;
    this.draw();
    process.stderr.write('\n');
    this.shown = false;
  }

  get drawn(): boolean {
    return this.shown;
  }
}
