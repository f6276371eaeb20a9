// Launch cost under Slurm: `srun -n N /bin/true` for N = 1..nproc, four ways side by
// side on one node of the test cluster (test/helpers/cluster.ts brings it up): bare, through the
// SPANK plugin (srun plans once with Node, each task is the C launcher), through the
// ctr-srun wrapper (the same, planned by the wrapper), and `srun ctr exec` (Node and
// planning in every task). Each srun is a whole job (allocation included), so the notes
// give, for each way, its cost over bare at N tasks and its cost per extra task over
// bare's ((t(N) - t(1)) - (bare(N) - bare(1))) / (N - 1): planning once per step shows in
// the first, Node per task in the second. Staging is off (CTR_STAGE=0): each
// srun is a new job, and a copy per job would be measured instead of the launch.
// As root; the tasks run as an unprivileged user (BENCH_USER, default ctrtest).
import { cpus, hostname } from 'node:os';
import { busyboxSif } from '../test/helpers/images.js';
import { CTR_BIN } from '../test/helpers/paths.js';
import { CTR_SRUN, startSlurm, workDir } from '../test/helpers/slurm.js';
import { ensureTestUser } from '../test/helpers/user.js';
import { measure, save, table, type Row } from './lib.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? (process.argv.includes('--full') ? 40 : 10));
const user = process.env.BENCH_USER ?? 'ctrtest';

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/slurm: run as root (it starts Slurm and runs tasks as an unprivileged user)');
  await ensureTestUser();
  const sif = await busyboxSif();
  const slurm = await startSlurm();
  // The test cluster's nodes have private /tmp: the tasks start in a directory all share
  // (ctr-srun writes its plan file beside them).
  const cwd = await workDir(slurm);
  const out: string[] = [];
  const all: Row[] = [];
  try {
    const env = { ...process.env, SLURM_CONF: slurm.conf, CTR_STAGE: '0', CTR: CTR_BIN };
    const as = (cmd: string[]) => [...slurm.head, 'runuser', '-u', user, '--', 'env', `SLURM_CONF=${slurm.conf}`, 'CTR_STAGE=0',
      `CTR=${CTR_BIN}`, ...cmd];
    const notes: string[] = [];
    const first: Row[] = [];
    for (let n = 1; n <= cpus().length; n++) {
      const rows = measure([
        { name: `bare srun -n${n} /bin/true`, cmd: as(['srun', `-n${n}`, '/bin/true']), cwd, env },
        { name: `plugin srun -n${n} --ctr-image`, cmd: as(['srun', `-n${n}`, `--ctr-image=${sif}`, '/bin/true']), cwd, env },
        { name: `ctr-srun -n${n}`, cmd: as([CTR_SRUN, `--ctr-image=${sif}`, `-n${n}`, '/bin/true']), cwd, env },
        { name: `srun -n${n} ctr exec`, cmd: as(['srun', `-n${n}`, CTR_BIN, 'exec', sif, '/bin/true']), cwd, env },
      ], rounds, 1);
      out.push(table(`srun -n${n} /bin/true on ${hostname()} (${rounds} interleaved rounds; whole jobs)`, rows));
      if (n === 1) first.push(...rows);
      const extra = (k: number) => n === 1 ? '' : `, per extra task ${(((rows[k].medianMs - first[k].medianMs) - (rows[0].medianMs - first[0].medianMs)) / (n - 1)).toFixed(1)} ms`;
      notes.push(`N=${n}: ${rows.slice(1).map((r, i) => `${r.name.replace(/ -n\d+/, '')}: +${(r.medianMs - rows[0].medianMs).toFixed(1)} ms over bare${extra(i + 1)}`).join('; ')}`);
      all.push(...rows);
    }
    out.push(notes.map((l) => `- ${l}`).join('\n') + '\n');
    const flags = await save({ name: 'slurm', date: new Date().toISOString(), host: hostname(), rows: all, notes });
    if (flags.length) out.push(flags.map((f) => `- ${f}`).join('\n') + '\n');
  } finally {
    await slurm.stop();
  }
  process.stdout.write(`## Slurm launch\n\n${out.join('\n')}`);
}

main().catch((err) => { process.stderr.write(`bench/slurm: ${(err as Error).stack ?? err}\n`); process.exitCode = 1; });
