// What the planner read, for the launcher's plan cache (native/launch_plancache.c).
//
// `ctr-launch --ask` names a second descriptor, CTR_PLAN_INPUTS_FD, when it may keep the
// plan it asks for. Node then records every host file it stats, opens, reads or resolves
// and every variable it looks up, and writes that list there right after the plan. A
// later launch with the same key (argv, user, cwd, HOME, ctr's build) reuses the plan
// only while each input is still as recorded here, so the launcher holds no list of its
// own. The record is taken where the calls are made (node:fs, node:os, process.env), not
// by the planner's modules: an input that someone adds anywhere on the planning path is
// covered without anyone remembering to declare it.
//
// Each input is a few NUL-ended words (the launcher's parser, plancache_inputs, is the
// other half of this format):
//   F PATH DEV INO SIZE MTIME_NS CTIME_NS   a file, as stat(2) saw it before it was read
//   D PATH DEV INO MODE UID                 a directory (its times change with entries)
//   L PATH DEV INO SIZE MTIME_NS CTIME_NS   lstat(2) of a non-directory
//   A PATH CODE                             stat(2) fails so (ENOENT, ENOTDIR, EACCES, ELOOP)
//   R PATH RESULT                           realpath(3)
//   K PATH TARGET                           readlink(2)
//   E NAME VALUE | U NAME                   a variable, set or unset
//   X WHY                                   something not recordable: keep no plan
// The identity is taken BEFORE the call it stands for: a file changed while it was being
// read then no longer matches, and the next launch plans again.
import fs from 'node:fs';
import os from 'node:os';
import { syncBuiltinESMExports } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The launcher's protocol, not inputs: their values differ from launch to launch. */
const PROTOCOL_VARS = new Set(['CTR_PLAN_FD', 'CTR_PLAN_INPUTS_FD']);
export const INPUTS_VERSION = '1';

let records: Map<string, string[]> | undefined;

function note(key: string, words: string[]): void {
  if (records && !records.has(key)) records.set(key, words);
}

function uncacheable(why: string): void {
  note(`X\0${why}`, ['X', why]);
}

// The unwrapped calls, for the record itself.
const real = {
  statSync: fs.statSync,
  lstatSync: fs.lstatSync,
  realpathSync: fs.realpathSync,
  realpathNative: fs.realpathSync.native,
  readlinkSync: fs.readlinkSync,
};

function identity(kind: 'F' | 'L', path: string, st: fs.BigIntStats): string[] {
  if (kind === 'F' && st.isDirectory()) return ['D', path, String(st.dev), String(st.ino), String(st.mode & 0o7777n), String(st.uid)];
  return [kind, path, String(st.dev), String(st.ino), String(st.size), String(st.mtimeNs), String(st.ctimeNs)];
}

/** A path argument as a string; undefined for a descriptor (its open was noted). */
function pathOf(p: unknown): string | undefined {
  if (typeof p === 'number') return undefined;
  if (typeof p === 'string') return resolve(p);
  if (Buffer.isBuffer(p)) return resolve(p.toString());
  if (p instanceof URL) return fileURLToPath(p);
  uncacheable('a path that is not a string');
  return undefined;
}

/** stat (or lstat) of P as it is now. */
function noteStat(p: unknown, follow = true): void {
  if (!records) return;
  const path = pathOf(p);
  if (path === undefined) return;
  const kind = follow ? 'F' : 'L';
  if (records.has(`${kind}\0${path}`) || records.has(`A\0${path}`)) return;
  let st: fs.BigIntStats;
  try {
    st = (follow ? real.statSync : real.lstatSync)(path, { bigint: true });
  } catch (err) {
    failed('stat', path, err);
    return;
  }
  note(`${kind}\0${path}`, identity(kind, path, st));
}

/** Errors the launcher checks for again (launch_plancache.c: input_holds). */
const RECORDED_ERRORS = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'ELOOP']);

function failed(what: string, path: string, err: unknown): void {
  const code = (err as NodeJS.ErrnoException).code;
  if (code && RECORDED_ERRORS.has(code)) note(`A\0${path}`, ['A', path, code]);
  else uncacheable(`${what} ${path}: ${code}`);
}

function noteRealpath(p: unknown): void {
  if (!records) return;
  const path = pathOf(p);
  if (path === undefined) return;
  let result: string;
  try {
    result = real.realpathNative(path);
  } catch (err) {
    failed('realpath', path, err);
    return;
  }
  note(`R\0${path}`, ['R', path, result]);
}

function noteReadlink(p: unknown): void {
  if (!records) return;
  const path = pathOf(p);
  if (path === undefined) return;
  let result: string;
  try {
    result = String(real.readlinkSync(path));
  } catch (err) {
    failed('readlink', path, err);
    return;
  }
  note(`K\0${path}`, ['K', path, result]);
}

function noteVar(name: string | symbol): void {
  if (!records || typeof name !== 'string' || PROTOCOL_VARS.has(name)) return;
  const v = realEnv[name];
  note(`E\0${name}`, v === undefined ? ['U', name] : ['E', name, v]);
}

const realEnv = process.env;

/** Wrap F (a function of fs) so that NOTE sees its first argument first. */
function wrap<T extends (...a: never[]) => unknown>(f: T, noteArgs: (...a: Parameters<T>) => void): T {
  return function (this: unknown, ...a: Parameters<T>) {
    noteArgs(...a);
    return f.apply(this, a);
  } as T;
}

function readOnlyOpen(flags: unknown): boolean {
  return flags === undefined || flags === 'r' || flags === 'rs' || flags === fs.constants.O_RDONLY;
}

/**
 * Start recording (the start-up snapshot's entry, when the launcher asked for inputs).
 * Wraps node:fs, node:fs/promises and node:os for the rest of this process, and
 * process.env with a proxy that notes each name looked up.
 */
export function recordInputs(): void {
  if (records) return;
  records = new Map();
  const f = fs as unknown as Record<string, unknown>;
  const p = fs.promises as unknown as Record<string, unknown>;
  const byPath = (x: unknown) => noteStat(x);
  for (const name of ['readFileSync', 'statSync', 'accessSync', 'existsSync', 'readFile', 'stat', 'access', 'exists', 'createReadStream']) {
    if (typeof f[name] === 'function') f[name] = wrap(f[name] as (...a: never[]) => unknown, byPath);
  }
  for (const name of ['readFile', 'stat', 'access']) p[name] = wrap(p[name] as (...a: never[]) => unknown, byPath);
  for (const [obj, name] of [[f, 'openSync'], [f, 'open'], [p, 'open']] as const) {
    obj[name] = wrap(obj[name] as (...a: never[]) => unknown, (path: unknown, flags: unknown) => {
      if (!readOnlyOpen(flags)) uncacheable(`opened ${String(path)} to write`);
      noteStat(path);
    });
  }
  for (const [obj, name] of [[f, 'lstatSync'], [f, 'lstat'], [p, 'lstat']] as const) {
    obj[name] = wrap(obj[name] as (...a: never[]) => unknown, (path: unknown) => noteStat(path, false));
  }
  for (const [obj, name] of [[f, 'readlinkSync'], [f, 'readlink'], [p, 'readlink']] as const) {
    obj[name] = wrap(obj[name] as (...a: never[]) => unknown, noteReadlink);
  }
  // A listing is not recorded: planning that lists a directory keeps no plan.
  for (const [obj, name] of [[f, 'readdirSync'], [f, 'readdir'], [f, 'opendirSync'], [f, 'opendir'], [p, 'readdir'], [p, 'opendir']] as const) {
    obj[name] = wrap(obj[name] as (...a: never[]) => unknown, (path: unknown) => uncacheable(`listed ${String(path)}`));
  }
  const rp = wrap(real.realpathSync, noteRealpath) as typeof fs.realpathSync;
  rp.native = wrap(real.realpathNative, noteRealpath);
  f.realpathSync = rp;
  for (const [obj, name] of [[f, 'realpath'], [p, 'realpath']] as const) {
    obj[name] = wrap(obj[name] as (...a: never[]) => unknown, noteRealpath);
  }
  // userInfo() asks the name service (files: /etc/passwd); homedir() reads HOME first.
  const o = os as unknown as Record<string, unknown>;
  o.userInfo = wrap(os.userInfo, () => {
    noteStat('/etc/passwd');
    noteStat('/etc/nsswitch.conf');
  });
  o.homedir = wrap(os.homedir, () => {
    noteVar('HOME');
    noteStat('/etc/passwd');
  });
  // The ESM views of node:fs and node:os (plain Node) follow their CommonJS objects.
  syncBuiltinESMExports();
  process.env = new Proxy(realEnv, {
    get(t, k) {
      noteVar(k);
      return Reflect.get(t, k);
    },
    has(t, k) {
      noteVar(k);
      return Reflect.has(t, k);
    },
    ownKeys(t) {
      uncacheable('the whole environment was listed');
      return Reflect.ownKeys(t);
    },
    set(t, k, v) {
      uncacheable(`the planner set ${String(k)}`);
      return Reflect.set(t, k, v);
    },
    deleteProperty(t, k) {
      uncacheable(`the planner unset ${String(k)}`);
      return Reflect.deleteProperty(t, k);
    },
  });
}

/** The inputs recorded so far, as the words written to CTR_PLAN_INPUTS_FD; stops recording. */
export function takeInputs(): string[] {
  const out = [INPUTS_VERSION];
  for (const words of records?.values() ?? []) out.push(...words);
  records = undefined;
  return out;
}

/** The descriptor the launcher reads inputs on, or undefined (no plan will be kept). */
export function inputsDescriptor(env: NodeJS.ProcessEnv = realEnv): number | undefined {
  const fd = Number(env.CTR_PLAN_INPUTS_FD);
  return env.CTR_PLAN_INPUTS_FD && Number.isInteger(fd) && fd > 2 ? fd : undefined;
}
