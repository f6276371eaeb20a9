// Benchmark: ctr's SquashFS writer vs gensquashfs vs mksquashfs on one source tree, same
// settings for all (zstd level 3, 128 KiB blocks, one compressor thread per core, all files
// owned by root). Runs are interleaved, after one unmeasured warm-up run that fills the page
// cache; wall time, CPU time (user + system, all threads) and peak RSS come from
// /usr/bin/time -v. CPU time is the steadier number on a shared machine: the load average
// before and after is printed with the table. Prints a Markdown table.
//
//   node dist/bench/build.js [SOURCE_DIR=/usr/share] [RUNS=3]
// BENCH_BUILD_BASELINE=/other/checkout/dist/bench/build.js adds that checkout's writer as a
// row of its own, interleaved with the rest (before/after comparisons).

import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSquashfsFromDir } from '../src/squashfs/fromdir.js';
import { median } from './lib.js';

const LEVEL = 3;
const BLOCK = 128 * 1024;
const THREADS = os.availableParallelism();

interface Tool {
  name: string;
  cmd: (src: string, out: string) => string[];
}

const self = fileURLToPath(import.meta.url);

const TOOLS: Tool[] = [
  { name: 'ctr (libsquashfs via koffi)', cmd: (src, out) => [process.execPath, self, '--one', src, out] },
  {
    name: 'gensquashfs 1.2',
    cmd: (src, out) => ['gensquashfs', '-D', src, '-c', 'zstd', '-X', `level=${LEVEL}`, '-b', String(BLOCK), '-j', String(THREADS), '--all-root', '-q', '-f', out],
  },
  {
    name: 'mksquashfs 4.5',
    cmd: (src, out) => ['mksquashfs', src, out, '-comp', 'zstd', '-Xcompression-level', String(LEVEL), '-b', String(BLOCK),
      '-processors', String(THREADS), '-all-root', '-noappend', '-quiet', '-no-progress'],
  },
];
if (process.env.BENCH_BUILD_BASELINE) {
  const other = process.env.BENCH_BUILD_BASELINE;
  TOOLS.push({ name: `ctr baseline (${other})`, cmd: (src, out) => [process.execPath, other, '--one', src, out] });
}

async function timed(argv: string[]): Promise<{ wall: number; cpu: number; rssKiB: number }> {
  const r = await execa('/usr/bin/time', ['-v', ...argv], { reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}):\n${r.all}`);
  const text = r.stderr ?? '';
  const wallStr = /Elapsed \(wall clock\) time.*: (.+)$/m.exec(text)?.[1] ?? '0';
  const wall = wallStr.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);
  const rssKiB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(text)?.[1] ?? 0);
  const cpu = Number(/User time \(seconds\): ([\d.]+)/.exec(text)?.[1] ?? 0) + Number(/System time \(seconds\): ([\d.]+)/.exec(text)?.[1] ?? 0);
  return { wall, cpu, rssKiB };
}

const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function main(): Promise<void> {
  const src = process.argv[2] ?? '/usr/share';
  const runs = Number(process.argv[3] ?? 3);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ctr-bench-build-'));
  try {
    const out = (t: number) => path.join(scratch, `out-${t}.sqfs`);
    const loadBefore = load();
    process.stderr.write(`warm-up (page cache) on ${src}, load ${loadBefore}...\n`);
    await timed(TOOLS[1].cmd(src, out(1)));
    const results = TOOLS.map(() => ({ wall: [] as number[], cpu: [] as number[], rss: [] as number[], size: 0 }));
    for (let run = 0; run < runs; run++) {
      for (const [i, tool] of TOOLS.entries()) {
        const r = await timed(tool.cmd(src, out(i)));
        results[i].wall.push(r.wall);
        results[i].cpu.push(r.cpu);
        results[i].rss.push(r.rssKiB);
        results[i].size = fs.statSync(out(i)).size;
        fs.rmSync(out(i));
        process.stderr.write(`run ${run + 1}/${runs} ${tool.name}: ${r.wall.toFixed(2)} s, CPU ${r.cpu.toFixed(2)} s, ${(r.rssKiB / 1024).toFixed(0)} MiB\n`);
      }
    }
    const base = median(results[1].wall), baseCpu = median(results[1].cpu);
    console.log(`\nSource: ${src}; zstd level ${LEVEL}, block ${BLOCK / 1024} KiB, ${THREADS} threads, ${runs} interleaved runs, medians; ` +
      `load average ${loadBefore} before, ${load()} after.\n`);
    console.log('| tool | wall (s) | vs gensquashfs | CPU (s) | vs gensquashfs | peak RSS (MiB) | image (MiB) |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const [i, tool] of TOOLS.entries()) {
      const w = median(results[i].wall), c = median(results[i].cpu);
      console.log(`| ${tool.name} | ${w.toFixed(2)} | ${(w / base).toFixed(2)}× | ${c.toFixed(2)} | ${(c / baseCpu).toFixed(2)}× | ` +
        `${(Math.max(...results[i].rss) / 1024).toFixed(0)} | ${(results[i].size / 2 ** 20).toFixed(1)} |`);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--one') {
  await writeSquashfsFromDir(process.argv[3], process.argv[4], { compressor: 'zstd', level: LEVEL, blockSize: BLOCK, workers: THREADS });
} else {
  await main();
}
