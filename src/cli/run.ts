// ctr's command line. Command modules only parse flags and call; the work lives in
// src/plan (pure), src/image, src/host and src/launch (the parts that touch the system).
// Entry points: main.ts (plain Node) and snapshot.ts (the start-up snapshot, bin/ctr).
import type { Argv, Options } from 'yargs';
import { CtrError, EXIT_CTR_FAILURE } from '../errors.js';
import { LAUNCH_FLAGS, parseFlagsFast, splitAtImage, toLaunchOptions, valueFlags } from './launch-flags.js';
import type { Action } from '../plan/options.js';

const LAUNCH_VERBS: Record<string, { usage: string; describe: string; needsCommand: boolean }> = {
  exec: { usage: 'exec [flags] IMAGE COMMAND [ARG...]', describe: 'run a command in a container', needsCommand: true },
  run: { usage: 'run [flags] IMAGE [ARG...]', describe: "run the image's runscript", needsCommand: false },
  shell: { usage: 'shell [flags] IMAGE', describe: 'start an interactive shell in a container', needsCommand: false },
  plan: { usage: 'plan -o FILE [flags] IMAGE [COMMAND [ARG...]]', describe: 'write an executable plan file that launches without Node', needsCommand: false },
};

const PLAN_FLAGS = {
  output: { alias: 'o', type: 'string', demandOption: true, describe: 'plan file to write' },
  action: { type: 'string', choices: ['exec', 'run', 'shell'], default: 'exec', describe: 'what the plan does' },
} satisfies Record<string, Options>;

async function parser(args: string[]): Promise<Argv> {
  const { default: yargs } = await import('yargs');
  const y = yargs(args)
    .scriptName('ctr')
    .usage('ctr: rootless containers for HPC\n\nUsage: ctr COMMAND [flags] ...')
    .strict()
    .help()
    .version()
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw usageError(msg);
    })
    .demandCommand(1, 'no command given');
  for (const [verb, v] of Object.entries(LAUNCH_VERBS)) {
    y.command(verb, v.describe, (b) =>
      b.usage(`Usage: ctr ${v.usage}`).options(verb === 'plan' ? { ...PLAN_FLAGS, ...LAUNCH_FLAGS } : LAUNCH_FLAGS));
  }
  y.command('build [flags] OUT SOURCE', 'build a SIF image from a directory, tarball, SquashFS file or definition file', (b) => b
    .positional('OUT', { type: 'string', describe: 'SIF file to write' })
    .positional('SOURCE', { type: 'string', describe: 'directory, rootfs tarball (.tar, .tar.gz, .tar.zst), SquashFS file, definition file, or docker://, oci:, oci-archive:, docker-archive: reference' })
    .options({
      force: { alias: 'F', type: 'boolean', default: false, describe: 'overwrite OUT' },
      compress: { type: 'string', describe: 'compressor[:level]: gzip, xz, lzo, lz4, zstd (default zstd:3)' },
      https: { type: 'boolean', default: true, describe: 'HTTPS to registries (--no-https: plain HTTP, for docker:// sources and Bootstrap: docker)' },
    }), async (a) => {
    const { buildCommand } = await import('./commands/build.js');
    await buildCommand(a.OUT as string, a.SOURCE as string, Boolean(a.force), a.compress as string | undefined, !a.https);
  });
  y.command('inspect [flags] IMAGE', 'show what is in an image, without mounting it', (b) => b
    .positional('IMAGE', { type: 'string' })
    .options({ json: { type: 'boolean', default: false, describe: 'print JSON' } }), async (a) => {
    const { inspectCommand } = await import('./commands/inspect.js');
    await inspectCommand(a.IMAGE as string, Boolean(a.json));
  });
  y.command('pull [flags] OUT REF', 'pull an OCI/Docker image into a SIF file', (b) => b
    .positional('OUT', { type: 'string', describe: 'SIF file to write' })
    .positional('REF', { type: 'string', describe: 'docker://REGISTRY/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:PATH or docker-archive:PATH' })
    .options({
      force: { alias: 'F', type: 'boolean', default: false, describe: 'overwrite OUT' },
      https: { type: 'boolean', default: true, describe: 'use HTTPS (--no-https: plain HTTP); a private CA: NODE_EXTRA_CA_CERTS=ca.pem' },
      arch: { type: 'string', describe: 'platform to pick from a multi-arch image (default: the host)' },
    }), async (a) => {
    const { pullCommand } = await import('./commands/pull.js');
    await pullCommand(a.OUT as string, a.REF as string, { https: Boolean(a.https), arch: a.arch as string | undefined, force: Boolean(a.force) });
  });
  return y;
}

function usageError(msg: string): CtrError {
  const unknown = /^Unknown arguments?: (.*)$/.exec(msg);
  if (unknown) {
    const names = unknown[1].split(', ').map((n) => (n.length === 1 ? `-${n}` : `--${n}`));
    return new CtrError(`unknown option ${names.join(', ')}`, '', { hint: 'see ctr --help' });
  }
  return new CtrError(msg.replace(/\.$/, '').toLowerCase(), '', { hint: 'see ctr --help' });
}

async function main(argv: string[]): Promise<number> {
  const verb = argv[0];
  const v = verb ? LAUNCH_VERBS[verb] : undefined;
  if (!v || argv.includes('--help') && splitAtImage(argv.slice(1), new Set()).image === undefined) {
    await (await parser(argv)).parseAsync();
    return 0;
  }
  const table = verb === 'plan' ? { ...PLAN_FLAGS, ...LAUNCH_FLAGS } : LAUNCH_FLAGS;
  const { flags, image, rest } = splitAtImage(argv.slice(1), valueFlags(table));
  const parsed = parseFlagsFast(table, flags);
  if (image === undefined) throw new CtrError('no image given', '', { hint: `usage: ctr ${v.usage}` });
  if (v.needsCommand && rest.length === 0) throw new CtrError('no command given', '', { hint: `usage: ctr ${v.usage}` });
  const opts = toLaunchOptions(parsed);
  if (verb === 'plan') {
    const { writePlan } = await import('./commands/plan.js');
    await writePlan(parsed.output as string, parsed.action as Action, image, rest, opts);
    return 0;
  }
  const { launch } = await import('./commands/launch.js');
  return launch(verb as Action, image, rest, opts);
}

/** Run ctr with ARGV (without node and script); sets process.exitCode, never throws. */
export async function runCli(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    if (err instanceof CtrError) {
      process.stderr.write(`ctr: error: ${err.message}\n`);
      if (err.hint) process.stderr.write(`ctr: hint: ${err.hint}\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(`ctr: error: internal error (a bug; please report it): ${(err as Error)?.stack ?? err}\n`);
      process.exitCode = EXIT_CTR_FAILURE;
    }
  }
}
