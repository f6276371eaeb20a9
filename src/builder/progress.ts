// Progress for long work: one line per phase on a terminal, silence in logs (stderr not
// a terminal) and with CTR_QUIET set.
let started = 0;

export function progress(msg: string): void {
  if (!process.stderr.isTTY || process.env.CTR_QUIET) return;
  if (!started) started = Date.now();
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(`ctr: [${secs}s] ${msg}\n`);
}
