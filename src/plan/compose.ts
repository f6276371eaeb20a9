// Compose a launch plan: the words ctr-launch carries out, written by PlanWriter
// (words.ts; native/plan_words.def is the vocabulary). Pure: no file system, no processes; everything it needs
// about the host comes in HostFacts, so the same inputs always give the same plan.
import { CtrError } from '../errors.js';
import type { ImageRef } from '../image/open.js';
import { parseBinds, parseHome, normalize } from './binds.js';
import { composeEnv, splitEnvList, type EnvPolicy } from './env.js';
import type { Action, HostFacts, LaunchOptions, Overlay } from './options.js';
import { APT_NO_SANDBOX, chooseFakeroot, writeFakeroot, type FakerootChoice } from './fakeroot.js';
import { PlanWriter } from './words.js';
import { APP_NAME, APP_NAME_RULE } from '../image/scif.js';
import { capHex } from './caps.js';
import { cdiEdits, driverEdits, mergeEdits, type DeviceEdits } from './devices.js';
import { planCgroups } from './cgroups.js';
import { hasLimits, mergeLimits, noLimits, type DeviceRate } from './resources.js';

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
/** --contain: device nodes bound into a fresh /dev. /dev/fuse too: FUSE tools and a ctr
 * inside (nesting) mount only in namespaces they own, so it opens nothing of the host's. */
const CONTAIN_DEVICES = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty', '/dev/fuse'];
/** slirp4netns's DNS forwarder: the host's resolv.conf may name a resolver on its loopback. */
const SLIRP_RESOLV_CONF = 'nameserver 10.0.2.3\n';
/** The launcher's limit (MAX_IMAGE_BINDS in native/launch.h). */
const MAX_IMAGE_BINDS = 16;

export type Mount =
  | { kind: 'bind'; src: string; dst: string; ro: boolean; optional?: boolean; user?: boolean }
  | { kind: 'tmpfs'; dst: string; mode: string }
  | { kind: 'image'; src: string; offset: number; subpath: string; dst: string };

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
  const noMount = checkNoMount(opts.noMount ?? []);
  const slirp = opts.network === 'slirp4netns';
  const mounts: Mount[] = ([
    { kind: 'bind', src: '/proc', dst: '/proc', ro: false },
    { kind: 'bind', src: '/sys', dst: '/sys', ro: false },
    ...devMounts(opts.contain),
    ...(noMount.has('tmp') ? [] : tmpMounts(opts.contain, real, opts.workdir)),
    ...HOST_FILES.filter((f) => host.exists.has(f) && !(slirp && f === '/etc/resolv.conf'))
      .map((f): Mount => ({ kind: 'bind', src: real(f), dst: f, ro: true, optional: true })),
  ] as Mount[]).filter((m) => !noMount.has(m.dst));
  if (home.mount && !noMount.has('home')) mounts.push(home.mount);
  const pwd = opts.pwd ? normalize(opts.pwd) : opts.contain ? home.dst : host.cwd;
  // The cwd is bound unless a mount already shows it; a custom --home mounted over the
  // cwd (cwd = $HOME, `--home /other:$HOME`) is what the user asked to see there. For
  // other nodes the working directory may be missing on some (the Slurm plugin then
  // starts the tasks where Slurm does): optional there.
  const underHome = opts.home !== undefined && (host.cwd === home.dst || host.cwd.startsWith(home.dst + '/'));
  if (!opts.contain && !opts.pwd && host.cwd !== '/' && !underHome && !noMount.has('cwd') && !coveredBy(mounts, host.cwd)) {
    mounts.push({ kind: 'bind', src: host.cwd, dst: host.cwd, ro: false, ...(opts.forNodes ? { optional: true } : {}) });
  }
  for (const dir of opts.scratch ?? []) {
    if (!dir.startsWith('/')) throw new CtrError(`--scratch ${dir}`, 'not an absolute path');
    // Kept in --workdir when there is one (as Apptainer keeps it), else a tmpfs.
    if (opts.workdir) mounts.push({ kind: 'bind', src: real(scratchDir(opts.workdir, dir)), dst: normalize(dir), ro: false });
    else mounts.push({ kind: 'tmpfs', dst: normalize(dir), mode: '0755' });
  }
  // The site config's binds (Apptainer's `bind path`): skipped where missing on this node
  // (or, planned for other nodes, left for each node's launcher to skip).
  for (const b of noMount.has('bind-paths') ? [] : parseBinds(opts.siteBind ?? [])) {
    if (b.image) throw new CtrError(`site bind ${b.src}`, 'image binds (image-src=, id=) are for -B only');
    if (host.exists.has(b.src)) mounts.push({ kind: 'bind', src: real(b.src), dst: b.dst, ro: b.ro });
    else if (opts.forNodes) mounts.push({ kind: 'bind', src: b.src, dst: b.dst, ro: b.ro, optional: true });
  }
  // GPUs and CDI devices, before -B (a user's bind can still replace one).
  const dev = deviceEdits(opts, host);
  for (const b of dev.binds) mounts.push({ kind: 'bind', ...b });
  let imageBinds = 0;
  const userBinds = parseBinds(opts.bind);
  if (userBinds.filter((b) => b.image).length > MAX_IMAGE_BINDS) throw new CtrError('-B', `more than ${MAX_IMAGE_BINDS} image binds`);
  for (const b of userBinds) {
    if (b.image) {
      const offset = host.imageBindOffsets?.[imageBinds++];
      if (offset === undefined) throw new Error(`no offset looked up for image bind ${b.src}`);
      mounts.push({ kind: 'image', src: real(b.src), offset, subpath: b.image.src, dst: b.dst });
    } else mounts.push({ kind: 'bind', src: real(b.src), dst: b.dst, ro: b.ro, user: true });
  }

  if (opts.app !== undefined && !APP_NAME.test(opts.app)) throw new CtrError(`--app ${JSON.stringify(opts.app)}`, `not an app name (${APP_NAME_RULE})`);
  const env = composeEnv({
    cleanenv: opts.cleanenv,
    overrides: [...dev.env, ...host.envFileLines, ...splitEnvList(opts.env)],
    home: home.dst,
    pwd,
    imagePath: image.path,
    user: opts.fakeroot ? 'root' : host.user,
    shell: action === 'shell',
    noEval: opts.noEval,
    app: opts.app,
    noEnv: (opts.noEnv ?? []).flatMap((v) => v.split(',')).filter(Boolean),
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
  const overlays = host.overlays ?? [];
  const writable = overlays.filter((o) => o.kind !== 'lower');
  if (writable.length > 1) throw new CtrError('--overlay', 'one writable overlay at most', { hint: 'the others can be read-only SquashFS images: FILE:ro' });
  if (opts.writableTmpfs && writable.length) {
    throw new CtrError('--overlay and --writable-tmpfs', 'one writable layer at most', { hint: 'leave out --writable-tmpfs: the overlay holds the changes' });
  }
  if (opts.writable) {
    checkWritable(image, opts, host, overlays.length > 0);
    w.writable().noMountpoints();
  }
  if (opts.writableTmpfs) w.writableTmpfs().writableTmpfsSize(opts.writableTmpfsSize ?? DEFAULT_TMPFS_SIZE);
  // A directory image of someone else's (root's): kernel overlayfs can't copy up a file
  // whose owner the user namespace doesn't map (EOVERFLOW on the first write), so the
  // layer is fuse-overlayfs, files shown as the user's, where it is installed.
  if (opts.writableTmpfs && image.kind === 'dir' && host.imageUid !== undefined && host.imageUid !== host.uid && host.fuseOverlayfs) {
    w.writableTmpfsFuse(host.fuseOverlayfs);
  }
  for (const o of overlays) if (o.kind === 'lower') w.overlayLower(o.path, o.offset);
  if (writable.length) writeOverlay(w, writable[0], host);
  if (opts.net || opts.network) writeNetwork(w, opts.network ?? 'none', host);
  if (opts.hostname !== undefined) w.hostname(checkHostname(opts.hostname));
  // Nothing outlives the command (the launcher leaves it out for ranks under Slurm/MPI).
  w.pidNs();
  if ((opts.checkpointable || opts.criu) && opts.fakeroot) {
    // Fake root's command is one user namespace further in than the PID namespace's
    // owner, where CRIU could not restore its PIDs (native/launch_criu.c).
    throw new CtrError('--checkpointable with --fakeroot', 'not supported: fake root runs the command in a user namespace of its own, where CRIU cannot restore its PIDs');
  }
  if (opts.checkpointable || opts.criu) w.checkpointable();
  if (opts.criu) w.criu(opts.criu.interp, opts.criu.libraryPath, opts.criu.criu);
  for (const m of mounts) {
    if (m.kind === 'tmpfs') w.tmpfs(m.dst, m.mode);
    else if (m.kind === 'image') w.imageBind(m.src, m.offset, m.subpath, m.dst);
    // --writable makes no mount point in the image: a default mount whose place is
    // missing is skipped (with a warning), a -B one fails, as Apptainer does.
    else w.bind(m.src, m.dst, m.ro ? 'ro' : 'rw', { optional: m.optional || (opts.writable && !m.user) });
  }
  for (const name of LAUNCHER_DIR_VARS) w.bindEnv(name, 'rw', { optional: true });
  if (!opts.fakeroot) {
    w.passwdLine(`${host.user}:x:${host.uid}:${host.gid}:${host.gecos}:${home.dst}:/bin/sh`);
    w.groupLine(`${host.group}:x:${host.gid}:${host.user}`);
  }
  if (fakeroot?.mode === 'seccomp') w.file(APT_NO_SANDBOX.path, APT_NO_SANDBOX.content);
  if (slirp) w.file('/etc/resolv.conf', SLIRP_RESOLV_CONF);
  w.chdir(pwd);
  // Not asked for: where the image lacks it, the launcher warns and starts in /.
  if (!opts.pwd) w.chdirOptional();
  if (opts.contain) w.newKeyring();
  if (env.clean) w.clearenv();
  for (const p of env.prefixes) w.envPrefix(p);
  if (env.clean) for (const name of dev.keep) env.ops.unshift({ op: 'keep', name });
  for (const p of env.dropPrefixes) w.dropEnvPrefix(p);
  if (env.noEval) w.noEval();
  for (const e of env.ops) {
    if (e.op === 'keep') w.keepenv(e.name);
    else if (e.op === 'unset') w.unsetenv(e.name);
    else if (e.op === 'set') w.setenv(e.name, e.value);
    else w.envOverride(e.name, e.value);
  }
  for (const p of dev.prepend) w.envPrepend(p.name, p.value);
  // shell -s PROGRAM: the command is PROGRAM (shellCommand), with the shell's prompt.
  w.action(action === 'shell' && opts.shell ? 'exec' : action);
  w.join(opts.join ?? 'auto');
  if (opts.joinTag) w.joinTag(opts.joinTag);
  if (opts.joinKeep) {
    if (!opts.joinKeep.startsWith('/')) throw new CtrError('--join-keep', `${opts.joinKeep} is not an absolute path`);
    w.joinKeep(opts.joinKeep);
  }
  if (opts.joinInstance) w.joinInstance();
  if (opts.readyFd !== undefined) w.readyFd(opts.readyFd);
  if (opts.joinCount !== undefined) {
    if (!Number.isInteger(opts.joinCount) || opts.joinCount < 1) throw new CtrError('--join-count', `${opts.joinCount} is not a positive number`);
    w.joinCount(opts.joinCount);
  }
  if (opts.noUmask) w.umask('0022');
  if (opts.caps) w.caps(capHex(opts.caps.drop), capHex(opts.caps.add));
  if (opts.runscriptTimeoutMs !== undefined) w.runscriptTimeout(opts.runscriptTimeoutMs);
  if (opts.debug) w.debug();
  const limits = mergeLimits(host.fileLimits ?? noLimits(), opts.resources ?? noLimits());
  if (hasLimits(limits)) planCgroups(w, limits, host.cgroups ?? { ok: false, why: 'not looked up', hint: '' }, deviceNumbers(host));
  const args = w.words();
  return { args, pwd, mounts, env, ...(fakeroot ? { fakeroot } : {}) };
}

/** --writable: only a directory of the user's own, and no other writable layer with it. */
function checkWritable(image: ImageRef, opts: LaunchOptions, host: HostFacts, overlays: boolean): void {
  if (image.kind !== 'dir') {
    throw new CtrError(`--writable ${image.path}`, `a ${image.kind === 'sif' ? 'SIF' : 'SquashFS'} image is read-only (ctr writes into no SIF overlay partition)`,
      { hint: 'keep changes in an overlay (ctr overlay create ov.img; --overlay ov.img), or throw them away: --writable-tmpfs' });
  }
  if (opts.writableTmpfs) {
    throw new CtrError('--writable and --writable-tmpfs', 'one writable layer at most', { hint: 'leave out one of them (--compat implies --writable-tmpfs)' });
  }
  if (overlays) throw new CtrError('--writable and --overlay', 'cannot be used together', { hint: 'the overlay holds the changes: leave out --writable' });
  const wr = host.imageWritable;
  if (wr && !wr.ok) {
    throw new CtrError(`--writable ${image.path}`, `you have no write permission there (it is ${wr.uid === 0 ? 'root' : `uid ${wr.uid}`}'s)`,
      { hint: 'copy it to a directory of your own (cp -a), or keep changes in --writable-tmpfs or --overlay' });
  }
}

function deviceEdits(opts: LaunchOptions, host: HostFacts): DeviceEdits {
  const g = host.gpu;
  if (!g) return mergeEdits([]);
  return mergeEdits([
    ...g.drivers.map((d) => driverEdits(d, opts.contain, g.nvidiaVisible)),
    ...(g.cdi ? [cdiEdits(g.cdi, opts.contain, (p) => host.exists.has(p))] : []),
  ]);
}

function deviceNumbers(host: HostFacts): (d: DeviceRate) => string {
  return (d) => {
    if (typeof d.device !== 'string') return `${d.device.major}:${d.device.minor}`;
    const n = host.devices?.get(d.device);
    if (!n) throw new CtrError(`device ${d.device}`, 'not looked up');
    return n;
  };
}

/** The command line for the plan: shell -s PROGRAM runs PROGRAM. */
export function shellCommand(action: Action, opts: LaunchOptions, command: string[]): string[] {
  return action === 'shell' && opts.shell ? [opts.shell, ...command] : command;
}

/** --no-mount's words, as Apptainer names them; the mounts ctr always needs are refused. */
const NO_MOUNT = ['home', 'tmp', 'cwd', 'bind-paths', 'hostfs'];
function checkNoMount(values: readonly string[]): Set<string> {
  for (const v of values) {
    if (['proc', 'sys', 'dev', 'devpts'].includes(v)) throw new CtrError(`--no-mount ${v}`, 'ctr always mounts /proc, /sys and /dev');
    if (!v.startsWith('/') && !NO_MOUNT.includes(v)) throw new CtrError(`--no-mount ${v}`, `unknown mount (${NO_MOUNT.join(', ')}, or a destination path)`);
  }
  return new Set(values.map((v) => (v.startsWith('/') ? normalize(v) : v)));
}

function homeMount(opts: LaunchOptions, host: HostFacts, real: (p: string) => string): { dst: string; mount?: Mount } {
  const spec = opts.home ? parseHome(opts.home) : undefined;
  const dst = spec?.dst ?? (opts.fakeroot ? '/root' : host.home);
  if (opts.noHome) return { dst };
  // One the user gave is as a -B bind: with --writable, its place must be in the image.
  if (spec) return { dst, mount: { kind: 'bind', src: real(spec.src), dst, ro: false, user: true } };
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

function tmpMounts(contain: boolean, real: (p: string) => string, workdir?: string): Mount[] {
  return ['/tmp', '/var/tmp'].map((d): Mount =>
    contain && workdir ? { kind: 'bind', src: real(`${workdir}/${d === '/tmp' ? 'tmp' : 'var_tmp'}`), dst: d, ro: false }
      : contain ? { kind: 'tmpfs', dst: d, mode: '1777' } : { kind: 'bind', src: real(d), dst: d, ro: false, optional: true });
}

/** --workdir W: where --scratch DIR lives on the host (Apptainer's W/scratch/...). */
function scratchDir(workdir: string, dir: string): string {
  return `${workdir}/scratch/${normalize(dir).slice(1).replace(/\//g, '_')}`;
}

/** The host directories --workdir needs made (host/facts.ts makes them before planning). */
export function workdirPaths(opts: LaunchOptions): string[] {
  if (!opts.workdir) return [];
  return [...(opts.contain ? [`${opts.workdir}/tmp`, `${opts.workdir}/var_tmp`] : []), ...(opts.scratch ?? []).map((d) => scratchDir(opts.workdir!, d))];
}

/** Is PATH visible at the same place through a bind of the same host directory? */
function coveredBy(mounts: readonly Mount[], path: string): boolean {
  return mounts.some((m) => m.kind === 'bind' && m.src === m.dst && m.src !== '/' && (path === m.src || path.startsWith(m.src + '/')));
}

function writeOverlay(w: PlanWriter, o: Overlay, host: HostFacts): void {
  const spec = o.path;
  if (o.kind === 'dir') {
    w.overlayDir(o.path);
    return;
  }
  for (const [tool, path] of [['fuse2fs', host.fuse2fs], ['fuse-overlayfs', host.fuseOverlayfs]]) {
    if (!path) {
      throw new CtrError(`--overlay ${spec}`, `an overlay image needs ${tool}, which is not installed`,
        { hint: 'install fuse2fs and fuse-overlayfs (Debian/Ubuntu packages of those names), or use a directory: --overlay DIR' });
    }
  }
  w.overlayImage(o.path, host.fuse2fs as string, host.fuseOverlayfs as string);
}

function writeNetwork(w: PlanWriter, network: string, host: HostFacts): void {
  w.netNs();
  if (network === 'none') return;
  if (network !== 'slirp4netns') {
    throw new CtrError(`--network ${network}`, 'not a network ctr knows', { hint: 'none (loopback only) or slirp4netns (outbound access)' });
  }
  if (!host.slirp4netns) {
    throw new CtrError('--network slirp4netns', 'slirp4netns is not installed', { hint: 'install slirp4netns (the Debian/Ubuntu/RHEL package of that name), or use --network none' });
  }
  w.slirp4netns(host.slirp4netns);
}

/** What the kernel takes (at most 64 bytes) and resolvers accept; the launcher checks again. */
function checkHostname(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(name)) {
    throw new CtrError(`--hostname ${JSON.stringify(name)}`, 'not a host name (1 to 64 letters, digits, \'-\' or \'.\', not starting with \'-\' or \'.\')');
  }
  return name;
}
