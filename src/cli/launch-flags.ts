// Flags shared by exec, run, shell and plan: one table, used both by yargs (help,
// validation) and by splitAtImage, which finds where ctr's flags end and the command's
// begin (`ctr exec -B /data img ls -la`: -la belongs to ls).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Options } from 'yargs';
import { CtrError } from '../errors.js';
import type { LaunchOptions } from '../plan/options.js';
import { FAKEROOT_MODES, type FakerootMode } from '../plan/fakeroot.js';
import { parseSize } from '../plan/size.js';

export const LAUNCH_FLAGS = {
  bind: { alias: 'B', type: 'string', array: true, default: [], describe: 'bind SRC[:DST[:ro|rw]] (repeatable, comma lists)' },
  'writable-tmpfs': { type: 'boolean', default: false, describe: 'writable tmpfs overlay over the image; changes are discarded' },
  cleanenv: { alias: 'e', type: 'boolean', default: false, describe: 'do not pass the host environment' },
  env: { type: 'string', array: true, default: [], describe: 'set NAME=VALUE inside (repeatable, comma lists)' },
  'env-file': { type: 'string', describe: 'file of NAME=VALUE lines to set inside' },
  pwd: { type: 'string', describe: 'initial working directory inside' },
  home: { alias: 'H', type: 'string', describe: 'home directory SRC[:DST] to bind' },
  'no-home': { type: 'boolean', default: false, describe: 'do not bind the home directory' },
  contain: { alias: 'c', type: 'boolean', default: false, describe: 'minimal /dev, fresh /tmp and home, no cwd bind' },
  fakeroot: { type: 'boolean', default: false, describe: 'be root (uid 0) inside the container' },
  'fakeroot-mode': { type: 'string', choices: [...FAKEROOT_MODES], describe: 'how --fakeroot makes many ids: subuid (newuidmap), seccomp (faked calls) or auto' },
  'writable-tmpfs-size': { type: 'string', describe: 'room for changes with --writable-tmpfs (e.g. 64M, 1G; default 64M)' },
  join: { type: 'boolean', default: false, describe: 'always share one container among the ranks of a job step on a node' },
  'no-join': { type: 'boolean', default: false, describe: 'never share (default: share when Slurm, Open MPI or MPICH launched us)' },
  'join-tag': { type: 'string', describe: 'name of the job step, for launchers ctr does not recognise' },
  'join-count': { type: 'string', describe: 'number of ranks expected on this node' },
  debug: { type: 'boolean', default: false, describe: 'print what the launcher does' },
  'no-plan-cache': { type: 'boolean', default: false, describe: 'plan anew, and keep no plan for later launches (also CTR_PLAN_CACHE=0)' },
} satisfies Record<string, Options>;

export function toLaunchOptions(a: Record<string, unknown>): LaunchOptions {
  return {
    bind: (a.bind as string[]) ?? [],
    writableTmpfs: Boolean(a['writable-tmpfs']),
    cleanenv: Boolean(a.cleanenv),
    env: (a.env as string[]) ?? [],
    envFile: a['env-file'] as string | undefined,
    pwd: a.pwd as string | undefined,
    home: a.home as string | undefined,
    noHome: Boolean(a['no-home']),
    contain: Boolean(a.contain),
    fakeroot: Boolean(a.fakeroot),
    ...(a['fakeroot-mode'] !== undefined ? { fakerootMode: a['fakeroot-mode'] as FakerootMode } : {}),
    ...(a['writable-tmpfs-size'] !== undefined ? { writableTmpfsSize: parseSize(String(a['writable-tmpfs-size']), '--writable-tmpfs-size') } : {}),
    debug: Boolean(a.debug),
    join: a['no-join'] ? 'off' : a.join || a['join-tag'] ? 'on' : 'auto',
    joinTag: a['join-tag'] as string | undefined,
    joinCount: a['join-count'] === undefined ? undefined : Number(a['join-count']),
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
  for (const [name, o] of Object.entries(table)) {
    const short = [o.alias ?? []].flat().find((a) => a.length === 1);
    options[name] = { type: o.type === 'boolean' ? 'boolean' : 'string', ...(short ? { short } : {}), ...(o.array ? { multiple: true } : {}) };
  }
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: flags, options, strict: true, allowPositionals: false }));
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
