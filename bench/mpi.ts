// MPI through containers: ping-pong latency and bandwidth from 8 B to 16 MiB
// (bench/mpi/pingpong.c) between two ranks of the host's Open MPI mpirun, for
//   bare     a host-compiled pingpong, no container
//   ctr      a plan file (C launcher alone), ranks sharing one container (join, default)
//   ch-run   Charliecloud's `ch-run --join` on the same SquashFS bytes (the SIF's partition)
// interleaved (round i runs each once, in turn); per size, the median over rounds, and
// each container's latency over bare's paired by round (measured seconds apart: this
// VM's speed drifts up to 2x with its host's load, and a pair shares the drift), whose
// median over rounds is what the 5% target is judged on. Then
// start-up: `mpirun -n 2 X /bin/true` and one rank alone, plan file vs ch-run.
// As root, everything runs as an unprivileged user (BENCH_USER, default ctrtest).
//   node dist/bench/mpi.js [--full]   (BENCH_ROUNDS, BENCH_START_ROUNDS override the rounds)
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { mpiImage, parsePingpong, PINGPONG_SIZES, type PingpongSize } from '../test/helpers/mpi.js';
import { humanSize, measure, median, pairedRounds, REPO, save, sh, table, type Contender, type Row } from './lib.js';

const full = process.argv.includes('--full');
const rounds = Number(process.env.BENCH_ROUNDS ?? (full ? 9 : 5));
const startRounds = Number(process.env.BENCH_START_ROUNDS ?? (full ? 100 : 20));
const work = process.env.BENCH_WORK ?? '/var/tmp/ctr-bench';
const user = process.getuid?.() === 0 ? (process.env.BENCH_USER ?? 'ctrtest') : undefined;
const userName = user ?? process.env.USER ?? 'user';
// ch-run insists on USER; runuser keeps root's environment otherwise.
const asUser = (cmd: string[]) => (user ? ['runuser', '-u', user, '--', 'env', `USER=${user}`, `HOME=/home/${user}`, ...cmd] : cmd);
const ctr = [process.execPath, join(REPO, 'dist/src/cli/main.js')];
const MPIRUN = ['mpirun.openmpi', '-n', '2', '--oversubscribe'];

interface Setup { sif: string; sqfs: string; plan: string; bare: string }

async function prepare(): Promise<Setup> {
  mkdirSync(work, { recursive: true });
  chmodSync(work, 0o777);
  const sif = await mpiImage();
  // ch-run takes a bare SquashFS: the SIF's own partition, copied out byte for byte.
  const sqfs = join(work, `${sif.split('/').pop()!.replace(/\.sif$/, '')}.sqfs`);
  if (!existsSync(sqfs)) {
    // inspect --json is Apptainer's schema; --image puts ctr's view of the file beside it.
    const info = JSON.parse(sh([...ctr, 'inspect', '--json', '--image', sif])) as { image: { objects: Array<{ offset: number; size: number; partition?: unknown }> } };
    const part = info.image.objects.find((o) => o.partition)!;
    const from = openSync(sif, 'r'), to = openSync(`${sqfs}.tmp`, 'w');
    const buf = Buffer.alloc(1 << 20);
    for (let done = 0; done < part.size;) {
      const n = readSync(from, buf, 0, Math.min(buf.length, part.size - done), part.offset + done);
      writeSync(to, buf, 0, n);
      done += n;
    }
    closeSync(from);
    closeSync(to);
    sh(['mv', `${sqfs}.tmp`, sqfs]);
    chmodSync(sqfs, 0o644);
  }
  const bare = join(work, 'pingpong.openmpi');
  sh(['mpicc.openmpi', '-O2', '-o', bare, join(REPO, 'bench/mpi/pingpong.c')]);
  chmodSync(bare, 0o755);
  const plan = join(work, `mpi-${userName}.plan`);
  sh(asUser([...ctr, 'plan', '-o', plan, sif]), { cwd: work });
  return { sif, sqfs, plan, bare };
}

function pingpong(cmd: string[]): PingpongSize[] {
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd: work, encoding: 'utf8', timeout: 300_000 });
  const pp = parsePingpong(r.stdout ?? '');
  if (r.status !== 0 || !pp.done) throw new Error(`${cmd.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
  if (!pp.ns.user?.same) throw new Error(`${cmd.join(' ')}: ranks in different user namespaces`);
  if (/CMA|single-copy|show_help/.test(r.stderr)) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
  return pp.sizes;
}


export async function mpi(): Promise<string> {
  const s = await prepare();
  const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
  const contenders: Array<{ name: string; cmd: string[] }> = [
    { name: 'bare', cmd: asUser([...MPIRUN, s.bare]) },
    { name: 'ctr', cmd: asUser([...MPIRUN, s.plan, '/opt/ctr/pingpong.openmpi']) },
  ];
  if (has('ch-run')) contenders.push({ name: 'ch-run --join', cmd: asUser([...MPIRUN, 'ch-run', '--join', s.sqfs, '--', '/opt/ctr/pingpong.openmpi']) });

  // lat[contender][size index] = latencies over rounds (µs); the warm-up pays the page
  // cache and first mounts.
  const { lat, med, paired } = pairedRounds(contenders.map((c) => () => pingpong(c.cmd).map((p) => p.latUs)), PINGPONG_SIZES.length, rounds);
  const names = contenders.map((c) => c.name);
  const others = names.slice(1);
  const md = [
    `### Open MPI ping-pong, 2 ranks (${rounds} interleaved rounds, medians; ${hostname()})`,
    '',
    `| size | ${names.map((n) => `${n} µs`).join(' | ')} | ${others.map((n) => `${n} / bare (paired)`).join(' | ')} | ${names.map((n) => `${n} MB/s`).join(' | ')} |`,
    `| ---: | ${names.map(() => '---:').join(' | ')} | ${others.map(() => '---:').join(' | ')} | ${names.map(() => '---:').join(' | ')} |`,
    ...PINGPONG_SIZES.map((size, j) =>
      `| ${humanSize(size)} | ${med.map((m) => m[j].toFixed(2)).join(' | ')} | ${paired.slice(1).map((m) => m[j].toFixed(3)).join(' | ')} | ${med.map((m) => (size / m[j]).toFixed(0)).join(' | ')} |`),
  ].join('\n') + '\n';
  const ppRows: Row[] = [];
  contenders.forEach((c, k) => PINGPONG_SIZES.forEach((size, j) => {
    const xs = lat[k][j].map((x) => x / 1000);
    ppRows.push({ name: `pingpong ${humanSize(size)} ${c.name}`, runs: rounds, medianMs: median(xs), p10Ms: Math.min(...xs), p90Ms: Math.max(...xs),
      ratio: paired[k][j], baseline: `pingpong ${humanSize(size)} ${contenders[0].name}` });
  }));

  // Start-up: a whole 2-rank job that only says hello (MPI_Init, one 8-byte exchange,
  // MPI_Finalize: with /bin/true, ch-run's joined peers can outlive the FUSE server and
  // fail with ENOTCONN), and one rank alone running /bin/true, on the same bytes.
  const hello = ['--max', '8', '--iters', '1'];
  const start: Contender[] = [
    { name: 'mpirun -n 2 bare hello', cmd: asUser([...MPIRUN, s.bare, ...hello]), cwd: work },
    { name: 'mpirun -n 2 ctr plan file (joined)', cmd: asUser([...MPIRUN, s.plan, '/opt/ctr/pingpong.openmpi', ...hello]), cwd: work },
    { name: 'one rank: ctr plan file /bin/true', cmd: asUser([s.plan, '/bin/true']), cwd: work },
  ];
  if (has('ch-run')) {
    start.splice(2, 0, { name: 'mpirun -n 2 ch-run --join (same bytes)', cmd: asUser([...MPIRUN, 'ch-run', '--join', s.sqfs, '--', '/opt/ctr/pingpong.openmpi', ...hello]), cwd: work });
    start.push({ name: 'one rank: ch-run /bin/true (same bytes)', cmd: asUser(['ch-run', s.sqfs, '--', '/bin/true']), cwd: work });
  }
  const startRows = measure(start, startRounds);
  const at = (n: string) => startRows.find((r) => r.name.startsWith(n));
  const notes: string[] = [];
  const perRank = (job?: Row) => (job ? (job.medianMs - startRows[0].medianMs) / 2 : NaN);
  notes.push(`ctr per rank under mpirun (job − bare job, ÷ 2): ${perRank(at('mpirun -n 2 ctr')).toFixed(1)} ms`);
  if (has('ch-run')) {
    notes.push(`ch-run --join per rank under mpirun: ${perRank(at('mpirun -n 2 ch-run')).toFixed(1)} ms`);
    const a = at('one rank: ctr'), b = at('one rank: ch-run');
    if (a && b) notes.push(`one rank, plan file / ch-run: ${(a.medianMs / b.medianMs).toFixed(2)}×`);
    const big = PINGPONG_SIZES.length - 1;
    notes.push(`16 MiB bandwidth (medians), ctr / bare: ${(med[0][big] / med[1][big]).toFixed(2)}×, ch-run / bare: ${(med[0][big] / med[2][big]).toFixed(2)}×`);
  }
  contenders.slice(1).forEach((c, i) => {
    const r = PINGPONG_SIZES.map((size, j) => ({ size, ratio: paired[i + 1][j] }));
    const w = r.reduce((a, b) => (b.ratio > a.ratio ? b : a));
    notes.push(`${c.name} latency / bare, paired by round, median over rounds: worst size ${humanSize(w.size)} ${w.ratio.toFixed(3)}×, ` +
      `${r.filter((x) => x.ratio <= 1.05).length} of ${r.length} sizes within 5%${c.name === 'ctr' ? ' (target: every size within 5%)' : ''}`);
  });
  const startMd = table(`Start-up (${startRounds} interleaved rounds, ${hostname()})`, startRows);
  const date = new Date().toISOString();
  // Two results: each row's ratio is to its own baseline (bare at the same size; the bare job).
  const flags = [
    ...await save({ name: 'mpi-pingpong', date, host: hostname(), rows: ppRows, notes: [md] }),
    ...await save({ name: 'mpi-startup', date, host: hostname(), rows: startRows, notes }),
  ];
  return `${md}\n${startMd}\n${[...notes, ...flags].map((n) => `- ${n}`).join('\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(await mpi());
}
