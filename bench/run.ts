// `npm run bench`: every comparison, side by side, then the report. A few minutes by
// default; `--full` for long runs. Each benchmark is its own script (bench/*.ts) printing
// Markdown; this runs them in turn, keeps going past one that fails (and says so), and
// writes bench/results/latest.md plus an SVG plot of start-up times.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, REPO } from './lib.js';
import { plotStartup } from './plot.js';

const ALL = ['startup', 'files', 'compute', 'mpi', 'build', 'pull', 'slurm', 'cluster', 'fakeroot', 'gpu', 'cgroups', 'isolation', 'checkpoint'];
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const full = process.argv.includes('--full');

const sections: string[] = [`# ctr benchmarks`, '', `Run ${new Date().toISOString()}${full ? ' (--full)' : ''}.`, ''];
let failed = 0;
for (const name of only.length ? only : ALL) {
  const script = join(REPO, 'dist/bench', `${name}.js`);
  process.stderr.write(`bench: ${name} ...\n`);
  const r = spawnSync(process.execPath, [script, ...(full ? ['--full'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status === 0) sections.push(r.stdout.trim(), '');
  else {
    failed++;
    sections.push(`### ${name}`, '', `(failed: exit ${r.status ?? r.signal})`, '');
  }
}
const latestStartup = readdirSync(join(BENCH_DIR, 'results')).filter((f) => f.startsWith('startup-') && f.endsWith('.json')).sort().pop();
if (latestStartup) {
  writeFileSync(join(BENCH_DIR, 'results/startup.svg'), plotStartup(JSON.parse(readFileSync(join(BENCH_DIR, 'results', latestStartup), 'utf8'))));
  sections.push('![start-up](startup.svg)', '');
}
const md = sections.join('\n');
writeFileSync(join(BENCH_DIR, 'results/latest.md'), md);
process.stdout.write(md);
process.exitCode = failed ? 1 : 0;
