// ctr checkpoint PID DIR and ctr restore [flags] IMAGE DIR: CRIU dumps the command of a
// container started with --checkpointable, and restores it in a fresh container of the
// same image and flags. CRIU runs inside the container's namespaces (native/launch_criu.c
// says why, and what that asks of the container).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CtrError, describeSystemError } from '../errors.js';
import type { LaunchOptions } from '../plan/options.js';
import { launcherPath } from '../launch/launcher.js';
import { findCriu } from './criu.js';

/** native/launch.h CRIU_CMD_PID: a checkpointable command's PID in its container. */
const CMD_PID = 100;
const START_HINT = 'start it with ctr exec --checkpointable IMAGE COMMAND, and give ctr checkpoint its PID ($! in the shell)';

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The container's init for PID: PID itself, or the init child of PID (the launcher). */
export function containerInit(pid: number): number {
  if (comm(pid) === undefined) throw new CtrError(`process ${pid}`, 'not running', { hint: START_HINT });
  if (comm(pid) === 'ctr-init') return pid;
  const init = children(pid).find((c) => comm(c) === 'ctr-init');
  if (init === undefined) throw new CtrError(`process ${pid}`, 'not a ctr container (its launcher or its ctr-init)', { hint: START_HINT });
  return init;
}

/** The last NSpid of PID: its number in the innermost PID namespace. */
function innerPid(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'));
    return line ? Number(line.trim().split(/\s+/).at(-1)) : undefined;
  } catch {
    return undefined;
  }
}

/** The Error lines of a CRIU log, or its last line. */
function criuErrors(log: string): string {
  let text: string;
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    return `no log (${log})`;
  }
  const errors = text.split('\n').filter((l) => /\bError\b/.test(l) && !/kerndat|net\.c|RLIMIT_NOFILE|Dumping FAILED|Restoring FAILED/.test(l));
  const pick = errors.length ? errors.slice(0, 3) : text.trim().split('\n').slice(-1);
  return pick.map((l) => l.replace(/^\(\d+\.\d+\)\s*(\d+:\s*)?/, '')).join('; ');
}

export function checkpoint(target: string, dirArg: string, leaveRunning: boolean): void {
  if (!/^\d+$/.test(target)) throw new CtrError(`checkpoint ${target}`, 'not a PID', { hint: START_HINT });
  const init = containerInit(Number(target));
  const cmd = children(init).find((c) => innerPid(c) === CMD_PID);
  if (cmd === undefined) throw new CtrError(`container of process ${target}`, 'not checkpointable (its command is not PID 100 inside)', { hint: START_HINT });
  const criu = findCriu();
  const dir = resolve(dirArg);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new CtrError(`checkpoint directory ${dir}`, describeSystemError(err));
  }
  if (readdirSync(dir).length) throw new CtrError(`checkpoint directory ${dir}`, 'not empty', { hint: 'give a new or empty directory' });
  const args = ['--criu-enter', String(init), criu.interp, criu.libraryPath, criu.path,
    'dump', '--unprivileged', '-t', String(CMD_PID), '-D', dir, '-o', 'dump.log', '-v4',
    // Stopped, not killed, by CRIU: CRIU is a member of the container's PID namespace,
    // which dies with the command, so a CRIU that kills it is killed before it exits.
    leaveRunning ? '--leave-running' : '--leave-stopped'];
  const r = spawnSync(launcherPath(), args, { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  if (r.status === 0) {
    if (!leaveRunning) process.kill(cmd, 'SIGKILL');
    return;
  }
  if (r.stderr && !existsSync(join(dir, 'dump.log'))) {
    process.stderr.write(r.stderr);
    throw new CtrError(`checkpoint of process ${target}`, 'CRIU did not run', { exitCode: r.status ?? 255 });
  }
  throw new CtrError(`checkpoint of process ${target}`, `CRIU refused: ${criuErrors(join(dir, 'dump.log'))}`,
    { hint: `the whole log is ${join(dir, 'dump.log')}; the directory must be in view inside the container (a bind)` });
}

/** The plan options of `ctr restore`: the command is CRIU's restore of DIR. */
export function restoreOptions(dirArg: string, opts: LaunchOptions): { opts: LaunchOptions; command: string[] } {
  const dir = resolve(dirArg);
  if (!existsSync(join(dir, 'inventory.img'))) throw new CtrError(`checkpoint directory ${dir}`, 'holds no checkpoint (no inventory.img)', { hint: 'ctr checkpoint PID DIR makes one' });
  const criu = findCriu();
  return {
    opts: { ...opts, criu: { interp: criu.interp, libraryPath: criu.libraryPath, criu: criu.path } },
    command: ['restore', '--unprivileged', '-d', '-D', dir, '-o', 'restore.log', '-v4'],
  };
}
