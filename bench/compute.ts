// Compute inside a container costs nothing: a CPU-bound kernel (a C loop doing dense
// floating-point work, compiled statically so the same bytes run on the host and in the
// image), bare vs ctr. Its own timer measures the kernel only, not start-up.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { asUser, image, planFile, WORK, workDir } from './images.js';
import { save, sh, type Row } from './lib.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? (process.argv.includes('--full') ? 30 : 9));

const KERNEL = `
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define N 320
static double a[N][N], b[N][N], c[N][N];
int main(void) {
  for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) { a[i][j] = i + j; b[i][j] = i - j; }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int r = 0; r < 6; r++)
    for (int i = 0; i < N; i++) for (int k = 0; k < N; k++) { double x = a[i][k]; for (int j = 0; j < N; j++) c[i][j] += x * b[k][j]; }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.3f %g\\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6, c[N / 2][N / 3]);
  return 0;
}
`;

function kernelTree(): string {
  const root = join(WORK, 'compute-src');
  const bin = join(root, 'bin/kernel');
  if (existsSync(bin)) return root;
  mkdirSync(join(root, 'bin'), { recursive: true });
  for (const d of ['dev', 'proc', 'sys', 'tmp', 'etc', 'home']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(WORK, 'kernel.c'), KERNEL);
  sh(['gcc', '-O2', '-static', '-o', bin, join(WORK, 'kernel.c')]);
  return root;
}

export async function compute(): Promise<string> {
  workDir();
  const src = kernelTree();
  const img = image('compute', src);
  const plan = planFile(img, 'compute');
  const contenders: Array<[string, string[]]> = [
    ['bare', asUser([join(src, 'bin/kernel')])],
    ['ctr (plan file)', asUser([plan, '/bin/kernel'])],
  ];
  const times = contenders.map(() => [] as number[]);
  for (let i = 0; i < rounds; i++) {
    contenders.forEach(([, cmd], k) => {
      const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', cwd: WORK });
      if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
      times[k].push(Number(r.stdout.split(' ')[0]));
    });
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows: Row[] = contenders.map(([name], k) => ({ name, runs: rounds, medianMs: med(times[k]), p10Ms: Math.min(...times[k]), p90Ms: Math.max(...times[k]) }));
  rows.forEach((r) => { r.ratio = r.medianMs / rows[0].medianMs; });
  const flags = await save({ name: 'compute', date: new Date().toISOString(), host: hostname(), rows });
  return [`### Compute: 320×320 dense matrix multiply ×6, kernel time only (${rounds} interleaved rounds, ${hostname()})`, '',
    '| contender | median ms | min | max | × bare |', '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.name} | ${r.medianMs.toFixed(1)} | ${r.p10Ms.toFixed(1)} | ${r.p90Ms.toFixed(1)} | ${r.ratio!.toFixed(3)} |`),
    '', `- ctr × bare: ${rows[1].ratio!.toFixed(3)} (target within 1%)`, ...flags.map((f) => `- ${f}`)].join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(await compute());
