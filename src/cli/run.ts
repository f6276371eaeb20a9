// ctr's command line. Command modules only parse flags and call; the work lives in
// src/plan (pure), src/image, src/host and src/launch (the parts that touch the system).
// Entry points: main.ts (plain Node) and snapshot.ts (the start-up snapshot, bin/ctr).
//
// One front for every command: ctr parses every command line itself (node:util's
// parseArgs, driven by the flag tables), so every mistake gets ctr's own words
// (`ctr: error: <what>: <why>`, a `ctr: hint:`, exit 255). yargs only writes help.
import type { Argv, Options } from 'yargs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { FakerootMode } from '../plan/fakeroot.js';
import { CtrError, errorLines, EXIT_CTR_FAILURE } from '../errors.js';
import { LAUNCH_FLAGS, parseFlagsFast, splitAtImage, toLaunchOptions, valueFlags } from './launch-flags.js';
import type { Action } from '../plan/options.js';
import { withSiteSettings } from './site.js';

const IMAGE: Positional = { name: 'IMAGE', describe: 'SIF file, SquashFS file or directory', missing: 'no image given' };
const ARGS: Positional = { name: 'ARG', describe: "the command's arguments", missing: '', optional: true, repeats: true };

const LAUNCH_VERBS: Record<string, { usage: string; describe: string; needsCommand: boolean; positionals: Positional[] }> = {
  exec: { usage: 'exec [flags] IMAGE COMMAND [ARG...]', describe: 'run a command in a container', needsCommand: true,
    positionals: [IMAGE, { name: 'COMMAND', describe: 'the program to run inside', missing: 'no command given', complete: 'command' }, ARGS] },
  run: { usage: 'run [flags] IMAGE [ARG...]', describe: "run the image's runscript", needsCommand: false,
    positionals: [IMAGE, { ...ARGS, describe: "the runscript's arguments" }] },
  shell: { usage: 'shell [flags] IMAGE', describe: 'start an interactive shell in a container', needsCommand: false, positionals: [IMAGE] },
  test: { usage: 'test [flags] IMAGE [ARG...]', describe: "run the image's test script (/.singularity.d/test), as Apptainer's test does", needsCommand: false,
    positionals: [IMAGE, { ...ARGS, describe: "the test script's arguments" }] },
  plan: { usage: 'plan -o FILE [flags] IMAGE [COMMAND [ARG...]]', describe: 'write an executable plan file that launches without Node', needsCommand: false,
    positionals: [IMAGE, { name: 'COMMAND', describe: 'the program the plan runs (with --action exec)', missing: '', complete: 'command', optional: true }, ARGS] },
};

const PLAN_FLAGS = {
  output: { alias: 'o', type: 'string', demandOption: true, describe: 'plan file to write' },
  action: { type: 'string', choices: ['exec', 'run', 'shell'], default: 'exec', describe: 'what the plan does' },
  'for-nodes': {
    type: 'boolean', default: false,
    describe: 'the plan runs on other nodes (Slurm plugin, ctr-srun): bind sources and the working directory missing here are left for each node to check',
  },
} satisfies Record<string, Options>;

/** An operand. COMPLETE says what a shell completes it with: files (the default), command
 * names, ctr's commands, or these words. REPEATS: it takes the rest of the line. */
export interface Positional { name: string; describe: string; missing: string; complete?: 'file' | 'command' | 'verb' | string[]; optional?: boolean; repeats?: boolean }
interface OtherVerb {
  usage: string;
  describe: string;
  positionals: Positional[];
  flags: Record<string, Options>;
  run(flags: Record<string, unknown>, args: string[]): Promise<void>;
}

/** The commands that are not launches: their flags and operands, all of them required. */
const OTHER_VERBS: Record<string, OtherVerb> = {
  build: {
    usage: 'build [flags] OUT SOURCE',
    describe: 'build a SIF image (or with --sandbox a directory) from a directory, SIF, tarball, SquashFS file or definition file',
    positionals: [
      { name: 'OUT', describe: 'SIF file to write (with --sandbox: the directory)', missing: 'no output file given' },
      { name: 'SOURCE', describe: 'directory, SIF, rootfs tarball (.tar, .tar.gz, .tar.zst), SquashFS file, definition file, or docker://, oci:, oci-archive:, docker-archive: reference', missing: 'no source given' },
    ],
    flags: {
      force: { alias: 'F', type: 'boolean', describe: 'overwrite OUT' },
      sandbox: { alias: 's', type: 'boolean', describe: 'OUT is a directory image (a sandbox: ctr exec DIR runs it; ctr build OUT.sif DIR packs it)' },
      'fix-perms': { type: 'boolean', describe: 'with --sandbox: give the owner read, write and search permission on everything (so it can be removed)' },
      update: { alias: 'u', type: 'boolean', describe: "with --sandbox: apply a definition file's sections to the existing sandbox OUT (no bootstrap)" },
      compress: { type: 'string', describe: 'compressor[:level]: gzip, xz, lzo, lz4, zstd (default zstd:3)' },
      'no-https': { type: 'boolean', describe: 'plain HTTP to registries, for docker:// sources and Bootstrap: docker' },
      'fakeroot-mode': { type: 'string', choices: ['auto', 'subuid', 'seccomp'], describe: "how %post's fake root gets many ids: subuid (newuidmap), seccomp (faked calls) or auto" },
      quiet: { alias: 'q', type: 'boolean', describe: 'no progress and no final line (what was written, its size, how long)' },
    },
    async run(f, [out, source]) {
      const { buildCommand } = await import('./commands/build.js');
      await buildCommand(out, source, { force: Boolean(f.force), compress: f.compress as string | undefined, noHttps: Boolean(f['no-https']),
        fakerootMode: f['fakeroot-mode'] as FakerootMode | undefined, quiet: Boolean(f.quiet), sandbox: Boolean(f.sandbox), update: Boolean(f.update), fixPerms: Boolean(f['fix-perms']) });
    },
  },
  inspect: {
    usage: 'inspect [flags] IMAGE',
    describe: "show an image's labels (by default) or other sections, without mounting it",
    positionals: [IMAGE],
    flags: {
      labels: { alias: 'l', type: 'boolean', describe: 'show the labels (the default)' },
      deffile: { alias: 'd', type: 'boolean', describe: 'show the definition file the image was built from' },
      runscript: { alias: 'r', type: 'boolean', describe: 'show the runscript' },
      startscript: { alias: 's', type: 'boolean', describe: 'show the startscript' },
      test: { alias: 't', type: 'boolean', describe: 'show the test script' },
      helpfile: { alias: 'H', type: 'boolean', describe: "show the runscript's help file" },
      environment: { alias: 'e', type: 'boolean', describe: 'show the environment scripts' },
      image: { type: 'boolean', describe: 'show the image file: SIF header and objects, SquashFS compressor and block size' },
      all: { type: 'boolean', describe: 'show every section, as JSON' },
      'list-apps': { type: 'boolean', describe: 'list the SCIF apps (/scif/apps)' },
      app: { type: 'string', describe: 'show the sections of this SCIF app instead of the image\'s' },
      json: { alias: 'j', type: 'boolean', describe: "print JSON in Apptainer's schema (ctr's --image beside its data)" },
    },
    async run(f, [image]) {
      const { inspectCommand } = await import('./commands/inspect.js');
      await inspectCommand(image, f);
    },
  },
  pull: {
    usage: 'pull [flags] OUT REF',
    describe: 'pull an OCI/Docker image into a SIF file',
    positionals: [
      { name: 'OUT', describe: 'SIF file to write', missing: 'no output file given' },
      { name: 'REF', describe: 'docker://REGISTRY/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:PATH or docker-archive:PATH', missing: 'no image reference given' },
    ],
    flags: {
      force: { alias: 'F', type: 'boolean', describe: 'overwrite OUT' },
      'no-https': { type: 'boolean', describe: 'plain HTTP (a private CA instead: NODE_EXTRA_CA_CERTS=ca.pem)' },
      arch: { type: 'string', describe: 'platform to pick from a multi-arch image (default: the host)' },
      quiet: { alias: 'q', type: 'boolean', describe: 'no progress and no final line (what was written, its size, how long)' },
    },
    async run(f, [out, ref]) {
      const { pullCommand } = await import('./commands/pull.js');
      await pullCommand(out, ref, { https: !f['no-https'], arch: f.arch as string | undefined, force: Boolean(f.force), quiet: Boolean(f.quiet) });
    },
  },
};

OTHER_VERBS.cache = {
  usage: 'cache list|clean [--type blob,oci,all] [--days N] [--dry-run] [-v]',
  describe: 'list or clean the caches ($CTR_CACHEDIR, else $XDG_CACHE_HOME/ctr): OCI blobs (blob) and the SIFs exec docker://REF runs (oci)',
  positionals: [{ name: 'ACTION', describe: 'list or clean', missing: 'no cache command given (list or clean)', complete: ['list', 'clean'] }],
  flags: {
    type: { alias: 'T', type: 'string', describe: 'which caches, a comma list: blob, oci or all (the default)' },
    days: { alias: 'D', type: 'string', describe: 'clean: only entries unused for more than N days' },
    'dry-run': { alias: 'n', type: 'boolean', describe: 'clean: say what would be removed, remove nothing' },
    force: { alias: 'f', type: 'boolean', describe: 'clean: accepted for Apptainer (ctr never asks)' },
    verbose: { alias: 'v', type: 'boolean', describe: 'list: every entry, with its date, size and type' },
  },
  async run(f, [sub]) {
    const { cacheCommand } = await import('./commands/cache.js');
    cacheCommand(sub, { days: f.days as string | undefined, type: f.type as string | undefined, dryRun: Boolean(f['dry-run']), verbose: Boolean(f.verbose), force: Boolean(f.force) });
  },
};

OTHER_VERBS['run-help'] = {
  usage: 'run-help [--app NAME] IMAGE',
  describe: "show the image's help (/.singularity.d/runscript.help, the definition file's %help), or an app's (%apphelp)",
  positionals: [IMAGE],
  flags: { app: { type: 'string', describe: 'the help of this SCIF app' } },
  async run(f, [image]) {
    const { runHelpCommand } = await import('./commands/run-help.js');
    await runHelpCommand(image, f.app as string | undefined);
  },
};

OTHER_VERBS.overlay = {
  usage: 'overlay create [--size SIZE] [--fakeroot] FILE',
  describe: 'create an ext3 overlay image for --overlay (as apptainer overlay create)',
  positionals: [
    { name: 'ACTION', describe: 'create', missing: 'no overlay command given (create)' },
    { name: 'FILE', describe: 'image file to create', missing: 'no overlay image file given' },
  ],
  flags: {
    size: { alias: 's', type: 'string', describe: 'size of the image: the room for changes (64M, 1G; a plain number is MiB; default 64)' },
    fakeroot: { type: 'boolean', describe: 'make its upper layer root\'s, for use with --fakeroot' },
  },
  async run(f, [sub, file]) {
    const { overlayCommand } = await import('./commands/overlay.js');
    await overlayCommand(sub, file, f.size as string | undefined, Boolean(f.fakeroot));
  },
};

OTHER_VERBS.checkpoint = {
  usage: 'checkpoint [--leave-running] PID DIR',
  describe: 'checkpoint the command of a container started with ctr exec --checkpointable (PID: its ctr, $!) into DIR with CRIU; the command ends unless --leave-running',
  positionals: [
    { name: 'PID', describe: 'the container\'s ctr process (or its ctr-init)', missing: 'no PID given (the ctr exec --checkpointable process)' },
    { name: 'DIR', describe: 'a new or empty directory, in view inside the container', missing: 'no checkpoint directory given' },
  ],
  flags: {
    'leave-running': { type: 'boolean', describe: 'keep the command running after the checkpoint' },
  },
  async run(f, [pid, dir]) {
    const { checkpoint } = await import('../checkpoint/commands.js');
    checkpoint(pid, dir, Boolean(f['leave-running']));
  },
};

OTHER_VERBS.completion = {
  usage: 'completion bash|zsh',
  describe: "print a shell completion script for ctr (bash: source <(ctr completion bash); zsh: put it in $fpath as _ctr)",
  positionals: [{ name: 'SHELL', describe: 'bash or zsh', missing: 'no shell given (bash or zsh)', complete: ['bash', 'zsh'] }],
  flags: {},
  async run(_f, [shell]) {
    const { completionScript } = await import('./completion.js');
    process.stdout.write(completionScript(shell, commandTable()));
  },
};

const INFO_VERBS: Record<string, { usage: string; describe: string; positionals: Positional[] }> = {
  help: { usage: 'help [COMMAND]', describe: 'show help for ctr or for one command',
    positionals: [{ name: 'COMMAND', describe: 'one of ctr\'s commands', missing: '', complete: 'verb', optional: true }] },
  version: { usage: 'version', describe: 'show the version, the launcher build, libsquashfs, and whether the start-up snapshot is used', positionals: [] },
};

/** What Apptainer's test action does once the environment scripts are sourced: the
 * image's test script with the arguments, else a message and success. */
const TEST_ACTION = 'if test -x /.singularity.d/test; then exec /.singularity.d/test "$@"; ' +
  'else echo "No test found in container, executing /bin/sh -c true"; exec /bin/sh -c true; fi';

/** One of ctr's commands, as help, completion and the man pages describe it. */
export interface CommandSpec { verb: string; usage: string; describe: string; flags: Record<string, Options>; positionals: Positional[] }

/** Every command with its flags and operands: the one table that the parser, help, the
 * shell completion scripts and the man pages are all made from. */
export function commandTable(): CommandSpec[] {
  return [
    ...Object.entries(LAUNCH_VERBS).map(([verb, d]) => ({ verb, usage: d.usage, describe: d.describe, positionals: d.positionals,
      flags: verb === 'plan' ? { ...PLAN_FLAGS, ...LAUNCH_FLAGS } : LAUNCH_FLAGS })),
    ...Object.entries(OTHER_VERBS).map(([verb, d]) => ({ verb, usage: d.usage, describe: d.describe, positionals: d.positionals, flags: d.flags })),
    { verb: 'restore', usage: RESTORE_USAGE, describe: 'restore a ctr checkpoint in a fresh container of the same IMAGE and flags; runs it as ctr exec would, to its exit status', positionals: [], flags: LAUNCH_FLAGS },
    { verb: 'instance', usage: INSTANCE_USAGE, describe: 'start, run, stop, list and get the stats of instances: containers that outlive the command that started them', positionals: [], flags: {} },
    ...Object.entries(INFO_VERBS).map(([verb, d]) => ({ verb, usage: d.usage, describe: d.describe, positionals: d.positionals, flags: {} })),
  ];
}

const RESTORE_USAGE = 'restore [flags] IMAGE DIR';

/** ctr restore [flags] IMAGE DIR: ctr exec's flags, and CRIU's restore as the command. */
async function restoreVerb(args: string[]): Promise<number> {
  const usage = { hint: `usage: ctr ${RESTORE_USAGE} (the flags and IMAGE of the checkpointed ctr exec)` };
  const { flags, image, rest } = splitAtImage(args, valueFlags(LAUNCH_FLAGS));
  let parsed: Record<string, unknown>;
  try {
    parsed = parseFlagsFast(LAUNCH_FLAGS, flags);
  } catch (err) {
    throw flagError(err, LAUNCH_FLAGS);
  }
  if (image === undefined) throw new CtrError('no image given', '', usage);
  if (rest.length !== 1) throw new CtrError(rest.length ? `unexpected argument '${rest[1]}'` : 'no checkpoint directory given', '', usage);
  const { restoreOptions } = await import('../checkpoint/commands.js');
  const { opts, command } = restoreOptions(rest[0], withSiteSettings(toLaunchOptions(parsed)));
  const { launch } = await import('./commands/launch.js');
  return launch('exec', image, command, opts);
}

const INSTANCE_USAGE = 'instance start|run [flags] IMAGE NAME [ARG...] | instance stop [--all] [-s SIGNAL] [-t SECONDS] [-F] [NAME...] | instance list [--json] [--logs] | instance stats [--json] NAME';

/** ctr instance start|stop|list (src/instance): a sub-verb, then its own flags. */
async function instanceVerb(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const usage = { hint: `usage: ctr ${INSTANCE_USAGE}` };
  if (sub === 'start' || sub === 'run') {
    const { flags, image, rest: after } = splitAtImage(rest, valueFlags(LAUNCH_FLAGS));
    let parsed: Record<string, unknown>;
    try {
      parsed = parseFlagsFast(LAUNCH_FLAGS, flags);
    } catch (err) {
      throw flagError(err, LAUNCH_FLAGS);
    }
    if (image === undefined) throw new CtrError('no image given', '', usage);
    if (after.length === 0) throw new CtrError('no instance name given', '', usage);
    const { instanceStart } = await import('../instance/commands.js');
    await instanceStart(sub, image, after[0], after.slice(1), withSiteSettings(toLaunchOptions(parsed)));
    return 0;
  }
  const table: Record<string, { alias: string; type: 'boolean' | 'string' }> = sub === 'stop'
    ? { all: { alias: 'a', type: 'boolean' }, signal: { alias: 's', type: 'string' }, timeout: { alias: 't', type: 'string' }, force: { alias: 'F', type: 'boolean' } }
    : sub === 'list' ? { json: { alias: 'j', type: 'boolean' }, logs: { alias: 'l', type: 'boolean' } } : { json: { alias: 'j', type: 'boolean' } };
  if (sub !== 'stop' && sub !== 'list' && sub !== 'stats') throw new CtrError(sub === undefined ? 'no instance command given' : `unknown instance command '${sub}'`, '', usage);
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, o] of Object.entries(table)) options[name] = { type: o.type, short: o.alias };
  let values: Record<string, unknown>, positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options, strict: true, allowPositionals: true }));
  } catch (err) {
    throw flagError(err, table);
  }
  const { instanceList, instanceStop } = await import('../instance/commands.js');
  if (sub === 'list') {
    if (positionals.length) throw new CtrError(`unexpected argument '${positionals[0]}'`, '', usage);
    instanceList(Boolean(values.json), Boolean(values.logs));
    return 0;
  }
  if (sub === 'stats') {
    if (positionals.length !== 1) throw new CtrError(positionals.length ? `unexpected argument '${positionals[1]}'` : 'no instance named', '', usage);
    const { instanceStats } = await import('../instance/stats.js');
    await instanceStats(positionals[0], Boolean(values.json));
    return 0;
  }
  if (!values.all && positionals.length === 0) throw new CtrError('no instance named', '', { hint: 'ctr instance stop NAME, or --all' });
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 0)) throw new CtrError(`--timeout ${values.timeout}`, 'not a whole number of seconds');
  await instanceStop(positionals, Boolean(values.all), values.signal as string | undefined, timeout, Boolean(values.force));
  return 0;
}

const VERBS = [...Object.keys(LAUNCH_VERBS), ...Object.keys(OTHER_VERBS), 'restore', 'instance', ...Object.keys(INFO_VERBS)];
const isHelp = (a: string) => a === '-h' || a === '--help';

/** yargs, for help only: loading it costs ~80 ms, and nothing else needs it. */
async function showHelp(verb?: string): Promise<void> {
  const { default: yargs } = await import('yargs');
  const y: Argv = yargs(verb ? [verb, '--help'] : ['--help'])
    .scriptName('ctr')
    .usage('ctr: rootless containers for HPC\n\nUsage: ctr COMMAND [flags] ...')
    .help('help').alias('help', 'h')
    .version(false)
    .exitProcess(false)
    .wrap(Math.min(100, process.stdout.columns ?? 100));
  if (!verb) {
    y.option('version', { type: 'boolean', describe: INFO_VERBS.version.describe });
    y.epilog('ctr COMMAND --help (or ctr help COMMAND) shows a command\'s flags.');
  }
  for (const [v, d] of Object.entries(LAUNCH_VERBS)) {
    y.command(v, d.describe, (b) => b.usage(`Usage: ctr ${d.usage}`).options(v === 'plan' ? { ...PLAN_FLAGS, ...LAUNCH_FLAGS } : LAUNCH_FLAGS));
  }
  for (const [v, d] of Object.entries(OTHER_VERBS)) {
    y.command(v, d.describe, (b) => {
      b.usage(`Usage: ctr ${d.usage}`).options(d.flags);
      for (const p of d.positionals) b.positional(p.name, { type: 'string', describe: p.describe });
      return b;
    });
  }
  y.command('restore', 'restore a ctr checkpoint in a fresh container of the same IMAGE and flags (ctr checkpoint PID DIR made it)',
    (b) => b.usage(`Usage: ctr ${RESTORE_USAGE}`).options(LAUNCH_FLAGS));
  y.command('instance', 'start, list and stop instances: containers that outlive the command (ctr exec instance://NAME joins one)',
    (b) => b.usage(`Usage: ctr ${INSTANCE_USAGE}`));
  for (const [v, d] of Object.entries(INFO_VERBS)) y.command(v, d.describe, (b) => b.usage(`Usage: ctr ${d.usage}`));
  await y.parseAsync();
}

/** The closest of CHOICES to WORD, if one is close enough to be what was meant. */
function didYouMean(word: string, choices: readonly string[] = VERBS): string | undefined {
  const distance = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) {
        d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
    return d[a.length][b.length];
  };
  const w = word.toLowerCase();
  const prefixed = choices.filter((v) => w.length >= 2 && v.startsWith(w));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined, bestD = Infinity;
  for (const v of choices) {
    const dv = distance(w, v);
    if (dv < bestD) [best, bestD] = [v, dv];
  }
  return best !== undefined && bestD <= Math.min(2, best.length - 2) ? best : undefined;
}

function unknownCommand(word: string): CtrError {
  const guess = didYouMean(word);
  return new CtrError(`unknown command '${word}'`, '', { hint: guess ? `did you mean ${guess}?` : 'see ctr --help' });
}

/** parseArgs' complaints in ctr's words; an unknown option gets the closest of TABLE's. */
function flagError(err: unknown, table: Record<string, Options>): CtrError {
  const hint = 'see ctr --help';
  const msg = (err as Error).message;
  const missing = /^Option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/.exec(msg);
  if (missing) return new CtrError(`option ${missing[1]}`, 'needs a value', { hint });
  const unknown = /^(?:Unknown option '|unknown option )(--[^'=\s]+)/.exec(msg);
  if (unknown) {
    const names = Object.keys(table).map((n) => `--${n}`);
    const guess = didYouMean(unknown[1], names);
    return new CtrError(`unknown option ${unknown[1]}`, '', { hint: guess ? `did you mean ${guess}?` : hint });
  }
  if (err instanceof CtrError) return err;
  const short = /^Unknown option '([^']+)'/.exec(msg);
  if (short) return new CtrError(`unknown option ${short[1]}`, '', { hint });
  const noValue = /^Option '(?:-\w, )?(--[\w-]+)[^']*' does not take an argument/.exec(msg);
  if (noValue) return new CtrError(`option ${noValue[1]}`, 'takes no value', { hint });
  return new CtrError(msg.split('\n')[0].replace(/\.$/, ''), '', { hint });
}

async function otherVerb(verb: string, v: OtherVerb, args: string[]): Promise<number> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, o] of Object.entries(v.flags)) {
    const short = [o.alias ?? []].flat().find((a) => a.length === 1);
    options[name] = { type: o.type === 'boolean' ? 'boolean' : 'string', ...(short ? { short } : {}) };
  }
  let values: Record<string, unknown>, positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true }));
  } catch (err) {
    throw flagError(err, v.flags);
  }
  const usage = { hint: `usage: ctr ${v.usage}` };
  const missing = v.positionals[positionals.length];
  if (missing) throw new CtrError(missing.missing, '', usage);
  if (positionals.length > v.positionals.length) throw new CtrError(`unexpected argument '${positionals[v.positionals.length]}'`, '', usage);
  await v.run(values, positionals);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...args] = argv;
  if (verb === undefined) throw new CtrError('no command given', '', { hint: 'see ctr --help' });
  if (isHelp(verb)) {
    await showHelp();
    return 0;
  }
  if (INFO_VERBS[verb] && args.some(isHelp)) {
    await showHelp(verb);
    return 0;
  }
  if (verb === '--version' || verb === 'version') {
    if (args.length > 0) throw new CtrError(`unexpected argument '${args[0]}'`, '', { hint: `usage: ctr ${INFO_VERBS.version.usage}` });
    const { versionCommand } = await import('./commands/version.js');
    await versionCommand();
    return 0;
  }
  if (verb === 'help') {
    const [about, extra] = args;
    if (about !== undefined && !VERBS.includes(about)) throw unknownCommand(about);
    if (extra !== undefined) throw new CtrError(`unexpected argument '${extra}'`, '', { hint: `usage: ctr ${INFO_VERBS.help.usage}` });
    await showHelp(about);
    return 0;
  }
  if (verb.startsWith('-')) throw new CtrError(`unknown option ${verb}`, '', { hint: 'see ctr --help' });

  if (verb === 'restore') {
    if (args.length === 0 || args.some(isHelp)) {
      await showHelp(verb);
      return 0;
    }
    return restoreVerb(args);
  }
  if (verb === 'instance') {
    if (args.length === 0 || isHelp(args[0])) {
      process.stdout.write(`Usage: ctr ${INSTANCE_USAGE}\n\nInstances: containers that outlive the command that starts them, each with a PID namespace of its\nown (start runs the image's startscript in it, run its runscript; output to the logs that list\n--logs names). ctr exec|run|shell instance://NAME runs in one, with the exec's own --env, --cwd,\n--cleanenv. start and run take the flags of ctr exec.\n`);
      return 0;
    }
    return instanceVerb(args);
  }
  const other = OTHER_VERBS[verb];
  if (other) {
    const end = args.indexOf('--');
    if ((end < 0 ? args : args.slice(0, end)).some(isHelp)) {
      await showHelp(verb);
      return 0;
    }
    return otherVerb(verb, other, args);
  }
  const v = LAUNCH_VERBS[verb];
  if (!v) throw unknownCommand(verb);
  const table = verb === 'plan' ? { ...PLAN_FLAGS, ...LAUNCH_FLAGS } : LAUNCH_FLAGS;
  const { flags, image, rest } = splitAtImage(args, valueFlags(table));
  // Help only among ctr's own flags: `ctr exec IMG ls --help` is the command's.
  if (flags.some(isHelp)) {
    await showHelp(verb);
    return 0;
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = parseFlagsFast(table, flags);
  } catch (err) {
    throw flagError(err, table);
  }
  if (image === undefined) throw new CtrError('no image given', '', { hint: `usage: ctr ${v.usage}` });
  if (v.needsCommand && rest.length === 0) throw new CtrError('no command given', '', { hint: `usage: ctr ${v.usage}` });
  const opts = withSiteSettings(toLaunchOptions(parsed));
  if (verb === 'plan') {
    if (parsed['for-nodes'] === true) opts.forNodes = true;
    const { writePlan } = await import('./commands/plan.js');
    const action = parsed.action as Action;
    if (opts.app !== undefined && action !== 'shell') {
      const { appAction } = await import('../image/scif.js');
      await writePlan(parsed.output as string, 'exec', image, ['/bin/sh', '-c', appAction(action), 'ctr-app', ...rest], opts);
      return 0;
    }
    await writePlan(parsed.output as string, action, image, rest, opts);
    return 0;
  }
  if (image.startsWith('instance://')) {
    if (verb !== 'exec' && verb !== 'run' && verb !== 'shell') throw new CtrError(`${verb} ${image}`, 'only exec, run and shell run in an instance', { hint: `ctr exec ${image} COMMAND` });
    const { checkInstanceFlags } = await import('../plan/instance.js');
    checkInstanceFlags(image, givenFlags(table, parsed));
    const { instanceExec } = await import('../instance/commands.js');
    return instanceExec(verb, image.slice('instance://'.length), rest, opts);
  }
  const { launch } = await import('./commands/launch.js');
  // --app NAME: the app's runscript, test, or the command, after a check that it is there.
  if (opts.app !== undefined && verb !== 'shell') {
    const { appAction } = await import('../image/scif.js');
    return launch('exec', image, ['/bin/sh', '-c', appAction(verb as 'run' | 'exec' | 'test'), 'ctr-app', ...rest], opts);
  }
  // ctr test: Apptainer's test action (its /.singularity.d/actions/test), as an exec.
  if (verb === 'test') return launch('exec', image, ['/bin/sh', '-c', TEST_ACTION, '/.singularity.d/test', ...rest], opts);
  return launch(verb as Action, image, rest, opts);
}

/** The flags of TABLE that PARSED has other than at their defaults. */
function givenFlags(table: Record<string, Options>, parsed: Record<string, unknown>): string[] {
  return Object.keys(parsed).filter((k) => k in table && JSON.stringify(parsed[k]) !== JSON.stringify(table[k].default));
}

/** Run ctr with ARGV (without node and script); sets process.exitCode, never throws. */
export async function runCli(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    if (err instanceof CtrError) {
      process.stderr.write(errorLines(err.message, err.hint));
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(errorLines(`internal error (a bug; please report it): ${(err as Error)?.stack ?? err}`));
      process.exitCode = EXIT_CTR_FAILURE;
    }
  }
}
