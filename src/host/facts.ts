// Gather what the planner needs from the host: who the user is, where things are, which
// bind sources exist (symlinks resolved: the launcher sees the host under another root,
// where an absolute symlink such as /etc/resolv.conf -> /run/... would point elsewhere).
//
// Synchronous calls throughout: this runs once per rank, and each call is answered from
// the kernel's caches faster than a trip through libuv's thread pool (see src/files.ts).
import { accessSync, chmodSync, constants, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { userInfo } from 'node:os';
import { CtrError, describeSystemError } from '../errors.js';
import { parseBinds, parseHome } from '../plan/binds.js';
import { parseEnvFile } from '../plan/env-file.js';
import { HOST_FILES, workdirPaths } from '../plan/compose.js';
import type { HostFacts, LaunchOptions, Overlay } from '../plan/options.js';
import { bindImageOffset, openImage } from '../image/open.js';
import { findSubIds } from './subids.js';
import { gatherGpuFacts } from './gpu.js';
import { parse as parseToml } from 'smol-toml';
import { controllersFor } from '../plan/cgroups.js';
import { hasLimits, limitsFromToml, mergeLimits, noLimits, type ResourceLimits } from '../plan/resources.js';
import { blockDevice, findCgroups } from './cgroups.js';

/** IMAGE_DIR: the directory image, when there is one (--writable looks whether it may be written). */
export async function gatherHostFacts(opts: LaunchOptions, needSquashfuse: boolean, imageDir?: string): Promise<HostFacts> {
  const info = userInfo();
  const passwd = readOr('/etc/passwd', '');
  const pwent = passwd.split('\n').map((l) => l.split(':')).find((f) => f[2] === String(info.uid));
  const group = groupName(info.gid);
  const home = pwent?.[5] || info.homedir;

  const realpaths = new Map<string, string>();
  const exists = new Set<string>();
  const optional = [...HOST_FILES, '/tmp', '/var/tmp', home, ...parseBinds(opts.siteBind ?? []).map((b) => b.src)];
  for (const p of optional) {
    try {
      realpaths.set(p, realpathSync.native(p));
      exists.add(p);
    } catch { /* optional: not bound */ }
  }
  const required = parseBinds(opts.bind).map((b) => b.src);
  if (opts.workdir) required.push(...makeWorkdir(opts.workdir, workdirPaths(opts)));
  if (opts.home) required.push(parseHome(opts.home).src);
  for (const p of required) {
    try {
      realpaths.set(p, realpathSync.native(p));
    } catch (err) {
      // Planned for other nodes: node-local storage, the slurmd spool or a GPU's device
      // need not exist on the submit host; the node's launcher checks it.
      if (opts.forNodes) realpaths.set(p, p);
      else throw new CtrError(`bind source ${p}`, describeSystemError(err));
    }
  }

  const envFileLines: string[] = [];
  for (const file of opts.envFiles ?? []) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CtrError(`env file ${file}`, describeSystemError(err));
    }
    envFileLines.push(...parseEnvFile(text, file, process.env));
  }

  const gpu = await gatherGpuFacts(opts, exists);
  const fileLimits = opts.applyCgroups !== undefined ? readLimitsFile(opts.applyCgroups) : undefined;
  const limits = mergeLimits(fileLimits ?? noLimits(), opts.resources ?? noLimits());
  const limitFacts = hasLimits(limits) ? cgroupFacts(limits, opts.cgroupRoot, info.username, info.uid) : {};

  const tmpfsOwner = opts.writableTmpfs && imageDir !== undefined ? statSync(imageDir).uid : undefined;
  const overlays: Overlay[] = [];
  for (const spec of opts.overlay ?? []) overlays.push(await lookOverlay(spec));
  // Image binds (-B FILE:DST:image-src=...), in -B order: where each one's SquashFS lies.
  const imageBindOffsets: number[] = [];
  for (const b of parseBinds(opts.bind)) if (b.image) imageBindOffsets.push(await bindImageOffset(b.src, b.image.id));
  return {
    ...limitFacts,
    ...(fileLimits ? { fileLimits } : {}),
    uid: info.uid,
    gid: info.gid,
    user: info.username,
    group,
    gecos: pwent?.[4] ?? '',
    home,
    cwd: currentDirectory(opts.pwd !== undefined),
    squashfuse: needSquashfuse ? findSquashfuse() : undefined,
    realpaths,
    exists,
    envFileLines,
    ...(opts.fakeroot ? { subids: findSubIds(info.username, info.uid) } : {}),
    ...(gpu ? { gpu } : {}),
    ...(overlays.length ? { overlays } : {}),
    ...(imageBindOffsets.length ? { imageBindOffsets } : {}),
    ...(opts.writable && imageDir !== undefined ? { imageWritable: writableBy(imageDir) } : {}),
    ...(tmpfsOwner !== undefined ? { imageUid: tmpfsOwner } : {}),
    ...(overlays.some((o) => o.kind === 'image') || (tmpfsOwner !== undefined && tmpfsOwner !== info.uid) ? {
      fuse2fs: findTool('fuse2fs', 'CTR_FUSE2FS', ['/usr/sbin', '/sbin']),
      fuseOverlayfs: findTool('fuse-overlayfs', 'CTR_FUSE_OVERLAYFS'),
    } : {}),
    ...(opts.network === 'slirp4netns' ? { slirp4netns: findTool('slirp4netns', 'CTR_SLIRP4NETNS') } : {}),
  };
}

/** May this process write to DIR (its own permission bits, ACLs: access(2)), and whose is it? */
function writableBy(dir: string): { ok: boolean; uid: number } {
  let ok = true;
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    ok = false;
  }
  return { ok, uid: statSync(dir).uid };
}

/** --apply-cgroups FILE: Apptainer's TOML of limits. */
function readLimitsFile(path: string): ResourceLimits {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CtrError(`--apply-cgroups ${path}`, describeSystemError(err));
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new CtrError(`--apply-cgroups ${path}`, `not valid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  return limitsFromToml(doc, path);
}

/** Where the limits' cgroups can go, and the numbers of the devices they name. */
function cgroupFacts(limits: ResourceLimits, root: string | undefined, user: string, uid: number): Pick<HostFacts, 'cgroups' | 'devices'> {
  const devices = new Map<string, string>();
  for (const [rates, flag] of [[limits.readBps, '--device-read-bps'], [limits.writeBps, '--device-write-bps'],
    [limits.readIops, '--device-read-iops'], [limits.writeIops, '--device-write-iops']] as const) {
    for (const r of rates) {
      if (typeof r.device !== 'string') continue;
      const d = blockDevice(r.device);
      if (!d.ok) throw new CtrError(`${flag} ${r.device}`, d.why);
      devices.set(r.device, d.numbers);
    }
  }
  return { cgroups: findCgroups(controllersFor(limits), root, user, uid, process.env), devices };
}

/** --workdir W: W itself must exist; the directories in it the plan binds are made. */
function makeWorkdir(workdir: string, paths: string[]): string[] {
  try {
    realpathSync.native(workdir);
  } catch (err) {
    throw new CtrError(`--workdir ${workdir}`, describeSystemError(err));
  }
  for (const p of paths) {
    try {
      mkdirSync(p, { recursive: true, mode: 0o700 });
      if (/\/(tmp|var_tmp)$/.test(p)) chmodSync(p, 0o1777);
    } catch (err) {
      throw new CtrError(`--workdir ${workdir}`, `cannot make ${p}: ${describeSystemError(err)}`);
    }
  }
  return paths;
}

/** --overlay PATH: a directory, or an image file (its format is fuse2fs's to check);
 * PATH:ro, a SquashFS (bare or SIF), checked as an image is. */
async function lookOverlay(spec: string): Promise<Overlay> {
  if (/:ro$/.test(spec)) {
    const image = await openImage(spec.slice(0, -3));
    if (image.kind === 'dir') {
      throw new CtrError(`--overlay ${spec}`, 'a read-only overlay must be a SquashFS image (bare, or a SIF)', { hint: 'bind a directory instead: -B DIR:DST:ro' });
    }
    return { kind: 'lower', path: image.path, offset: image.offset };
  }
  const p = spec.replace(/:rw$/, '');
  try {
    const path = realpathSync.native(p);
    return { kind: statSync(path).isDirectory() ? 'dir' : 'image', path };
  } catch (err) {
    throw new CtrError(`--overlay ${p}`, describeSystemError(err), { hint: 'make one with: ctr overlay create --size 512 FILE (or mkdir DIR)' });
  }
}

/** The working directory; one that was removed is fatal only when it would be entered. */
function currentDirectory(pwdGiven: boolean): string {
  try {
    return process.cwd();
  } catch (err) {
    if (pwdGiven) return '/';
    throw new CtrError('current directory', `${describeSystemError(err)} (was it removed?)`, { hint: 'cd somewhere that exists, or give --pwd' });
  }
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function groupName(gid: number): string {
  const text = readOr('/etc/group', '');
  const ent = text.split('\n').map((l) => l.split(':')).find((f) => f[2] === String(gid));
  return ent?.[0] || String(gid);
}

/**
 * squashfuse_ll: $CTR_SQUASHFUSE, else the first on PATH (then /usr/bin); undefined if
 * there is none. The launcher has its own FUSE server when built with libsquashfuse, and
 * uses this one only without it (or with CTR_FUSE=exec); it says so if it needs it.
 */
export function findSquashfuse(): string | undefined {
  return findTool('squashfuse_ll', 'CTR_SQUASHFUSE');
}

/** A helper program: $ENV, else the first NAME on PATH (then /usr/bin, /usr/local/bin, MORE). */
export function findTool(name: string, env: string, more: string[] = []): string | undefined {
  if (process.env[env]) return process.env[env];
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/usr/local/bin', ...more];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return realpathSync.native(p);
    } catch { /* next */ }
  }
  return undefined;
}
