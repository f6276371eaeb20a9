// A live one-node Slurm for the tests, as pyxis' tests run against a real cluster: munged,
// slurmctld and slurmd on this machine, with a minimal slurm.conf in a temporary
// directory and ctr's SPANK plugin in its plugstack.conf. Installs nothing (setup.sh
// does). srun/sbatch run as the unprivileged test user, pointed at it by SLURM_CONF.
import { execa, type Options } from 'execa';
import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { hostname, cpus } from 'node:os';
import { join } from 'node:path';
import { CTR_BIN, CTR_ROOT } from './paths.js';
import { asUser, userIds } from './user.js';

export const PLUGIN = `${CTR_ROOT}/native/build/ctr_spank.so`;
export const CTR_SRUN = `${CTR_ROOT}/slurm/ctr-srun`;
/** Where the plugin stages images and writes plan files (plugstack.conf stage_dir=). */
export const STAGE_DIR = '/tmp';

export interface Slurm {
  dir: string;
  conf: string;
  node: string;
  /** The environment every Slurm command needs. */
  env: Record<string, string>;
  /** Stop the daemons (and munged, if this started it) and remove all state. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`slurm: timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function mungeWorks(): Promise<boolean> {
  const r = await execa('sh', ['-c', 'munge -n | unmunge'], { reject: false });
  return r.exitCode === 0;
}

/** munged as user munge, /run/munge owned by munge; returns its pid if this started it. */
async function startMunge(): Promise<number | undefined> {
  if (await mungeWorks()) return undefined;
  await mkdir('/run/munge', { recursive: true });
  await execa('chown', ['munge:munge', '/run/munge']);
  await chmod('/run/munge', 0o755);
  await execa('runuser', ['-u', 'munge', '--', '/usr/sbin/munged']);
  await until('munged', 5000, async () => ((await mungeWorks()) ? true : undefined));
  return Number((await readFile('/run/munge/munged.pid', 'utf8')).trim());
}

function slurmConf(dir: string, node: string, ports: [number, number]): string {
  return [
    'ClusterName=ctrtest',
    `SlurmctldHost=${node}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    'AuthType=auth/munge',
    `SlurmctldPort=${ports[0]}`,
    `SlurmdPort=${ports[1]}`,
    `StateSaveLocation=${dir}/state`,
    `SlurmdSpoolDir=${dir}/spool`,
    `SlurmctldPidFile=${dir}/slurmctld.pid`,
    `SlurmdPidFile=${dir}/slurmd.pid`,
    `SlurmctldLogFile=${dir}/slurmctld.log`,
    `SlurmdLogFile=${dir}/slurmd.log`,
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core',
    'AccountingStorageType=accounting_storage/none',
    'JobAcctGatherType=jobacct_gather/none',
    'JobCompType=jobcomp/none',
    'MpiDefault=none',
    'ReturnToService=2',
    `PlugStackConfig=${dir}/plugstack.conf`,
    `NodeName=${node} CPUs=${cpus().length} State=UNKNOWN`,
    `PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
    '',
  ].join('\n');
}

async function pidOf(file: string): Promise<number | undefined> {
  const t = await readFile(file, 'utf8').catch(() => '');
  return Number(t.trim()) || undefined;
}

async function stopPid(pid: number | undefined): Promise<void> {
  if (!pid) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  await until(`pid ${pid} to exit`, 10000, async () => {
    try { process.kill(pid, 0); return undefined; } catch { return true; }
  }).catch(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
}

/** Start munged (if needed), slurmctld and slurmd; resolves when the node is idle. */
export async function startSlurm(): Promise<Slurm> {
  const dir = await mkdtemp('/tmp/ctr-slurm-');
  await chmod(dir, 0o755);
  for (const d of ['state', 'spool']) await mkdir(join(dir, d));
  const node = hostname();
  const conf = join(dir, 'slurm.conf');
  // Ports of their own, so a real Slurm on this machine is not disturbed.
  const base = 20000 + (process.pid % 2000) * 2;
  await writeFile(conf, slurmConf(dir, node, [base, base + 1]));
  await writeFile(join(dir, 'plugstack.conf'),
    `required ${PLUGIN} ctr=${CTR_BIN} stage_dir=${STAGE_DIR}\n`);
  const env = { SLURM_CONF: conf };
  const munged = await startMunge();
  await execa('slurmctld', ['-i', '-f', conf], { env });
  await execa('slurmd', ['-f', conf], { env });
  await until('the node to be idle', 30000, async () => {
    const r = await execa('sinfo', ['-h', '-o', '%t'], { env, reject: false });
    return r.stdout.trim() === 'idle' ? true : undefined;
  });
  return {
    dir, conf, node, env,
    async stop() {
      await stopPid(await pidOf(join(dir, 'slurmd.pid')));
      await stopPid(await pidOf(join(dir, 'slurmctld.pid')));
      await stopPid(munged);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** srun ARGS as the test user. */
export function srun(s: Slurm, args: readonly string[], opts: Options = {}) {
  return asUser('srun', args, { ...opts, env: { ...s.env, ...(opts.env ?? {}) } });
}

/** ctr-srun ARGS (the wrapper) as the test user. */
export function ctrSrun(s: Slurm, args: readonly string[], opts: Options = {}) {
  return asUser(CTR_SRUN, args, {
    ...opts, env: { CTR: CTR_BIN, ...s.env, ...(opts.env ?? {}) },
  });
}

/** sbatch --wait ARGS as the test user: returns when the job has ended. */
export function sbatch(s: Slurm, args: readonly string[], opts: Options = {}) {
  return asUser('sbatch', ['--wait', ...args], { ...opts, env: { ...s.env, ...(opts.env ?? {}) } });
}

/** Wait until no job is left (epilogs included: a completing job is still listed). */
export async function waitNoJobs(s: Slurm, ms = 30000): Promise<void> {
  await until('every job to end', ms, async () => {
    const r = await execa('squeue', ['-h', '-o', '%i %t'], { env: s.env, reject: false });
    return r.exitCode === 0 && r.stdout.trim() === '' ? true : undefined;
  });
}

/**
 * Processes started through this Slurm that are still alive: srun, tasks, container
 * holders and FUSE servers all carry this Slurm's SLURM_CONF in their environment, so
 * other work running as the same user at the same time is not counted.
 */
export async function slurmLeftovers(s: Slurm, graceMs = 3000): Promise<string[]> {
  const end = Date.now() + graceMs;
  for (;;) {
    const found = (await markedProcesses(s)).map((p) => `${p.pid} ${p.name}`);
    if (found.length === 0 || Date.now() > end) return found;
    await sleep(50);
  }
}

/** The plugin's node-local job directories of the test user (plan files, staged images). */
export async function jobDirs(): Promise<string[]> {
  const { uid } = await userIds();
  return (await readdir(STAGE_DIR)).filter((n) => n.startsWith(`ctr.${uid}.`));
}

/** The processes started through this Slurm: pid and name, zombies left out. */
async function markedProcesses(s: Slurm): Promise<Array<{ pid: string; name: string }>> {
  const marker = `SLURM_CONF=${s.conf}`;
  const { uid } = await userIds();
  const out: Array<{ pid: string; name: string }> = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const m = /^Uid:\s+(\d+)/m.exec(status);
    if (!m || Number(m[1]) !== uid || /^State:\s+Z/m.test(status)) continue;
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    if (environ.split('\0').includes(marker)) out.push({ pid, name: /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?' });
  }
  return out;
}

/**
 * The image files that this Slurm's containers are mounted from, seen from the host while
 * they run: what each FUSE server (ctr-fuse, or squashfuse_ll with CTR_FUSE=exec) has open. Waits until there is one.
 */
export async function imagesInUse(s: Slurm, ms = 20000): Promise<string[]> {
  return until('a container of this Slurm to run', ms, async () => {
    const files = new Set<string>();
    for (const p of (await markedProcesses(s)).filter((x) => x.name === 'ctr-fuse' || x.name === 'squashfuse_ll')) {
      for (const fd of await readdir(`/proc/${p.pid}/fd`).catch(() => [] as string[])) {
        const target = await readlink(`/proc/${p.pid}/fd/${fd}`).catch(() => '');
        if (/\.(sif|sqfs)$/.test(target)) files.add(target);
      }
    }
    return files.size ? [...files].sort() : undefined;
  });
}
