// The one-node view of the test cluster (test/helpers/cluster.ts) for the Slurm tests
// that use one node: the suite runs one Slurm, the cluster, and these tests run their
// steps on its first node (a step of at most that node's CPUs is placed there). srun and
// sbatch run as the unprivileged test user on the cluster's head, the submit host.
import type { Options } from 'execa';
import {
  CTR_SRUN, PLUGIN, STAGE_DIR, cluster, clusterLeftovers, ctrSrun as clusterCtrSrun, imagesInUse as clusterImages,
  jobDirs as clusterJobDirs, onHead, sbatch as clusterSbatch, sharedTmp, srun as clusterSrun,
  waitNoJobs as clusterWait, type Cluster,
} from './cluster.js';

export { CTR_SRUN, PLUGIN, STAGE_DIR };

export interface Slurm {
  cluster: Cluster;
  conf: string;
  /** The node the steps run on. */
  node: string;
  /** The environment every Slurm command needs. */
  env: Record<string, string>;
  /** nsenter's arguments that put a command on the submit host. */
  head: string[];
  /** The cluster is shared by the suite's files: nothing to stop here. */
  stop(): Promise<void>;
}

/** The cluster (brought up if it is not), seen as its first node. */
export async function startSlurm(): Promise<Slurm> {
  const c = await cluster();
  return { cluster: c, conf: c.conf, node: c.nodes[0], env: c.env, head: onHead(c), async stop() {} };
}

/** A scratch directory of the test user that the nodes see (the submit host's cwd). */
export function workDir(s: Slurm, prefix = 'ctr-slurm-work-'): Promise<string> {
  return sharedTmp(s.cluster, prefix);
}

/** srun ARGS as the test user. */
export function srun(s: Slurm, args: readonly string[], opts: Options = {}) {
  return clusterSrun(s.cluster, args, opts);
}

/** ctr-srun ARGS (the wrapper) as the test user. */
export function ctrSrun(s: Slurm, args: readonly string[], opts: Options = {}) {
  return clusterCtrSrun(s.cluster, args, opts);
}

/** sbatch --wait ARGS as the test user: returns when the job has ended. */
export function sbatch(s: Slurm, args: readonly string[], opts: Options = {}) {
  return clusterSbatch(s.cluster, args, opts);
}

export function waitNoJobs(s: Slurm, ms = 30000): Promise<void> {
  return clusterWait(s.cluster, ms);
}

/** Processes started through this Slurm that are still alive, on any node. */
export function slurmLeftovers(s: Slurm, graceMs = 3000): Promise<string[]> {
  return clusterLeftovers(s.cluster, graceMs);
}

/** The plugin's node-local job directories of the test user, on any node. */
export function jobDirs(s: Slurm, prefix = 'ctr.'): Promise<string[]> {
  return clusterJobDirs(s.cluster, prefix);
}

/** The image files this Slurm's containers are mounted from, as the node sees them. */
export async function imagesInUse(s: Slurm, ms = 20000): Promise<string[]> {
  return (await clusterImages(s.cluster, 1, ms)).map((f) => f.slice(f.indexOf(':') + 1));
}
