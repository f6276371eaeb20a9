// The options shared by `ctr exec`, `run`, `shell` and `plan`, as the planner sees them.
import type { CdiSelection, HookPolicy } from '../gpu/cdi-resolve.js';
import type { GpuDriver } from '../gpu/driver.js';
import type { CgroupLayout } from './cgroups.js';
import type { FakerootMode } from './fakeroot.js';
import type { Caps } from './caps.js';
import type { ResourceLimits } from './resources.js';
import type { SubIds } from './words.js';

export type Action = 'exec' | 'run' | 'shell';

export interface LaunchOptions {
  bind: string[];
  /** The site config's binds (cli/site.ts): skipped where the source is missing. */
  siteBind?: string[];
  writableTmpfs: boolean;
  cleanenv: boolean;
  env: string[];
  /** --env-file, repeatable: read in order, --env after them. */
  envFiles?: string[];
  /** --app NAME: a SCIF app of the image (image/scif.ts). */
  app?: string;
  /** --no-eval: --env values and APPTAINERENV_* are set as they are. */
  noEval?: boolean;
  /** --no-env NAME[,NAME...], repeatable: host variables not passed. */
  noEnv?: string[];
  /** --no-mount: default mounts left out (home, tmp, cwd, bind-paths, hostfs, or a destination). */
  noMount?: string[];
  /** --workdir W: --contain's /tmp and /var/tmp, and --scratch dirs, kept in W on the host. */
  workdir?: string;
  /** --no-umask: the command starts with umask 0022, not the caller's. */
  noUmask?: boolean;
  /** --scratch DIR: an empty tmpfs at each DIR. */
  scratch?: string[];
  /** Plain HTTP to the registry, for an IMAGE given as docker://REF. */
  noHttps?: boolean;
  /** shell -s PROGRAM: the interactive shell to run. */
  shell?: string;
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
  /** With joinTag: the container is an instance (ctr instance start: launch_join.c). */
  joinInstance?: boolean;
  /** With joinInstance: the descriptor the init's pid is written to once joined (the start's). */
  readyFd?: number;
  joinCount?: number;
  /** Keep the shared container until this directory is removed (Slurm: a named container). */
  joinKeep?: string;
  /** --device VENDOR/CLASS=NAME: CDI devices. */
  device?: string[];
  /** --nv, --nvccli, --rocm: the host's GPU driver. */
  nv?: boolean;
  nvccli?: boolean;
  rocm?: boolean;
  /** The site config's GPU and CDI settings (cli/site.ts). */
  gpuSite?: GpuSite;
  /** Resource limits from the flags (--memory, --cpus...: plan/resources.ts). */
  resources?: ResourceLimits;
  /** --apply-cgroups: Apptainer's TOML of limits (read by host/facts.ts). */
  applyCgroups?: string;
  /** The site config's cgroup-root: where delegated cgroups are (host/cgroups.ts). */
  cgroupRoot?: string;
  /** A network namespace of the container's own (--net); NETWORK says what is in it. */
  net?: boolean;
  network?: Network;
  /** A UTS namespace with this host name (--hostname). */
  hostname?: string;
  /** A container `ctr checkpoint` can dump (--checkpointable; native/launch_criu.c). */
  checkpointable?: boolean;
  /** ctr restore: the command is the host's CRIU, run with the container's capabilities. */
  criu?: { interp: string; libraryPath: string; criu: string };
  /** --overlay: a writable layer kept across runs (a directory or an ext3 image file),
   * and read-only SquashFS layers (FILE:ro), the last on top. */
  overlay?: string[];
  /** --writable: a directory image read-write (the user's own: no mount point made in it). */
  writable?: boolean;
  /** --runscript-timeout: how long the image's env scripts may take, in ms. */
  runscriptTimeoutMs?: number;
  /** --drop-caps, --add-caps, --no-privs (plan/caps.ts). */
  caps?: Caps;
  /**
   * `ctr plan --for-nodes`: the plan is made on a submit host and run on compute nodes,
   * so a bind source (or the working directory) missing here may exist there: it is
   * planned as given, and each node's launcher checks it.
   */
  forNodes?: boolean;
}

export interface GpuSite {
  /** CDI spec directories, in rising priority; default /etc/cdi, /var/run/cdi. */
  cdiDirs?: string[];
  cdiHooks?: HookPolicy;
  /** Name lists a site adds to the shipped ones. */
  nvLists: string[];
  rocmLists: string[];
  /** Driver prefixes searched instead of the defaults. */
  nvRoots?: string[];
  rocmRoots?: string[];
}

export type Overlay = { kind: 'dir' | 'image'; path: string } | { kind: 'lower'; path: string; offset: number };

/** What --net gives: only loopback (none), or outbound access through slirp4netns. */
export const NETWORKS = ['none', 'slirp4netns'] as const;
export type Network = (typeof NETWORKS)[number];

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
  /** --overlay: what each path is (host/facts.ts looked), symlinks resolved, in order. */
  overlays?: Overlay[];
  /** Each image bind's SquashFS offset in its file, in -B order (host/facts.ts). */
  imageBindOffsets?: number[];
  /** With --writable-tmpfs on a directory: its owner (not the user: fuse-overlayfs, see compose.ts). */
  imageUid?: number;
  /** With --writable on a directory: whether the user may write to it, and its owner. */
  imageWritable?: { ok: boolean; uid: number };
  /** Helper programs, when the options need them: absolute paths, undefined if missing. */
  slirp4netns?: string;
  fuse2fs?: string;
  fuseOverlayfs?: string;
  /** With --fakeroot: the user's subordinate ids, or why there are none (host/subids.ts). */
  subids?: { ok: true; subids: SubIds } | { ok: false; why: string };
  /** With --nv/--rocm/--device: what was found (host/gpu.ts). */
  gpu?: GpuFacts;
  /** With resource limits: the --apply-cgroups file's, the delegated cgroups, and
   * "MAJOR:MINOR" of each device path the limits name. */
  fileLimits?: ResourceLimits;
  cgroups?: CgroupLayout;
  devices?: Map<string, string>;
}

export interface GpuFacts {
  drivers: GpuDriver[];
  cdi?: CdiSelection;
  /** The host's NVIDIA_VISIBLE_DEVICES. */
  nvidiaVisible?: string;
}
