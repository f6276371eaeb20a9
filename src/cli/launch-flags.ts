// Flags shared by exec, run, shell and plan: one table, used both by yargs (help,
// validation) and by splitAtImage, which finds where ctr's flags end and the command's
// begin (`ctr exec -B /data img ls -la`: -la belongs to ls).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolve } from 'node:path';
import type { Options } from 'yargs';
import { CtrError } from '../errors.js';
import { NETWORKS, type LaunchOptions, type Network } from '../plan/options.js';
import { FAKEROOT_MODES, type FakerootMode } from '../plan/fakeroot.js';
import { parseSize } from '../plan/size.js';
import { hasLimits, limitsFromFlags } from '../plan/resources.js';
import { parseDuration } from '../plan/duration.js';
import { capabilityOptions, securityOptions } from '../plan/caps.js';

export const LAUNCH_FLAGS = {
  bind: { alias: 'B', type: 'string', array: true, default: [], describe: 'bind SRC[:DST[:ro|rw]] (repeatable, comma lists)' },
  'writable-tmpfs': { type: 'boolean', default: false, describe: 'writable tmpfs overlay over the image; changes are discarded' },
  cleanenv: { alias: 'e', type: 'boolean', default: false, describe: 'do not pass the host environment' },
  env: { type: 'string', array: true, default: [], describe: 'set NAME=VALUE inside (repeatable, comma lists)' },
  'env-file': { type: 'string', array: true, default: [], describe: 'file of shell assignments to set inside (repeatable)' },
  'no-env': { type: 'string', array: true, default: [], describe: 'host variables NAME[,NAME...] not to pass (repeatable)' },
  app: { type: 'string', describe: 'a SCIF app of the image: its environment, and for run and test its runscript and test (/scif/apps/NAME)' },
  'no-eval': { type: 'boolean', default: false, describe: 'set --env and APPTAINERENV_* values as they are, without shell evaluation' },
  pwd: { alias: 'cwd', type: 'string', describe: 'initial working directory inside' },
  home: { alias: 'H', type: 'string', describe: 'home directory SRC[:DST] to bind' },
  'no-home': { type: 'boolean', default: false, describe: 'do not bind the home directory' },
  contain: { alias: 'c', type: 'boolean', default: false, describe: 'minimal /dev, fresh /tmp and home, no cwd bind' },
  fakeroot: { alias: 'f', type: 'boolean', default: false, describe: 'be root (uid 0) inside the container' },
  'fakeroot-mode': { type: 'string', choices: [...FAKEROOT_MODES], describe: 'how --fakeroot makes many ids: subuid (newuidmap), seccomp (faked calls) or auto' },
  'writable-tmpfs-size': { type: 'string', describe: 'room for changes with --writable-tmpfs (e.g. 64M, 1G; default 64M)' },
  join: { type: 'boolean', default: false, describe: 'always share one container among the ranks of a job step on a node' },
  'no-join': { type: 'boolean', default: false, describe: 'never share (default: share when Slurm, Open MPI or MPICH launched us)' },
  'join-tag': { type: 'string', describe: 'name of the job step, for launchers ctr does not recognise' },
  'join-count': { type: 'string', describe: 'number of ranks expected on this node' },
  'join-keep': { type: 'string', describe: 'keep the shared container after its ranks leave, until this directory is removed (named containers under Slurm)' },
  debug: { type: 'boolean', default: false, describe: 'print what the launcher does' },
  nv: { type: 'boolean', default: false, describe: "bind the host's NVIDIA driver (libraries first on LD_LIBRARY_PATH, nvidia-smi, /dev/nvidia*)" },
  nvccli: { type: 'boolean', default: false, describe: 'like --nv, with the files nvidia-container-cli lists' },
  rocm: { type: 'boolean', default: false, describe: "bind the host's ROCm driver (libraries, rocm-smi, /dev/kfd, /dev/dri)" },
  device: { type: 'string', array: true, default: [], describe: 'a CDI device VENDOR/CLASS=NAME (or =all) from /etc/cdi, /var/run/cdi (repeatable)' },
  // Resource limits (Apptainer's names, Docker's meanings), in a cgroup delegated to the user.
  memory: { type: 'string', describe: 'memory limit (e.g. 64M, 2G; a plain number is bytes)' },
  'memory-swap': { type: 'string', describe: 'memory plus swap limit (-1: unlimited swap)' },
  'memory-reservation': { type: 'string', describe: 'memory soft limit' },
  cpus: { type: 'string', describe: 'CPU time limit in CPUs, e.g. 0.5 (CFS quota over a 100 ms period)' },
  'cpu-shares': { type: 'string', describe: 'relative CPU weight (default 1024)' },
  'cpuset-cpus': { type: 'string', describe: 'CPUs the container may run on, e.g. 0-3,8' },
  'cpuset-mems': { type: 'string', describe: 'memory nodes the container may use' },
  'pids-limit': { type: 'string', describe: 'most processes and threads at once (-1: unlimited)' },
  'blkio-weight': { type: 'string', describe: 'relative block I/O weight, 10 to 1000' },
  'device-read-bps': { type: 'string', array: true, describe: 'read rate limit DEVICE:RATE, e.g. /dev/sda:10mb (repeatable)' },
  'device-write-bps': { type: 'string', array: true, describe: 'write rate limit DEVICE:RATE (repeatable)' },
  'device-read-iops': { type: 'string', array: true, describe: 'read operations per second DEVICE:N (repeatable)' },
  'device-write-iops': { type: 'string', array: true, describe: 'write operations per second DEVICE:N (repeatable)' },
  'apply-cgroups': { type: 'string', describe: "limits from a TOML file (Apptainer's cgroups.toml: OCI LinuxResources)" },
  shell: { alias: 's', type: 'string', describe: 'shell: the program to run instead of the image\'s bash or sh' },
  containall: { alias: 'C', type: 'boolean', default: false, describe: '--contain and --cleanenv' },
  'no-mount': { type: 'string', array: true, default: [], describe: 'default mounts to leave out: home, tmp, cwd, bind-paths, hostfs, or a destination such as /etc/hosts' },
  scratch: { alias: 'S', type: 'string', array: true, default: [], describe: 'an empty writable directory (a tmpfs) at DIR, repeatable' },
  'no-https': { type: 'boolean', default: false, describe: 'plain HTTP to the registry, for an IMAGE given as docker://REF' },
  workdir: { alias: 'W', type: 'string', describe: 'host directory for --contain\'s /tmp and /var/tmp and for --scratch (W/tmp, W/var_tmp, W/scratch)' },
  'no-umask': { type: 'boolean', default: false, describe: 'start the command with umask 0022 instead of the caller\'s' },
  pid: { alias: 'p', type: 'boolean', default: false, describe: 'accepted for Apptainer: ctr always gives the command a PID namespace (not for job ranks)' },
  'no-init': { type: 'boolean', default: false, describe: 'accepted for Apptainer: ctr\'s own init always reaps and stops what the command leaves' },
  net: { type: 'boolean', default: false, describe: 'a network namespace of the container\'s own: only loopback, unless --network says more' },
  network: { type: 'string', choices: [...NETWORKS], describe: 'with --net (implied): none (loopback only, the default) or slirp4netns (outbound access, no host interface)' },
  hostname: { type: 'string', describe: 'host name inside (a UTS namespace of the container\'s own)' },
  checkpointable: { type: 'boolean', default: false, describe: 'a container ctr checkpoint can dump with CRIU: the command in a session of its own, without a terminal to type into' },
  overlay: { type: 'string', array: true, describe: 'keep changes across runs in DIR or an ext3 image (ctr overlay create); FILE:ro adds a read-only SquashFS layer (repeatable)' },
  writable: { alias: 'w', type: 'boolean', default: false, describe: 'a directory image read-write: changes land in it (a SIF: keep changes in --overlay instead)' },
  compat: { type: 'boolean', default: false, describe: "Apptainer's OCI/Docker compatibility: --containall --no-init --no-umask --no-eval --writable-tmpfs" },
  underlay: { type: 'boolean', default: false, describe: 'accepted for Apptainer: ctr always makes missing bind destinations in a layer of its own, leaving the image as it is' },
  'runscript-timeout': { type: 'string', describe: "how long the image's environment scripts may run before the command starts, e.g. 30s, 2m (default: no limit)" },
  'drop-caps': { type: 'string', array: true, default: [], describe: 'capabilities to drop, e.g. CAP_NET_RAW,CAP_CHOWN (all sets, bounding too)' },
  'add-caps': { type: 'string', array: true, default: [], describe: "capabilities the command holds even when not root inside (the container's user namespace only)" },
  'no-privs': { type: 'boolean', default: false, describe: 'drop every capability, root\'s under --fakeroot too' },
  'keep-privs': { type: 'boolean', default: false, describe: 'refused: there is no host root privilege to keep rootless' },
  security: { type: 'string', array: true, default: [], describe: 'refused rootless: seccomp:, apparmor:, selinux:, uid:, gid: (ctr installs its own seccomp filter)' },
  'no-plan-cache': { type: 'boolean', default: false, describe: 'plan anew, and keep no plan for later launches (also CTR_PLAN_CACHE=0)' },
} satisfies Record<string, Options>;

export function toLaunchOptions(given: Record<string, unknown>): LaunchOptions {
  // --compat: Apptainer's list (cmd/internal/cli/actions.go), as if each were given.
  const a = given.compat ? { ...given, containall: true, 'writable-tmpfs': true, 'no-init': true, 'no-umask': true, 'no-eval': true } : given;
  const str = (k: string) => a[k] as string | undefined;
  const list = (k: string) => ((a[k] as string[] | undefined) ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  const resources = limitsFromFlags({
    memory: str('memory'), memorySwap: str('memory-swap'), memoryReservation: str('memory-reservation'),
    cpus: str('cpus'), cpuShares: str('cpu-shares'), cpusetCpus: str('cpuset-cpus'), cpusetMems: str('cpuset-mems'),
    pidsLimit: str('pids-limit'), blkioWeight: str('blkio-weight'),
    deviceReadBps: a['device-read-bps'] as string[] | undefined, deviceWriteBps: a['device-write-bps'] as string[] | undefined,
    deviceReadIops: a['device-read-iops'] as string[] | undefined, deviceWriteIops: a['device-write-iops'] as string[] | undefined,
  });
  return {
    ...(hasLimits(resources) ? { resources } : {}),
    ...(a['apply-cgroups'] !== undefined ? { applyCgroups: String(a['apply-cgroups']) } : {}),
    bind: (a.bind as string[]) ?? [],
    writableTmpfs: Boolean(a['writable-tmpfs']),
    cleanenv: Boolean(a.cleanenv) || Boolean(a.containall),
    env: (a.env as string[]) ?? [],
    envFiles: (a['env-file'] as string[]) ?? [],
    noEval: Boolean(a['no-eval']),
    ...(a.app !== undefined ? { app: String(a.app) } : {}),
    noEnv: (a['no-env'] as string[]) ?? [],
    noMount: ((a['no-mount'] as string[]) ?? []).flatMap((v) => v.split(',')).filter(Boolean),
    scratch: ((a.scratch as string[]) ?? []).flatMap((v) => v.split(',')).filter(Boolean),
    ...(a.shell !== undefined ? { shell: String(a.shell) } : {}),
    noHttps: Boolean(a['no-https']),
    ...(a.workdir !== undefined ? { workdir: resolve(String(a.workdir)) } : {}),
    noUmask: Boolean(a['no-umask']),
    pwd: a.pwd as string | undefined,
    home: a.home as string | undefined,
    noHome: Boolean(a['no-home']),
    contain: Boolean(a.contain) || Boolean(a.containall),
    fakeroot: Boolean(a.fakeroot),
    ...(a['fakeroot-mode'] !== undefined ? { fakerootMode: a['fakeroot-mode'] as FakerootMode } : {}),
    ...(a['writable-tmpfs-size'] !== undefined ? { writableTmpfsSize: parseSize(String(a['writable-tmpfs-size']), '--writable-tmpfs-size') } : {}),
    debug: Boolean(a.debug),
    join: a['no-join'] ? 'off' : a.join || a['join-tag'] ? 'on' : 'auto',
    joinTag: a['join-tag'] as string | undefined,
    joinCount: a['join-count'] === undefined ? undefined : Number(a['join-count']),
    ...(a['join-keep'] !== undefined ? { joinKeep: String(a['join-keep']) } : {}),
    nv: Boolean(a.nv),
    nvccli: Boolean(a.nvccli),
    rocm: Boolean(a.rocm),
    device: ((a.device as string[]) ?? []).flatMap((d) => d.split(',')).filter((d) => d !== ''),
    ...(a.net ? { net: true } : {}),
    ...(a.network !== undefined ? { network: a.network as Network } : {}),
    ...(a.hostname !== undefined ? { hostname: String(a.hostname) } : {}),
    ...(a.checkpointable ? { checkpointable: true } : {}),
    ...((a.overlay as string[] | undefined)?.length ? { overlay: a.overlay as string[] } : {}),
    ...(a.writable ? { writable: true } : {}),
    ...(a['runscript-timeout'] !== undefined ? { runscriptTimeoutMs: parseDuration(String(a['runscript-timeout']), '--runscript-timeout') } : {}),
    ...capabilityOptions(list('drop-caps'), list('add-caps'), Boolean(a['no-privs']), Boolean(a['keep-privs'])),
    ...securityOptions(list('security')),
  };
}

/** Names (long and short) of the flags that take a value, for splitAtImage. */
export function valueFlags(table: Record<string, Options>): Set<string> {
  const out = new Set<string>();
  for (const [name, o] of Object.entries(table)) {
    if (o.type === 'boolean') continue;
    out.add(`--${name}`);
    for (const a of [o.alias ?? []].flat()) out.add(a.length === 1 ? `-${a}` : `--${a}`);
  }
  return out;
}

/**
 * Split `[flags] IMAGE [ARG...]` at IMAGE: returns the flags part (for yargs) and the
 * rest, untouched. A `--` also ends the flags.
 */
export function splitAtImage(args: readonly string[], takesValue: Set<string>): { flags: string[]; image?: string; rest: string[] } {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return { flags: args.slice(0, i), image: args[i + 1], rest: args.slice(i + 2) };
    if (!a.startsWith('-') || a === '-') return { flags: args.slice(0, i), image: a, rest: args.slice(i + 1) };
    if (takesValue.has(a)) i++;
  }
  return { flags: [...args], rest: [] };
}

/**
 * The per-launch fast path: parse the flags with node:util's parseArgs, driven by the
 * same table as yargs. Loading yargs costs ~80 ms, as much as Node's own start-up, and
 * `ctr exec` is started once per rank; yargs stays for help and the other commands.
 */
export function parseFlagsFast(table: Record<string, Options>, flags: string[]): Record<string, unknown> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  const longAliases: Array<[string, string]> = [];
  for (const [name, o] of Object.entries(table)) {
    const short = [o.alias ?? []].flat().find((a) => a.length === 1);
    const type = o.type === 'boolean' ? 'boolean' as const : 'string' as const;
    options[name] = { type, ...(short ? { short } : {}), ...(o.array ? { multiple: true } : {}) };
    // Apptainer's other names for a flag (--cwd for --pwd): the same option under it.
    for (const a of [o.alias ?? []].flat().filter((x) => x.length > 1)) {
      options[a] = { type, ...(o.array ? { multiple: true } : {}) };
      longAliases.push([a, name]);
    }
  }
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: flags, options, strict: true, allowPositionals: false }));
    for (const [a, name] of longAliases) {
      if (values[a] === undefined) continue;
      values[name] = Array.isArray(values[a]) ? [...((values[name] as unknown[]) ?? []), ...(values[a] as unknown[])] : values[a];
      delete values[a];
    }
  } catch (err) {
    const m = /^Unknown option '([^']+)'/.exec((err as Error).message);
    if (m) throw new CtrError(`unknown option ${m[1]}`, '', { hint: 'see ctr --help' });
    throw new CtrError((err as Error).message.split('\n')[0].replace(/\.$/, ''), '', { hint: 'see ctr --help' });
  }
  for (const [name, o] of Object.entries(table)) {
    if (values[name] === undefined && o.default !== undefined) values[name] = o.default;
    if (o.choices && values[name] !== undefined && !(o.choices as unknown[]).includes(values[name])) {
      throw new CtrError(`invalid value for --${name}`, `${JSON.stringify(values[name])} is not one of ${(o.choices as unknown[]).join(', ')}`);
    }
    if (o.demandOption && values[name] === undefined) throw new CtrError(`missing required option --${name}`, '', { hint: 'see ctr --help' });
  }
  return values;
}
