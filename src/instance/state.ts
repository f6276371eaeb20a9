// Instances' state: one JSON file per instance in a per-user runtime directory
// ($XDG_RUNTIME_DIR/ctr/instances, else /tmp/ctr-UID/instances), owned by the user and
// mode 0700 (a directory someone else made or opened is refused: neighbours are hostile).
// An entry names the instance's keeper process (with its start time, so a reused pid is
// not mistaken for it) and the plan words that join its container. Entries of dead
// instances are removed wherever they are seen.
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, renameSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { CtrError, describeSystemError } from '../errors.js';

export interface Instance {
  name: string;
  pid: number;
  /** Field 22 of /proc/PID/stat: the keeper's start time, against pid reuse. */
  started: string;
  image: string;
  /** The plan (without a command): `exec instance://NAME CMD` runs these words and CMD. */
  words: string[];
  log: string;
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

/**
 * Signal what the instance's keeper started: the processes of its session (the keeper
 * is the session leader: setsid), which includes the keeper while it lives. Only our
 * own processes are signalled; the session id is the keeper's pid, and a session whose
 * leader is gone keeps that id until its last member leaves, so no stranger has it.
 */
export function signalSession(i: Instance, sig: NodeJS.Signals | number): void {
  const uid = process.getuid!();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (!f || f[3] !== String(i.pid)) continue;
    try {
      if (lstatSync(`/proc/${name}`).uid !== uid) continue;
      process.kill(Number(name), sig);
    } catch { /* gone */ }
  }
}

export function save(dir: string, i: Instance): void {
  const tmp = join(dir, `.${i.name}.${process.pid}`);
  writeFileSync(tmp, JSON.stringify(i, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, join(dir, `${i.name}.json`));
}

/** The entry and the instance's log (stdout and stderr of its keeper) go together. */
export function remove(dir: string, name: string): void {
  rmSync(join(dir, `${name}.json`), { force: true });
  rmSync(join(dir, `${name}.log`), { force: true });
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
    if (alive(i)) out.push(i);
    else {
      // Its keeper died (killed, or the node's OOM killer): end what it left running.
      signalSession(i, 'SIGKILL');
      remove(dir, f.slice(0, -5));
    }
  }
  return out;
}

export function find(dir: string, name: string): Instance | undefined {
  return list(dir).find((i) => i.name === name);
}
