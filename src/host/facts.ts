// Gather what the planner needs from the host: who the user is, where things are, which
// bind sources exist (symlinks resolved: the launcher sees the host under another root,
// where an absolute symlink such as /etc/resolv.conf -> /run/... would point elsewhere).
//
// Synchronous calls throughout: this runs once per rank, and each call is answered from
// the kernel's caches faster than a trip through libuv's thread pool (see src/files.ts).
import { accessSync, constants, readFileSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { userInfo } from 'node:os';
import { CtrError, describeSystemError } from '../errors.js';
import { parseBinds, parseHome } from '../plan/binds.js';
import { parseEnvFile } from '../plan/env.js';
import { HOST_FILES } from '../plan/compose.js';
import type { HostFacts, LaunchOptions } from '../plan/options.js';
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
      // Planned for other nodes: node-local storage, the slurmd spool or a GPU's device
      // need not exist on the submit host; the node's launcher checks it.
      if (opts.forNodes) realpaths.set(p, p);
      else throw new CtrError(`bind source ${p}`, describeSystemError(err));
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
  };
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
  if (process.env.CTR_SQUASHFUSE) return process.env.CTR_SQUASHFUSE;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/usr/local/bin'];
  for (const d of dirs) {
    const p = join(d, 'squashfuse_ll');
    try {
      accessSync(p, constants.X_OK);
      return realpathSync.native(p);
    } catch { /* next */ }
  }
  return undefined;
}
