// The options shared by `ctr exec`, `run`, `shell` and `plan`, as the planner sees them.
import type { FakerootMode } from './fakeroot.js';
import type { SubIds } from './words.js';

export type Action = 'exec' | 'run' | 'shell';

export interface LaunchOptions {
  bind: string[];
  /** The site config's binds (cli/site.ts): skipped where the source is missing. */
  siteBind?: string[];
  writableTmpfs: boolean;
  cleanenv: boolean;
  env: string[];
  envFile?: string;
  pwd?: string;
  home?: string;
  noHome: boolean;
  contain: boolean;
  fakeroot: boolean;
  /** How --fakeroot makes many ids (plan/fakeroot.ts); default auto. */
  fakerootMode?: FakerootMode;
  /** Bytes the --writable-tmpfs layer may hold; default DEFAULT_TMPFS_SIZE. */
  writableTmpfsSize?: number;
  debug: boolean;
  /** Share one container among the ranks of a job step on a node (native/launch_join.c). */
  join?: 'auto' | 'on' | 'off';
  joinTag?: string;
  joinCount?: number;
  /**
   * `ctr plan --for-nodes`: the plan is made on a submit host and run on compute nodes,
   * so a bind source (or the working directory) missing here may exist there: it is
   * planned as given, and each node's launcher checks it.
   */
  forNodes?: boolean;
}

/** What the planner needs to know about the host and the user; gathered by host/facts.ts. */
export interface HostFacts {
  uid: number;
  gid: number;
  user: string;
  group: string;
  gecos: string;
  home: string;
  cwd: string;
  /** squashfuse_ll, for a launcher without its own FUSE server. */
  squashfuse?: string;
  /** Absolute paths, symlinks resolved, of the bind sources, keyed by what the user typed. */
  realpaths: Map<string, string>;
  /** Which of the optional host files exist (e.g. /etc/localtime). */
  exists: Set<string>;
  /** Environment lines from --env-file, already read. */
  envFileLines: string[];
  /** With --fakeroot: the user's subordinate ids, or why there are none (host/subids.ts). */
  subids?: { ok: true; subids: SubIds } | { ok: false; why: string };
}
