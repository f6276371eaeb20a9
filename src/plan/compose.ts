// Compose a launch plan: the words ctr-launch carries out, written by PlanWriter
// (words.ts; native/plan_words.def is the vocabulary). Pure: no file system, no processes; everything it needs
// about the host comes in HostFacts, so the same inputs always give the same plan.
import { CtrError } from '../errors.js';
import type { ImageRef } from '../image/open.js';
import { parseBinds, parseHome, normalize } from './binds.js';
import { composeEnv, splitEnvList, type EnvPolicy } from './env.js';
import type { Action, HostFacts, LaunchOptions } from './options.js';
import { APT_NO_SANDBOX, chooseFakeroot, writeFakeroot, type FakerootChoice } from './fakeroot.js';
import { PlanWriter } from './words.js';

/** The --writable-tmpfs layer's size unless given: Apptainer's default (sessiondir max size). */
export const DEFAULT_TMPFS_SIZE = 64 << 20;

/** Host files bound read-only when present, as Apptainer does. */
export const HOST_FILES = ['/etc/hosts', '/etc/resolv.conf', '/etc/localtime'];
/**
 * Directories a job launcher makes per step on the node and names in the ranks'
 * environment, bound where they are when set (the launcher reads them at launch: the
 * plan may be made on the submit host). Slurm's mpi/pmix puts PMIx's shared-memory
 * dstore under its spool, e.g. /var/spool/slurmd/pmix.JOB.STEP/: a rank that can't see
 * it prints a PMIX ERROR and falls back to a copy per rank.
 */
export const LAUNCHER_DIR_VARS = ['PMIX_SERVER_TMPDIR', 'PMIX_DSTORE_ESH_BASE_PATH', 'PMIX_DSTORE_21_BASE_PATH'];
/** --contain: device nodes bound into a fresh /dev. */
const CONTAIN_DEVICES = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty'];

type Mount =
  | { kind: 'bind'; src: string; dst: string; ro: boolean; optional?: boolean }
  | { kind: 'tmpfs'; dst: string; mode: string };

export interface LaunchPlan {
  args: string[];
  /** Where the command starts inside the container. */
  pwd: string;
  mounts: Mount[];
  env: EnvPolicy;
  /** With --fakeroot: which way, for --debug. */
  fakeroot?: FakerootChoice;
}

export function composePlan(action: Action, image: ImageRef, opts: LaunchOptions, host: HostFacts): LaunchPlan {
  const real = (p: string) => host.realpaths.get(p) ?? p;
  const home = homeMount(opts, host, real);
  const mounts: Mount[] = [
    { kind: 'bind', src: '/proc', dst: '/proc', ro: false },
    { kind: 'bind', src: '/sys', dst: '/sys', ro: false },
    ...devMounts(opts.contain),
    ...tmpMounts(opts.contain, real),
    ...HOST_FILES.filter((f) => host.exists.has(f)).map((f): Mount => ({ kind: 'bind', src: real(f), dst: f, ro: true, optional: true })),
  ];
  if (home.mount) mounts.push(home.mount);
  const pwd = opts.pwd ? normalize(opts.pwd) : opts.contain ? home.dst : host.cwd;
  // For other nodes the working directory may be missing on some (the Slurm plugin then
  // starts the tasks where Slurm does): optional there.
  if (!opts.contain && !opts.pwd && host.cwd !== '/' && !coveredBy(mounts, host.cwd)) {
    mounts.push({ kind: 'bind', src: host.cwd, dst: host.cwd, ro: false, ...(opts.forNodes ? { optional: true } : {}) });
  }
  // The site config's binds (Apptainer's `bind path`): skipped where missing on this node
  // (or, planned for other nodes, left for each node's launcher to skip).
  for (const b of parseBinds(opts.siteBind ?? [])) {
    if (host.exists.has(b.src)) mounts.push({ kind: 'bind', src: real(b.src), dst: b.dst, ro: b.ro });
    else if (opts.forNodes) mounts.push({ kind: 'bind', src: b.src, dst: b.dst, ro: b.ro, optional: true });
  }
  for (const b of parseBinds(opts.bind)) {
    mounts.push({ kind: 'bind', src: real(b.src), dst: b.dst, ro: b.ro });
  }

  const env = composeEnv({
    cleanenv: opts.cleanenv,
    overrides: [...host.envFileLines, ...splitEnvList(opts.env)],
    home: home.dst,
    pwd,
    imagePath: image.path,
    user: opts.fakeroot ? 'root' : host.user,
    shell: action === 'shell',
  });

  const w = new PlanWriter();
  if (image.kind === 'dir') w.imageDir(image.path);
  else {
    w.image(image.path, image.offset);
    if (host.squashfuse) w.squashfuse(host.squashfuse);
  }
  let fakeroot: FakerootChoice | undefined;
  if (opts.fakeroot) {
    fakeroot = chooseFakeroot(opts.fakerootMode ?? 'auto', host.subids ?? { ok: false, why: 'not looked up' }, host.uid);
    writeFakeroot(w, fakeroot);
  }
  if (opts.writableTmpfs) w.writableTmpfs().writableTmpfsSize(opts.writableTmpfsSize ?? DEFAULT_TMPFS_SIZE);
  // Nothing outlives the command (the launcher leaves it out for ranks under Slurm/MPI).
  w.pidNs();
  for (const m of mounts) {
    if (m.kind === 'tmpfs') w.tmpfs(m.dst, m.mode);
    else w.bind(m.src, m.dst, m.ro ? 'ro' : 'rw', { optional: m.optional });
  }
  for (const name of LAUNCHER_DIR_VARS) w.bindEnv(name, 'rw', { optional: true });
  if (!opts.fakeroot) {
    w.passwdLine(`${host.user}:x:${host.uid}:${host.gid}:${host.gecos}:${home.dst}:/bin/sh`);
    w.groupLine(`${host.group}:x:${host.gid}:${host.user}`);
  }
  if (fakeroot?.mode === 'seccomp') w.file(APT_NO_SANDBOX.path, APT_NO_SANDBOX.content);
  w.chdir(pwd);
  if (opts.contain) w.newKeyring();
  if (env.clean) w.clearenv();
  for (const p of env.prefixes) w.envPrefix(p);
  for (const e of env.ops) {
    if (e.op === 'keep') w.keepenv(e.name);
    else if (e.op === 'unset') w.unsetenv(e.name);
    else if (e.op === 'set') w.setenv(e.name, e.value);
    else w.envOverride(e.name, e.value);
  }
  w.action(action);
  w.join(opts.join ?? 'auto');
  if (opts.joinTag) w.joinTag(opts.joinTag);
  if (opts.joinCount !== undefined) {
    if (!Number.isInteger(opts.joinCount) || opts.joinCount < 1) throw new CtrError('--join-count', `${opts.joinCount} is not a positive number`);
    w.joinCount(opts.joinCount);
  }
  if (opts.debug) w.debug();
  const args = w.words();
  return { args, pwd, mounts, env, ...(fakeroot ? { fakeroot } : {}) };
}

function homeMount(opts: LaunchOptions, host: HostFacts, real: (p: string) => string): { dst: string; mount?: Mount } {
  const spec = opts.home ? parseHome(opts.home) : undefined;
  const dst = spec?.dst ?? (opts.fakeroot ? '/root' : host.home);
  if (opts.noHome) return { dst };
  if (spec) return { dst, mount: { kind: 'bind', src: real(spec.src), dst, ro: false } };
  if (opts.contain) return { dst, mount: { kind: 'tmpfs', dst, mode: '0755' } };
  // A home directory that doesn't exist on this host (a service account, say) is skipped,
  // as Apptainer does, rather than failing the launch.
  return { dst, mount: { kind: 'bind', src: real(host.home), dst, ro: false, optional: !host.exists.has(host.home) } };
}

function devMounts(contain: boolean): Mount[] {
  if (!contain) return [{ kind: 'bind', src: '/dev', dst: '/dev', ro: false }];
  return [
    { kind: 'tmpfs', dst: '/dev', mode: '0755' },
    ...CONTAIN_DEVICES.map((d): Mount => ({ kind: 'bind', src: d, dst: d, ro: false, optional: true })),
    { kind: 'bind', src: '/dev/pts', dst: '/dev/pts', ro: false, optional: true },
    { kind: 'tmpfs', dst: '/dev/shm', mode: '1777' },
  ];
}

function tmpMounts(contain: boolean, real: (p: string) => string): Mount[] {
  return ['/tmp', '/var/tmp'].map((d): Mount =>
    contain ? { kind: 'tmpfs', dst: d, mode: '1777' } : { kind: 'bind', src: real(d), dst: d, ro: false, optional: true });
}

/** Is PATH visible at the same place through a bind of the same host directory? */
function coveredBy(mounts: readonly Mount[], path: string): boolean {
  return mounts.some((m) => m.kind === 'bind' && m.src === m.dst && m.src !== '/' && (path === m.src || path.startsWith(m.src + '/')));
}
