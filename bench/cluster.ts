// Step start-up across nodes on the test cluster (scripts/cluster.sh): `srun -N K -n K
// /bin/true` (one task per node) for K = 1..3, four ways side by side, interleaved:
// bare, the SPANK plugin (one `ctr plan` on the submit host, then the C launcher on each
// node), ctr-srun (the same planned by the wrapper), and `srun ctr exec` (Node and
// planning on every task). Each srun is a whole job (allocation included). Staging off
// (CTR_STAGE=0): a copy per job would be measured instead of the launch; the staging
// cost is measured on its own (plugin, staging on, each job copying to its nodes).
// The notes give each way's cost over bare at K nodes and its cost per extra node over
// bare's: ((t(K) - t(1)) - (bare(K) - bare(1))) / (K - 1). The nodes share this
// machine's CPUs, so a per-node cost here is paid in series; on real nodes it is paid
// in parallel (see the README's extrapolation). As root; tasks as BENCH_USER.
//
// Then, inside one 3-node allocation (salloc --no-shell, steps with srun --jobid), step
// start-up warm vs cold: a plugin step that builds each node's container, against one
// with --ctr-name joining the containers an earlier step of the job kept (pyxis's
// --container-name); and the plugin's staging of a 60 MB image to 3 nodes, whole jobs
// (salloc ... srun), by copy (each node reads the shared file system) and by sbcast
// (srun broadcasts through Slurm's tree), against staging off. Last, Open MPI ping-pong
// between two nodes, bare against the plugin, paired by round.
import { hostname } from 'node:os';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { busyboxSif, debianSif } from '../test/helpers/images.js';
import { mpiImage, parsePingpong, PINGPONG_SIZES, PINGPONG_SRC, type PingpongSize } from '../test/helpers/mpi.js';
import { CTR_BIN } from '../test/helpers/paths.js';
import { CTR_SRUN, cluster, onHead } from '../test/helpers/cluster.js';
import { ensureTestUser, TEST_USER } from '../test/helpers/user.js';
import { humanSize, measure, pairedRounds, REPO, save, table, type Row } from './lib.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? (process.argv.includes('--full') ? 20 : 5));
const user = process.env.BENCH_USER ?? TEST_USER;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/cluster: run as root (it brings up the test cluster)');
  await ensureTestUser();
  const sif = await busyboxSif();
  const c = await cluster();
  const cwd = c.shared;
  const as = (stage: boolean, cmd: string[]) => [...onHead(c), 'runuser', '-u', user, '--', 'env', `SLURM_CONF=${c.conf}`,
    `CTR_STAGE=${stage ? 1 : 0}`, `CTR=${CTR_BIN}`, ...cmd];
  const out: string[] = [];
  const all: Row[] = [];
  const notes: string[] = [];
  const first: Row[] = [];
  for (let k = 1; k <= c.nodes.length; k++) {
    const n = [`-N${k}`, `-n${k}`];
    const rows = measure([
      { name: `bare srun ${n.join(' ')} /bin/true`, cmd: as(false, ['srun', ...n, '/bin/true']), cwd },
      { name: `plugin --ctr-image ${n.join(' ')}`, cmd: as(false, ['srun', ...n, `--ctr-image=${sif}`, '/bin/true']), cwd },
      { name: `ctr-srun ${n.join(' ')}`, cmd: as(false, [CTR_SRUN, `--ctr-image=${sif}`, ...n, '/bin/true']), cwd },
      { name: `srun ${n.join(' ')} ctr exec`, cmd: as(false, ['srun', ...n, CTR_BIN, 'exec', sif, '/bin/true']), cwd },
      { name: `plugin, staging on ${n.join(' ')}`, cmd: as(true, ['srun', ...n, `--ctr-image=${sif}`, '/bin/true']), cwd },
    ], rounds, 1);
    out.push(table(`srun -N${k} -n${k} /bin/true on the ${c.nodes.length}-node test cluster (${rounds} interleaved rounds; whole jobs)`, rows));
    if (k === 1) first.push(...rows);
    const extra = (i: number) => k === 1 ? '' : `, per extra node ${(((rows[i].medianMs - first[i].medianMs) - (rows[0].medianMs - first[0].medianMs)) / (k - 1)).toFixed(1)} ms`;
    notes.push(`K=${k}: ${rows.slice(1).map((r, i) => `${r.name.replace(/ -N\d+ -n\d+/, '')}: +${(r.medianMs - rows[0].medianMs).toFixed(1)} ms over bare${extra(i + 1)}`).join('; ')}`);
    all.push(...rows);
  }
  notes.push(`image staged: ${(statSync(sif).size / 1e6).toFixed(1)} MB (${sif})`);

  // Warm vs cold, steps of one job.
  const alloc = as(false, ['salloc', '-N3', '-n3', '--no-shell']);
  const said = spawnSync(alloc[0], alloc.slice(1), { cwd, encoding: 'utf8' });
  const job = /Granted job allocation (\d+)/.exec(said.stderr)?.[1];
  if (!job) throw new Error('bench/cluster: no allocation');
  try {
    const step = ['srun', `--jobid=${job}`, '-N3', '-n3'];
    const rows = measure([
      { name: 'bare step -N3 -n3 /bin/true', cmd: as(false, [...step, '/bin/true']), cwd },
      { name: 'plugin step, cold (builds each node\'s container)', cmd: as(false, [...step, `--ctr-image=${sif}`, '/bin/true']), cwd },
      { name: 'plugin step, warm (--ctr-name: joins the kept one)', cmd: as(false, [...step, `--ctr-image=${sif}`, '--ctr-name=bench', '/bin/true']), cwd },
    ], rounds, 1);
    out.push(table(`steps of one 3-node job, warm vs cold (${rounds} interleaved rounds)`, rows));
    notes.push(`warm vs cold (3 nodes): cold +${(rows[1].medianMs - rows[0].medianMs).toFixed(1)} ms over bare, warm +${(rows[2].medianMs - rows[0].medianMs).toFixed(1)} ms; warm/cold ${(rows[2].medianMs / rows[1].medianMs).toFixed(2)}`);
    all.push(...rows);
  } finally {
    execFileSync(onHead(c)[0], [...onHead(c).slice(1), 'scancel', job], { env: { ...process.env, SLURM_CONF: c.conf } });
  }

  // Staging from the plugin, whole jobs of 3 nodes.
  const big = await debianSif();
  const staged = (how: string) => as(false, ['salloc', '-N3', '-n3', 'srun', '-N3', '-n3', `--ctr-image=${big}`, `--ctr-stage=${how}`, '/bin/true']);
  const srows = measure([
    { name: 'plugin job, staging off', cmd: staged('no'), cwd },
    { name: 'plugin job, staged by copy', cmd: staged('yes'), cwd },
    { name: 'plugin job, staged by sbcast', cmd: staged('sbcast'), cwd },
  ], rounds, 1);
  out.push(table(`plugin staging of a ${(statSync(big).size / 1e6).toFixed(0)} MB image to 3 nodes (${rounds} interleaved rounds; whole jobs)`, srows));
  notes.push(`staging ${(statSync(big).size / 1e6).toFixed(0)} MB to 3 nodes: copy +${(srows[1].medianMs - srows[0].medianMs).toFixed(0)} ms, sbcast +${(srows[2].medianMs - srows[0].medianMs).toFixed(0)} ms over staging off`);
  all.push(...srows);
  // MPI between two nodes: Open MPI ping-pong, srun --mpi=pmix -N2 -n2, bare (a host
  // build on the shared file system) against the plugin (one container per node, TCP
  // over the nodes' veths), interleaved; each size's latency over bare's, paired by
  // round. MPICH under --mpi=pmi2 is left out: it hangs now and then in MPI_Finalize
  // across nodes, bare too (slurm/README.md, Known limits).
  const pp = crossNodePingpong(as, cwd, await mpiImage());
  out.push(pp.md);
  notes.push(...pp.notes);
  all.push(...pp.rows);
  out.push(notes.map((l) => `- ${l}`).join('\n') + '\n');
  const flags = await save({ name: 'cluster', date: new Date().toISOString(), host: hostname(), rows: all, notes });
  if (flags.length) out.push(flags.map((f) => `- ${f}`).join('\n') + '\n');
  process.stdout.write(`## Slurm step start-up across nodes\n\n${out.join('\n')}`);
}

const ppRounds = Number(process.env.BENCH_PP_ROUNDS ?? (process.argv.includes('--full') ? 9 : 3));

function crossNodePingpong(as: (stage: boolean, cmd: string[]) => string[], cwd: string, img: string) {
  const bare = join(cwd, 'bench-pingpong.openmpi');
  execFileSync('mpicc.openmpi', ['-O2', '-o', bare, join(REPO, PINGPONG_SRC)]);
  chmodSync(bare, 0o755);
  const ways = [
    { name: 'bare', cmd: as(false, ['srun', '--mpi=pmix', '-N2', '-n2', bare]) },
    { name: 'plugin', cmd: as(false, ['srun', '--mpi=pmix', '-N2', '-n2', `--ctr-image=${img}`, '/opt/ctr/pingpong.openmpi']) },
  ];
  const run = (cmd: string[]): PingpongSize[] => {
    const r = spawnSync(cmd[0], cmd.slice(1), { cwd, encoding: 'utf8', timeout: 300_000 });
    const p = parsePingpong(r.stdout ?? '');
    if (r.status !== 0 || !p.done || !p.sizes.every((x) => x.ok)) throw new Error(`${cmd.join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr}`);
    return p.sizes;
  };
  const r = pairedRounds(ways.map((w) => () => run(w.cmd).map((x) => x.latUs)), PINGPONG_SIZES.length, ppRounds);
  const { lat, med } = r, paired = r.paired[1];
  const md = [
    `### Open MPI ping-pong between two nodes, srun --mpi=pmix -N2 -n2 (${ppRounds} interleaved rounds, medians)`,
    '',
    '| size | bare µs | plugin µs | plugin / bare (paired) | bare MB/s | plugin MB/s |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ...PINGPONG_SIZES.map((size, j) => `| ${humanSize(size)} | ${med[0][j].toFixed(2)} | ${med[1][j].toFixed(2)} | ${paired[j].toFixed(3)} | ` +
      `${(size / med[0][j]).toFixed(0)} | ${(size / med[1][j]).toFixed(0)} |`),
  ].join('\n') + '\n';
  const worst = paired.reduce((a, b, j) => (b > paired[a] ? j : a), 0);
  const rows: Row[] = PINGPONG_SIZES.flatMap((size, j) => ways.map((w, k) => ({
    name: `pingpong across nodes ${humanSize(size)} ${w.name}`, runs: ppRounds, medianMs: med[k][j] / 1000,
    p10Ms: Math.min(...lat[k][j]) / 1000, p90Ms: Math.max(...lat[k][j]) / 1000, ratio: k === 0 ? 1 : paired[j],
    baseline: `pingpong across nodes ${humanSize(size)} bare`,
  })));
  const notes = [`ping-pong across nodes, plugin / bare latency paired by round: worst size ${humanSize(PINGPONG_SIZES[worst])} ` +
    `${paired[worst].toFixed(3)}×, ${paired.filter((x) => x <= 1.05).length} of ${paired.length} sizes within 5%`];
  return { md, rows, notes };
}

main().catch((err) => { process.stderr.write(`bench/cluster: ${(err as Error).stack ?? err}\n`); process.exitCode = 1; });
