// `npm run bench fuzz [-- SEED [COUNT]]`: thousands of corrupted images (test/fuzz/
// generate.ts) through ctr as the test user, as test/fuzz/fuzz.test.ts runs a few
// hundred; prints the outcome table by mutation and every failure with the seed and
// index that remake it. Needs root (the test user, /dev/fuse), as the tests do.
// Environment: CTR_FUZZ_SEED / CTR_FUZZ_COUNT (instead of the arguments), CTR_FUSE=exec
// for squashfuse_ll.
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBases, variant } from '../test/fuzz/generate.js';
import { runAll, serverSegfaults, table } from '../test/fuzz/run.js';
import { ensureTestUser } from '../test/helpers/user.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const seed = Number(args[0] ?? process.env.CTR_FUZZ_SEED ?? Date.now() % 100000);
const count = Number(args[1] ?? process.env.CTR_FUZZ_COUNT ?? (process.argv.includes('--full') ? 20000 : 3000));

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench/fuzz: must run as root (it runs ctr as the unprivileged test user)\n');
    return 2;
  }
  await ensureTestUser();
  const work = join(tmpdir(), 'ctr-fuzz-bench');
  await mkdir(work, { recursive: true });
  const bases = await makeBases(work);
  const env: Record<string, string> = process.env.CTR_FUSE ? { CTR_FUSE: process.env.CTR_FUSE } : {};
  const before = await serverSegfaults();
  const t0 = Date.now();
  let done = 0;
  const results = await runAll(Array.from({ length: count }, (_, i) => variant(bases, seed, i)), bases.sqfs, {
    env, inspect: true, concurrency: 6,
    one: () => { if (++done % 500 === 0) process.stderr.write(`bench/fuzz: ${done} of ${count}\n`); },
  });
  const secs = (Date.now() - t0) / 1000;
  const failed = results.map((r, i) => ({ r, i })).filter(({ r }) => r.cls.startsWith('FAIL'));
  const segfaults = (await serverSegfaults()).slice(before.length);
  const out = [`### Fuzzing (${count} variants of seed ${seed}${env.CTR_FUSE ? ', squashfuse_ll' : ''})`, '',
    `${secs.toFixed(0)} s, ${(count / secs).toFixed(1)} variants/s; ${failed.length} failures, ${segfaults.length} server segfaults in the kernel log.`, '',
    table(results), ''];
  for (const { r, i } of failed.slice(0, 50)) out.push(`- seed ${seed} index ${i}: ${r.variant.name}: ${r.cls}: ${r.detail}`);
  for (const l of segfaults.slice(0, 10)) out.push(`- kernel: ${l}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return failed.length || segfaults.length ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 1; });
