// Checkpoint and restart (issue 18): how long `ctr checkpoint` of a counting process
// takes, how long `ctr restore` takes until the process counts again, and how big the
// checkpoint is, beside a plain `ctr exec` start of the same image in the same run. Runs
// ctr as the test user, with the CRIU that scripts/setup.sh --test builds.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxSif } from '../test/helpers/images.js';
import { TEST_USER, userIds } from '../test/helpers/user.js';
import { median, REPO } from './lib.js';

const RUNS = process.argv.includes('--full') ? 10 : 3;
const CTR = ['runuser', '-u', TEST_USER, '--', 'env', 'CTR_CRIU=/opt/ctr-test/criu/criu', join(REPO, 'bin/ctr')];
const sif = await busyboxSif();
const { uid, gid } = await userIds();
const lines = (f: string) => { try { return readFileSync(f, 'utf8').split('\n').filter(Boolean).length; } catch { return 0; } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The ctr-init below PID (runuser, env, ctr-launch, ctr-init), or 0 if none yet. */
function initBelow(pid: number): number {
  let kids: number[] = [];
  try { kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return 0; }
  for (const k of kids) {
    let comm = '';
    try { comm = readFileSync(`/proc/${k}/comm`, 'utf8').trim(); } catch { continue; }
    if (comm === 'ctr-init') return k;
    const deeper = initBelow(k);
    if (deeper) return deeper;
  }
  return 0;
}

const start: number[] = [], dump: number[] = [], restore: number[] = [], size: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const dir = mkdtempSync(join(tmpdir(), 'ctr-bench-ck-'));
  chmodSync(dir, 0o755);
  chownSync(dir, uid, gid);
  const log = join(dir, 'log');
  writeFileSync(join(dir, 'count.sh'), 'exec </dev/null >/out/log 2>&1\ni=0\nwhile :; do i=$((i+1)); echo $i; sleep 0.05; done\n');
  let t = performance.now();
  const s = spawnSync(CTR[0], [...CTR.slice(1), 'exec', sif, 'true']);
  if (s.status !== 0) throw new Error(`ctr exec true: exit ${s.status}`);
  start.push(performance.now() - t);
  const run = spawn(CTR[0], [...CTR.slice(1), 'exec', '--checkpointable', '--bind', `${dir}:/out`, sif, 'sh', '/out/count.sh'], { stdio: 'ignore' });
  while (lines(log) < 10) await sleep(20);
  const init = initBelow(run.pid!);
  t = performance.now();
  const ck = spawnSync(CTR[0], [...CTR.slice(1), 'checkpoint', String(init), join(dir, 'ck')], { encoding: 'utf8' });
  if (ck.status !== 0) throw new Error(`ctr checkpoint: ${ck.stderr}`);
  dump.push(performance.now() - t);
  await new Promise((r) => run.on('exit', r));
  const at = lines(log);
  size.push(readdirSync(join(dir, 'ck')).filter((f) => f.endsWith('.img')).reduce((n, f) => n + statSync(join(dir, 'ck', f)).size, 0) / 1024);
  t = performance.now();
  const back = spawn(CTR[0], [...CTR.slice(1), 'restore', '--bind', `${dir}:/out`, sif, join(dir, 'ck')], { stdio: 'ignore' });
  while (lines(log) <= at) await sleep(5);
  restore.push(performance.now() - t);
  back.kill('SIGTERM');
  await new Promise((r) => back.on('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
const ms = (xs: number[]) => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
process.stdout.write(['### Checkpoint and restart (CRIU, rootless)', '',
  `Median (min–max) of ${RUNS} runs, ms; the process: a shell counting every 50 ms.`, '',
  '| | ms | × a plain start |', '|---|---|---|',
  `| \`ctr exec IMG true\` (a plain start) | ${ms(start)} | 1 |`,
  `| \`ctr checkpoint\` (dump, stop, kill) | ${ms(dump)} | ${(median(dump) / median(start)).toFixed(1)} |`,
  `| \`ctr restore\` until it counts again | ${ms(restore)} | ${(median(restore) / median(start)).toFixed(1)} |`,
  '', `Checkpoint images: ${median(size).toFixed(0)} KiB (median).`, ''].join('\n'));
