// The test cluster (scripts/cluster.sh): N Slurm nodes on this machine, each its own
// network, UTS and mount namespace, with slurmctld in a "head" namespace that is the
// submit host. Brought up once and shared by every test file that needs it (the script
// is idempotent; the harness takes it down after the last file). srun/sbatch run as the
// unprivileged test user on the head; a node's private files are read through its
// holder's /proc/PID/root.
import { execa, type Options } from 'execa';
import { mkdtemp, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CACHE, CTR_BIN, CTR_ROOT, REPO } from './paths.js';
import { TEST_USER, userIds } from './user.js';

export const CLUSTER_SCRIPT = `${REPO}/scripts/cluster.sh`;
export const PLUGIN = `${CTR_ROOT}/native/build/ctr_spank.so`;
export const CTR_SRUN = `${CTR_ROOT}/slurm/ctr-srun`;
/** Where the plugin stages images and writes plan files on each node (plugstack.conf stage_dir=). */
export const STAGE_DIR = '/tmp';
export const NODES = 3;

export interface Cluster {
  dir: string;
  conf: string;
  /** Node names, ctrn1..ctrnN. */
  nodes: string[];
  /** Pid of the process holding each node's namespaces (and the head's). */
  holders: Record<string, number>;
  head: number;
  /** A directory every node and the head see at the same path, writable by the test user. */
  shared: string;
  /** The environment every Slurm command needs. */
  env: Record<string, string>;
}

let up: Promise<Cluster> | undefined;

/** The cluster, brought up if it is not (once per process). */
export function cluster(): Promise<Cluster> {
  up ??= bringUp();
  return up;
}

async function bringUp(): Promise<Cluster> {
  // The test images and the ctr under test must be the same path on every node.
  const env = { CTR_ROOT, CTR_CLUSTER_SHARE: [CACHE, CTR_ROOT].join(':') };
  const r = await execa('bash', [CLUSTER_SCRIPT, 'up', String(NODES)], { env, reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`cluster: up failed (${r.exitCode}):\n${r.all}`);
  const vars = Object.fromEntries((await execa('bash', [CLUSTER_SCRIPT, 'env'], { env })).stdout
    .split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const n = Number(vars.CTR_CLUSTER_NODES);
  const nodes = Array.from({ length: n }, (_, i) => `ctrn${i + 1}`);
  const holders: Record<string, number> = {};
  nodes.forEach((name, i) => { holders[name] = Number(vars[`CTR_CLUSTER_N${i + 1}`]); });
  return {
    dir: vars.CTR_CLUSTER_DIR, conf: vars.SLURM_CONF, nodes, holders,
    head: Number(vars.CTR_CLUSTER_HEAD), shared: join(vars.CTR_CLUSTER_DIR, 'shared'),
    env: { SLURM_CONF: vars.SLURM_CONF },
  };
}

/** nsenter's arguments that put a command on the head (the submit host). */
export function onHead(c: Cluster): string[] {
  return ['nsenter', `--net=/proc/${c.head}/ns/net`, `--uts=/proc/${c.head}/ns/uts`, '--'];
}

/** CMD ARGS as the test user on the submit host (the head), with the cluster's SLURM_CONF. */
export function submit(c: Cluster, cmd: string, args: readonly string[], opts: Options = {}) {
  const env = { ...c.env, ...(opts.env ?? {}) };
  return execa(onHead(c)[0], [...onHead(c).slice(1), 'runuser', '-u', TEST_USER, '--', 'env',
    `HOME=/home/${TEST_USER}`, `USER=${TEST_USER}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), cmd, ...args], {
    reject: false, stripFinalNewline: false, ...opts, env: {},
  });
}

/** PATH as node NODE sees it (its private /tmp, /var/spool, ...), from the host. */
export function onNode(c: Cluster, node: string, path: string): string {
  return `/proc/${c.holders[node]}/root${path}`;
}

/** A scratch directory owned by the test user that every node sees at the same path. */
export async function sharedTmp(c: Cluster, prefix = 'work-'): Promise<string> {
  const dir = await mkdtemp(join(c.shared, prefix));
  const { uid, gid } = await userIds();
  await execa('chown', [`${uid}:${gid}`, dir]);
  return dir;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`cluster: timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Wait until no job is left (epilogs included: a completing job is still listed). */
export async function waitNoJobs(c: Cluster, ms = 30000): Promise<void> {
  await until('every job to end', ms, async () => {
    const r = await execa(onHead(c)[0], [...onHead(c).slice(1), 'squeue', '-h', '-o', '%i %t'], { env: c.env, reject: false });
    return r.exitCode === 0 && r.stdout.trim() === '' ? true : undefined;
  });
}

/** The processes of the test user that carry this cluster's SLURM_CONF, zombies left out. */
export async function markedProcesses(c: Cluster): Promise<Array<{ pid: string; name: string; net: string }>> {
  const marker = `SLURM_CONF=${c.conf}`;
  const { uid } = await userIds();
  const out: Array<{ pid: string; name: string; net: string }> = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const m = /^Uid:\s+(\d+)/m.exec(status);
    if (!m || Number(m[1]) !== uid || /^State:\s+Z/m.test(status)) continue;
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    if (!environ.split('\0').includes(marker)) continue;
    const net = await readlink(`/proc/${pid}/ns/net`).catch(() => '');
    out.push({ pid, name: /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?', net });
  }
  return out;
}

/** Which node (or 'head') a network namespace is, by the holders'. */
export async function nodeOfNet(c: Cluster): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  m.set(await readlink(`/proc/${c.head}/ns/net`), 'head');
  for (const n of c.nodes) m.set(await readlink(`/proc/${c.holders[n]}/ns/net`), n);
  return m;
}

/** Processes started through this cluster still alive after GRACEMS: "pid name@node". */
export async function clusterLeftovers(c: Cluster, graceMs = 3000): Promise<string[]> {
  const end = Date.now() + graceMs;
  const where = await nodeOfNet(c);
  for (;;) {
    const found = (await markedProcesses(c)).map((p) => `${p.pid} ${p.name}@${where.get(p.net) ?? 'host'}`);
    if (found.length === 0 || Date.now() > end) return found;
    await sleep(50);
  }
}

/** The plugin's node-local job directories of the test user, per node: "node:ctr.UID.JOB". */
export async function jobDirs(c: Cluster, prefix = 'ctr.'): Promise<string[]> {
  const { uid } = await userIds();
  const out: string[] = [];
  for (const n of c.nodes) {
    for (const e of await readdir(onNode(c, n, STAGE_DIR))) if (e.startsWith(`${prefix}${uid}.`)) out.push(`${n}:${e}`);
  }
  return out;
}

/** srun ARGS as the test user on the submit host. */
export function srun(c: Cluster, args: readonly string[], opts: Options = {}) {
  return submit(c, 'srun', args, opts);
}

/** ctr-srun ARGS (the wrapper) as the test user on the submit host. */
export function ctrSrun(c: Cluster, args: readonly string[], opts: Options = {}) {
  return submit(c, CTR_SRUN, args, { ...opts, env: { CTR: CTR_BIN, ...(opts.env ?? {}) } });
}

/** sbatch --wait ARGS as the test user: returns when the job has ended. */
export function sbatch(c: Cluster, args: readonly string[], opts: Options = {}) {
  return submit(c, 'sbatch', ['--wait', ...args], opts);
}

/**
 * The image files that this cluster's containers are mounted from while they run, as
 * "node:path" with the path as that node sees it: the files each FUSE server (ctr-fuse,
 * or squashfuse_ll) has open, found by device and inode among the nodes' job
 * directories and the test images (a path read from /proc/PID/fd across mount
 * namespaces is not the node's). Waits until there are AT_LEAST.
 */
export async function imagesInUse(c: Cluster, atLeast = 1, ms = 20000): Promise<string[]> {
  const where = await nodeOfNet(c);
  const { uid } = await userIds();
  return until('a container of this cluster to run', ms, async () => {
    const known = new Map<string, string>();
    const note = async (seen: string, named: string) => {
      const st = await stat(seen).catch(() => undefined);
      if (st?.isFile()) known.set(`${st.dev}:${st.ino}`, named);
    };
    for (const f of await readdir(CACHE).catch(() => [] as string[])) await note(join(CACHE, f), join(CACHE, f));
    for (const n of c.nodes) {
      for (const d of await readdir(onNode(c, n, STAGE_DIR)).catch(() => [] as string[])) {
        if (!d.startsWith(`ctr.${uid}.`) && !d.startsWith(`ctr-srun.${uid}.`)) continue;
        for (const f of await readdir(onNode(c, n, `${STAGE_DIR}/${d}`)).catch(() => [] as string[])) {
          await note(onNode(c, n, `${STAGE_DIR}/${d}/${f}`), `${STAGE_DIR}/${d}/${f}`);
        }
      }
    }
    const files = new Set<string>();
    for (const p of (await markedProcesses(c)).filter((x) => x.name === 'ctr-fuse' || x.name === 'squashfuse_ll')) {
      for (const fd of await readdir(`/proc/${p.pid}/fd`).catch(() => [] as string[])) {
        const target = await readlink(`/proc/${p.pid}/fd/${fd}`).catch(() => '');
        if (!/\.(sif|sqfs)$/.test(target)) continue;
        const st = await stat(`/proc/${p.pid}/fd/${fd}`).catch(() => undefined);
        files.add(`${where.get(p.net) ?? 'host'}:${(st && known.get(`${st.dev}:${st.ino}`)) ?? target}`);
      }
    }
    return files.size >= atLeast ? [...files].sort() : undefined;
  });
}
