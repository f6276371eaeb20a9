// Instances' state: one JSON file per instance in a per-user runtime directory
// ($XDG_RUNTIME_DIR/ctr/instances, else /tmp/ctr-UID/instances), owned by the user and
// mode 0700 (a directory someone else made or opened is refused: neighbours are hostile).
// An entry names the instance's init, PID 1 of its PID namespace, by its host pid (with
// its start time, so a reused pid is not mistaken for it), and keeps the plan words and
// options that a process joining it is planned from. Entries of dead instances are
// removed wherever they are seen. The instance's output goes to logs laid out as
// Apptainer's (LOGS/HOST/USER/NAME.out and .err, LOGS under $XDG_STATE_HOME/ctr), which
// outlive the instance.
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, renameSync, chmodSync } from 'node:fs';
import { hostname, homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { CtrError, describeSystemError } from '../errors.js';
import type { LaunchOptions } from '../plan/options.js';

export interface Instance {
  name: string;
  /** The init's host pid. */
  pid: number;
  /** Field 22 of /proc/PID/stat: the init's start time, against pid reuse. */
  started: string;
  image: string;
  /** start (the startscript) or run (the runscript). */
  action: 'start' | 'run';
  /** The instance's plan (without a command); a joining process keeps its container words. */
  words: string[];
  /** The options it was started with: a joining process is planned from them. */
  opts: LaunchOptions;
  logOut: string;
  logErr: string;
}

/** Where `ctr instance start` puts the instance's stdout and stderr (made 0700). */
export function logPaths(name: string, env: NodeJS.ProcessEnv = process.env): { out: string; err: string } {
  const base = env.XDG_STATE_HOME ? join(env.XDG_STATE_HOME, 'ctr') : join(homedir(), '.local', 'state', 'ctr');
  const dir = join(base, 'instances', 'logs', hostname(), userInfo().username);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new CtrError(`instance log directory ${dir}`, describeSystemError(err));
  }
  return { out: join(dir, `${name}.out`), err: join(dir, `${name}.err`) };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkName(name: string): string {
  if (!NAME.test(name)) throw new CtrError(`instance name ${JSON.stringify(name)}`, 'use letters, digits, . _ - (at most 64, not starting with . - _)');
  return name;
}

export function stateDir(env: NodeJS.ProcessEnv = process.env, uid = process.getuid!()): string {
  const base = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'ctr') : `/tmp/ctr-${uid}`;
  const dir = join(base, 'instances');
  for (const d of [base, dir]) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CtrError(`instance directory ${d}`, describeSystemError(err));
    }
    const st = lstatSync(d);
    if (!st.isDirectory() || st.uid !== uid) throw new CtrError(`instance directory ${d}`, 'not a directory of yours');
    if ((st.mode & 0o077) !== 0) chmodSync(d, 0o700);
  }
  return dir;
}

/** The fields of /proc/PID/stat after the command name (state first), or undefined. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** /proc/PID/stat's start time, or undefined when PID is gone (or a zombie). */
export function startTime(pid: number): string | undefined {
  const f = statFields(pid);
  return f && f[0] !== 'Z' ? f[19] : undefined;
}

export function alive(i: Instance): boolean {
  return startTime(i.pid) === i.started;
}

/** The host pids of the processes in the instance's PID namespace (its init among them). */
export function members(i: Instance): number[] {
  let ns: string;
  try {
    ns = readlinkSync(`/proc/${i.pid}/ns/pid`);
  } catch {
    return [];
  }
  const uid = process.getuid!();
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (lstatSync(`/proc/${name}`).uid !== uid || readlinkSync(`/proc/${name}/ns/pid`) !== ns) continue;
      out.push(Number(name));
    } catch { /* gone, or not ours to look at */ }
  }
  return out;
}

/** Signal the instance's init, which passes it on to every process of the instance. */
export function signalInit(i: Instance, sig: NodeJS.Signals | number): void {
  if (!alive(i)) return;
  try {
    process.kill(i.pid, sig);
  } catch { /* gone */ }
}

export function save(dir: string, i: Instance): void {
  const tmp = join(dir, `.${i.name}.${process.pid}`);
  writeFileSync(tmp, JSON.stringify(i, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, join(dir, `${i.name}.json`));
}

/** The entry goes; its logs stay (what a service said before it ended is worth reading). */
export function remove(dir: string, name: string): void {
  rmSync(join(dir, `${name}.json`), { force: true });
}

/** The live instances; entries of dead ones are removed. */
export function list(dir: string): Instance[] {
  const out: Instance[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
    let i: Instance;
    try {
      i = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Instance;
    } catch {
      rmSync(join(dir, f), { force: true });
      continue;
    }
    // Its init gone (stopped, killed, the node's OOM killer), the kernel has ended every
    // process of its PID namespace, and the container's holder leaves with the last.
    if (alive(i) && Array.isArray(i.words)) out.push(i);
    else remove(dir, f.slice(0, -5));
  }
  return out;
}

export function find(dir: string, name: string): Instance | undefined {
  return list(dir).find((i) => i.name === name);
}
