// File-heavy work inside an image: stat every file of Python's standard library, read
// every file, and import a large package set — on the host directory (bare), through
// ctr (plan file) and through ch-run on the same SquashFS bytes. "cold" is the first
// pass in a fresh container (fresh FUSE mount); "warm" is a second pass in the same one.
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { asUser, image, planFile, pythonTree, USER, WORK } from './images.js';
import { median, type Row, save } from './lib.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? (process.argv.includes('--full') ? 30 : 7));
const STDLIB = '/usr/lib/python3.11';
const IMPORTS = 'json,email.parser,http.client,xml.dom.minidom,argparse,decimal,asyncio,unittest,logging.handlers,sqlite3,csv,zipfile,tarfile,pickle,urllib.request';

// Runs inside the image (or on the host): times three tasks twice, prints ms for each.
const WORKLOAD = `
import os, sys, time, subprocess
root = sys.argv[1]
def stat_all():
    n = 0
    for d, dirs, files in os.walk(root):
        for f in files:
            os.lstat(os.path.join(d, f)); n += 1
    return n
def read_all():
    n = 0
    for d, dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, 'rb') as fh: n += len(fh.read())
    return n
def imports():
    subprocess.run([sys.executable, '-c', 'import ${IMPORTS}'], check=True)
out = []
for task in (stat_all, read_all, imports):
    for _ in range(2):
        t = time.perf_counter(); task(); out.append((time.perf_counter() - t) * 1000)
print(' '.join('%.2f' % x for x in out))
`;

const LABELS = ['stat all, cold', 'stat all, warm', 'read all, cold', 'read all, warm', 'import set, cold', 'import set, warm'];

function runOnce(cmd: string[]): number[] {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', cwd: WORK, env: { ...process.env, USER: USER ?? process.env.USER ?? 'user' } });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
  return r.stdout.trim().split(' ').map(Number);
}

export async function files(): Promise<string> {
  const img = image('python', () => pythonTree());
  const plan = planFile(img, 'python');
  const has = (b: string) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0;
  const contenders: Array<[string, string[]]> = [
    ['bare (host directory)', asUser(['/usr/bin/python3', '-c', WORKLOAD, STDLIB])],
    // The built-in FUSE server with one worker and with two (CTR_FUSE_THREADS; the
    // default is one per CPU, at most 8).
    ['ctr (plan file), 1 server thread', asUser(['env', 'CTR_FUSE_THREADS=1', plan, '/usr/bin/python3', '-c', WORKLOAD, STDLIB])],
    ['ctr (plan file), 2 server threads', asUser(['env', 'CTR_FUSE_THREADS=2', plan, '/usr/bin/python3', '-c', WORKLOAD, STDLIB])],
    // With the read-ahead thread (launch_sqfs_blocks.c; off by default), to show what it does.
    ['ctr (plan file), 1 server thread, read-ahead', asUser(['env', 'CTR_FUSE_THREADS=1', 'CTR_FUSE_READAHEAD=1', plan, '/usr/bin/python3', '-c', WORKLOAD, STDLIB])],
  ];
  if (has('ch-run')) contenders.push(['ch-run (same SquashFS)', asUser(['ch-run', img.sqfs, '--', '/usr/bin/python3', '-c', WORKLOAD, STDLIB])]);
  runOnce(contenders[0][1]); // warm the host's page cache for every contender alike
  const samples = contenders.map(() => LABELS.map(() => [] as number[]));
  for (let i = 0; i < rounds; i++) {
    contenders.forEach(([, cmd], k) => runOnce(cmd).forEach((ms, j) => samples[k][j].push(ms)));
  }
  const rows: Row[] = [];
  const lines = ['### File-heavy work on Python 3.11\'s standard library (' + rounds + ' interleaved rounds, ' + hostname() + ')', '',
    `| task | ${contenders.map(([n]) => n).join(' | ')} | ${contenders.slice(1).map(([n]) => `${n} × bare`).join(' | ')} |`,
    `| --- | ${contenders.map(() => '---:').join(' | ')} | ${contenders.slice(1).map(() => '---:').join(' | ')} |`];
  LABELS.forEach((label, j) => {
    const meds = contenders.map((_, k) => median(samples[k][j]));
    meds.forEach((m, k) => rows.push({ name: `${label} / ${contenders[k][0]}`, runs: rounds, medianMs: m, p10Ms: m, p90Ms: m, ratio: m / meds[0], baseline: `${label} / ${contenders[0][0]}` }));
    lines.push(`| ${label} | ${meds.map((m) => m.toFixed(1)).join(' | ')} | ${meds.slice(1).map((m) => (m / meds[0]).toFixed(2)).join(' | ')} |`);
  });
  const flags = await save({ name: 'files', date: new Date().toISOString(), host: hostname(), rows });
  // The targets of issue 16, with a lone container's default server (1 thread; a node's
  // shared container gets one per CPU: launch_sqfs_serve.c), and with 2.
  const two = (task: string) => rows.find((r) => r.name === `${task} / ctr (plan file), 2 server threads`)!.ratio!.toFixed(2);
  const one = (task: string) => rows.find((r) => r.name === `${task} / ctr (plan file), 1 server thread`)!.ratio!.toFixed(2);
  const ra = (task: string) => rows.find((r) => r.name === `${task} / ctr (plan file), 1 server thread, read-ahead`)!.ratio!.toFixed(2);
  const targets = [
    `- cold read all, ctr × bare: ${one('read all, cold')} with 1 server thread (the default), ${two('read all, cold')} with 2 (target ≤ 3)`,
    `- cold stat all, ctr × bare: ${one('stat all, cold')} with 1, ${two('stat all, cold')} with 2 (target ≤ 3)`,
    `- warm read all, ctr × bare: ${one('read all, warm')} with 1, ${two('read all, warm')} with 2 (target ≤ 1.3)`,
    `- with read-ahead (CTR_FUSE_READAHEAD=1, 1 thread): cold read all ${ra('read all, cold')}, cold stat all ${ra('stat all, cold')}`,
  ];
  return lines.join('\n') + '\n\n' + targets.join('\n') + '\n' + flags.map((f) => `- ${f}\n`).join('');
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(await files());
