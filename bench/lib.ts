// Shared benchmark machinery: contenders measured side by side, interleaved (round i
// runs every contender once, in turn), so drift in machine load hits all alike; medians
// and ratios to a baseline; a Markdown table; JSON results kept in bench/results/.
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = fileURLToPath(new URL('../../bench', import.meta.url));
export const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

export interface Contender {
  name: string;
  /** argv to run; its exit status must be 0. */
  cmd: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface Row {
  name: string;
  runs: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  ratio?: number;
  /** What ratio divides by, when not the first row (tables with a baseline per task). */
  baseline?: string;
}

function timeOnce(c: Contender): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c.cmd[0], c.cmd.slice(1), { cwd: c.cwd, env: c.env ?? process.env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${c.name}: ${c.cmd.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return ms;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
/** The median (of an even count, the upper middle value), as every table here takes it. */
export const median = (xs: number[]): number => quantile(xs, 0.5);
/** A message size: 8 B, 4 KiB, 16 MiB. */
export const humanSize = (n: number): string => (n >= 1 << 20 ? `${n / (1 << 20)} MiB` : n >= 1024 ? `${n / 1024} KiB` : `${n} B`);

/**
 * Ping-pong rounds: RUNS[k]() runs contender k once and gives its latency per size.
 * One warm-up each, then ROUNDS interleaved rounds. Returns lat[k][size][round], each
 * size's median, and each contender's latency over the first's paired by round (this
 * VM's speed drifts with its host's load, and a pair measured seconds apart shares the
 * drift): per size, the median over rounds of the per-round ratios.
 */
export function pairedRounds(runs: Array<() => number[]>, sizes: number, rounds: number) {
  runs.forEach((run) => run());
  const lat = runs.map(() => Array.from({ length: sizes }, () => [] as number[]));
  for (let i = 0; i < rounds; i++) runs.forEach((run, k) => run().forEach((x, j) => lat[k][j].push(x)));
  const med = lat.map((perSize) => perSize.map(median));
  const paired = lat.map((perSize) => perSize.map((xs, j) => median(xs.map((x, i) => x / lat[0][j][i]))));
  return { lat, med, paired };
}

/** Interleaved runs; the first contender is the baseline for ratios. */
export function measure(contenders: Contender[], rounds: number, warmup = 2): Row[] {
  for (let i = 0; i < warmup; i++) contenders.forEach(timeOnce);
  const times = contenders.map(() => [] as number[]);
  for (let i = 0; i < rounds; i++) contenders.forEach((c, k) => times[k].push(timeOnce(c)));
  const rows = contenders.map((c, k) => ({
    name: c.name, runs: rounds,
    medianMs: quantile(times[k], 0.5), p10Ms: quantile(times[k], 0.1), p90Ms: quantile(times[k], 0.9),
  }));
  return rows.map((r) => ({ ...r, ratio: r.medianMs / rows[0].medianMs }));
}

export function table(title: string, rows: Row[], baselineName = rows[0]?.name): string {
  const out = [`### ${title}`, '', `| contender | median ms | p10 | p90 | × ${baselineName} |`, '| --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) out.push(`| ${r.name} | ${r.medianMs.toFixed(2)} | ${r.p10Ms.toFixed(2)} | ${r.p90Ms.toFixed(2)} | ${(r.ratio ?? 1).toFixed(2)} |`);
  return out.join('\n') + '\n';
}

export interface Result { name: string; date: string; host: string; rows: Row[]; notes?: string[] }

/**
 * Save a result and compare with the previous one of the same name: flag a >10% slowdown
 * of the ratio to the baseline (bare metal), which a busier machine does not move the
 * way it moves absolute times.
 */
export async function save(result: Result): Promise<string[]> {
  const dir = join(BENCH_DIR, 'results');
  await mkdir(dir, { recursive: true });
  const prior = (await readdir(dir)).filter((f) => f.startsWith(`${result.name}-`) && f.endsWith('.json')).sort().pop();
  const flags: string[] = [];
  if (prior) {
    const old = JSON.parse(await readFile(join(dir, prior), 'utf8')) as Result;
    for (const r of result.rows) {
      const o = old.rows.find((x) => x.name === r.name);
      if (!o || r.ratio === undefined || o.ratio === undefined || r.name === result.rows[0].name) continue;
      if (r.ratio > o.ratio * 1.1) flags.push(`regression: ${r.name}: ${o.ratio.toFixed(2)}× → ${r.ratio.toFixed(2)}× ${r.baseline ?? result.rows[0].name} (vs ${prior})`);
    }
  }
  const stamp = result.date.replace(/[:.]/g, '-');
  await writeFile(join(dir, `${result.name}-${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  return flags;
}

/** Run a command, returning stdout; throw with stderr on failure. */
export function sh(cmd: string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd: opts.cwd, input: opts.input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}
