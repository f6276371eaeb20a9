// Gather what the planner needs from the host: who the user is, where things are, which
// bind sources exist (symlinks resolved: the launcher sees the host under another root,
// where an absolute symlink such as /etc/resolv.conf -> /run/... would point elsewhere).
//
// Synchronous calls throughout: this runs once per rank, and each call is answered from
// the kernel's caches faster than a trip through libuv's thread pool (see src/files.ts).
import { accessSync, constants, readFileSync, realpathSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { userInfo } from 'node:os';
import { CtrError, describeSystemError } from '../errors.js';
import { parseBinds, parseHome } from '../plan/binds.js';
import { parseEnvFile } from '../plan/env.js';
import { HOST_FILES } from '../plan/compose.js';
import type { HostFacts, LaunchOptions, Overlay } from '../plan/options.js';
import { openImage } from '../image/open.js';
import { findSubIds } from './subids.js';

export async function gatherHostFacts(opts: LaunchOptions, needSquashfuse: boolean): Promise<HostFacts> {
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
  if (opts.home) required.push(parseHome(opts.home).src);
  for (const p of required) {
    try {
      realpaths.set(p, realpathSync.native(p));
    } catch (err) {
      throw new CtrError(`bind source ${p}`, describeSystemError(err));
    }
  }

  let envFileLines: string[] = [];
  if (opts.envFile) {
    let text: string;
    try {
      text = readFileSync(opts.envFile, 'utf8');
    } catch (err) {
      throw new CtrError(`env file ${opts.envFile}`, describeSystemError(err));
    }
    envFileLines = parseEnvFile(text, opts.envFile);
  }

  const overlays: Overlay[] = [];
  for (const spec of opts.overlay ?? []) overlays.push(await lookOverlay(spec));
  return {
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
    ...(overlays.length ? { overlays } : {}),
    ...(overlays.some((o) => o.kind === 'image') ? {
      fuse2fs: findTool('fuse2fs', 'CTR_FUSE2FS', ['/usr/sbin', '/sbin']),
      fuseOverlayfs: findTool('fuse-overlayfs', 'CTR_FUSE_OVERLAYFS'),
    } : {}),
    ...(opts.network === 'slirp4netns' ? { slirp4netns: findTool('slirp4netns', 'CTR_SLIRP4NETNS') } : {}),
  };
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
