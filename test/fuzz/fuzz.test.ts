// Crafted and corrupted images through `ctr exec` (a walk reading every name, file and
// link) and `ctr inspect`: each must run or be refused in one line, never crash, hang or
// leave anything running. The named cases are the crashes libsquashfuse 0.1.105 has on
// its own (each killed the FUSE server before the launcher checked images and the
// server read directories with its own bounded reader); then ~300 seeded variants
// (generate.ts), with a summary by outcome. bench/fuzz.ts runs thousands.
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cached } from '../helpers/images.js';
import { killUserProcesses, leftovers } from '../helpers/leftovers.js';
import { ctr, TEST_USER } from '../helpers/user.js';
import { makeBases, namedCases, variant, type Bases } from './generate.js';
import { runAll, serverSegfaults, table } from './run.js';

const SEED = Number(process.env.CTR_FUZZ_SEED ?? 1);
const COUNT = Number(process.env.CTR_FUZZ_COUNT ?? 296);

let bases: Bases;
let dir: string;
/** The valid zstd base, for the test of a dying server. */
async function baseImage(): Promise<string> {
  const img = join(dir, 'base.sqfs');
  await writeFile(img, bases.sqfs, { mode: 0o644 });
  return img;
}
const Fuzz = suite('fuzz');
Fuzz.before(async () => {
  dir = await cached('fuzz-bases', async (tmp) => {
    await mkdir(tmp, { recursive: true });
    await makeBases(tmp);
  });
  bases = await makeBases(dir); // the tree is kept; the images are remade (seconds)
});
Fuzz.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

// Before: SIGSEGV (a stack overflow in libc's memcpy) for both directory cases, SIGFPE
// for block_size 0, SIGSEGV at NULL for block_size 1 and id_count 0, SIGSEGV at 0x8 for
// tables in the last bytes; the same in squashfuse_ll. The built-in server now reads a
// bad listing as EIO (and the image runs); before squashfuse_ll, the launcher lists every
// directory and refuses the image. The superblock cases are refused either way.
const DIRECTORY_CASES = /^dir /;
for (const server of ['built in', 'squashfuse_ll'] as const) {
  Fuzz(`named crashes :: ${server}: refused in one line or EIO inside, nothing killed`, async () => {
    const env: Record<string, string> = server === 'squashfuse_ll' ? { CTR_FUSE: 'exec' } : {};
    const before = await serverSegfaults();
    const results = await runAll(namedCases(bases), bases.sqfs, { env, inspect: true });
    for (const r of results) {
      assert.ok(!r.cls.startsWith('FAIL'), `${r.variant.name}: ${r.cls}: ${r.detail}`);
      const runs = server === 'built in' && DIRECTORY_CASES.test(r.variant.name);
      assert.match(r.cls, runs ? /^ran/ : /^refused \(launcher check\)$/, `${r.variant.name}: ${r.detail}`);
    }
    assert.equal((await serverSegfaults()).slice(before.length), [], 'server segfaults in the kernel log');
  });
}

Fuzz('a server that dies under the command: its reads fail at once (ENOTCONN), no hang', async () => {
  const script = 'B=/.fz/busybox; $B cat /etc/hello; read x; $B cat /data/multi >/dev/null; echo "cat $?"; $B ls /many >/dev/null; echo "ls $?"';
  const run = ctr(['exec', '-B', '/usr/bin/busybox:/.fz/busybox', await baseImage(), '/.fz/busybox', 'sh', '-c', script],
    { stdin: 'pipe', timeout: 20000 });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    run.stdout!.on('data', (d: Buffer) => { out += d; if (out.includes('hello')) resolve(); });
    run.catch(reject);
  });
  const pids = (await execa('pgrep', ['-u', TEST_USER, '-x', 'ctr-fuse'], { reject: false })).stdout.trim().split('\n').filter(Boolean);
  assert.is(pids.length, 1, 'one FUSE server');
  await execa('kill', ['-SEGV', pids[0]]);
  const t0 = Date.now();
  run.stdin!.end('go\n');
  const r = await run;
  assert.ok(Date.now() - t0 < 5000, 'the reads fail at once');
  assert.match(String(r.stdout), /cat 1\nls 1\n$/);
  assert.match(String(r.stderr), /Transport endpoint is not connected|Software caused connection abort/);
});

Fuzz(`seeded variants :: ${COUNT} of seed ${SEED}: run or refused in one line, never a crash or a hang`, async () => {
  const variants = Array.from({ length: COUNT }, (_, i) => variant(bases, SEED, i));
  const before = await serverSegfaults();
  const t0 = Date.now();
  const results = await runAll(variants, bases.sqfs, { inspect: true, concurrency: 5 });
  process.stdout.write(`\n${COUNT} variants, seed ${SEED}, ${((Date.now() - t0) / 1000).toFixed(1)} s\n${table(results)}\n`);
  const failed = results.filter((r) => r.cls.startsWith('FAIL'));
  assert.equal(failed.map((r) => `${variants.indexOf(r.variant)}: ${r.variant.name}: ${r.cls}: ${r.detail}`), [], 'failures');
  assert.equal((await serverSegfaults()).slice(before.length), [], 'server segfaults in the kernel log');
  // The checks are there to refuse and the walk to run: both must have happened.
  assert.ok(results.some((r) => r.cls.startsWith('refused')) && results.some((r) => r.cls.startsWith('ran')));
});

Fuzz.run();
