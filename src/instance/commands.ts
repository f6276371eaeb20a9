// ctr instance start|run|stop|list|stats, and the join of `ctr exec|run|shell instance://NAME`.
//
// An instance is a shared container (native/launch_join.c, --join-instance) with a PID
// namespace of its own: its holder builds the container and forks its init, PID 1, and
// `instance start` joins it to run the image's startscript (`instance run`: the
// runscript), with its output in the instance's logs. Every `exec instance://NAME` joins
// the same container and PID namespace, planned from the instance's words and options
// with the exec's own per-process flags (plan/instance.ts). No daemon: the holder and init
// run in a session of their own and outlive the shell that started them; under Slurm they
// are the job's processes and end with it. Stopping an instance is signalling its init.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { CtrError } from '../errors.js';
import type { Action, LaunchOptions } from '../plan/options.js';
import { launcherPath, planDescriptor, runLauncher, sendPlan } from '../launch/launcher.js';
import { alive, checkName, find, list, logPaths, remove, save, signalInit, startTime, stateDir, type Instance } from './state.js';

/** instance start's command: the startscript, when the image has one, with the arguments. */
const STARTSCRIPT = '[ -x /.singularity.d/startscript ] && exec /.singularity.d/startscript "$@"; exit 0';
/** With --app NAME: the app's %appstart (checked to be there before the start). */
const APP_STARTSCRIPT = 'exec "/scif/apps/$SINGULARITY_APPNAME/scif/startscript" "$@"';
/** How long `instance stop` waits after the signal before it kills (Apptainer's default). */
export const STOP_TIMEOUT_S = 10;

async function planFor(action: Action, imageArg: string, opts: LaunchOptions) {
  const { openImage } = await import('../image/open.js');
  const { resolveImageArg } = await import('../cli/commands/image-arg.js');
  const { gatherHostFacts } = await import('../host/facts.js');
  const { composePlan } = await import('../plan/compose.js');
  const image = await openImage(await resolveImageArg(imageArg, opts));
  const host = await gatherHostFacts(opts, image.kind !== 'dir', image.kind === 'dir' ? image.path : undefined);
  return { image, plan: composePlan(action, image, opts, host) };
}

/** The init's pid, as the launcher writes it on --ready-fd once it has joined; undefined
 * when the descriptor closes first (the launcher failed: its words are in the log). */
function readyPid(stream: Readable): Promise<number | undefined> {
  return new Promise((res) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      text += d;
      if (text.includes('\n')) res(/^\d+\n$/.test(text) ? Number(text.trim()) : undefined);
    });
    stream.on('end', () => res(undefined));
    stream.on('error', () => res(undefined));
  });
}

export async function instanceStart(kind: 'start' | 'run', imageArg: string, name: string, args: string[], opts: LaunchOptions): Promise<void> {
  checkName(name);
  // An instance's PID namespace is its holder's, made before any checkpointable command
  // could be PID 100 in it: CRIU could not restore it at its PIDs (native/launch_criu.c).
  if (opts.checkpointable) throw new CtrError('instance start --checkpointable', 'instances cannot be checkpointed: ctr checkpoint takes a container of ctr exec --checkpointable', { hint: 'ctr exec --checkpointable IMAGE COMMAND &, then ctr checkpoint $! DIR' });
  const dir = stateDir();
  if (find(dir, name)) throw new CtrError(`instance ${name}`, 'already running', { hint: `ctr instance stop ${name}` });
  const instOpts: LaunchOptions = { ...opts, env: [...opts.env, `APPTAINER_INSTANCE=${name}`, `SINGULARITY_INSTANCE=${name}`], join: 'on', joinTag: `instance.${name}`, joinInstance: true };
  // The launcher writes the init's pid on descriptor 3 once it has joined the instance.
  const { image, plan } = await planFor(kind === 'run' && opts.app === undefined ? 'run' : 'exec', imageArg, { ...instOpts, readyFd: 3 });
  const words = plan.args;
  if (opts.app !== undefined && kind === 'start') {
    // Known before anything starts: the app, and its %appstart (read without mounting).
    const { inspectImage } = await import('../inspect/inspect.js');
    const i = await inspectImage(image.path, new Set(['startscript']), { app: opts.app });
    if (!i.apps?.[opts.app]?.startscript) throw new CtrError(`instance ${name}`, `app ${opts.app} has no startscript (%appstart ${opts.app})`);
  }
  let command: string[];
  if (opts.app !== undefined) {
    const { appAction } = await import('../image/scif.js');
    command = ['/bin/sh', '-c', kind === 'run' ? appAction('run') : APP_STARTSCRIPT, 'ctr-instance', ...args];
  } else command = kind === 'run' ? args : ['/bin/sh', '-c', STARTSCRIPT, 'ctr-instance', ...args];
  const logs = logPaths(name);
  // Each start writes logs of its own until it holds the name: two starts at once would
  // truncate each other's. The winner's are renamed into place (its processes keep
  // writing to them), a loser's removed.
  const mine = { out: `${logs.out}.${process.pid}`, err: `${logs.err}.${process.pid}` };
  const out = openSync(mine.out, 'w', 0o600), err = openSync(mine.err, 'w', 0o600);
  const child = spawn(launcherPath(), [...words, '--', ...command], {
    detached: true, stdio: ['ignore', out, err, 'pipe'],
  });
  closeSync(out);
  closeSync(err);
  child.unref();
  const pipe = child.stdio[3] as Readable;
  const pid = await readyPid(pipe);
  pipe.destroy();
  const started = pid !== undefined ? startTime(pid) : undefined;
  if (pid === undefined || started === undefined) {
    const why = readFileSync(mine.err, 'utf8').trim().split('\n').filter((l) => l.startsWith('ctr: ')).slice(-2).join('; ');
    // Another start of the name won the race (the launcher found its container).
    if (why.includes(`instance ${name}: already running`)) {
      rmSync(mine.out, { force: true });
      rmSync(mine.err, { force: true });
      throw new CtrError(`instance ${name}`, 'already running', { hint: `ctr instance stop ${name}` });
    }
    renameSync(mine.out, logs.out);
    renameSync(mine.err, logs.err);
    throw new CtrError(`instance ${name}`, `did not start${why ? `: ${why.replace(/^ctr: error: /, '')}` : ''}`, { hint: `see ${logs.err}` });
  }
  renameSync(mine.out, logs.out);
  renameSync(mine.err, logs.err);
  save(dir, { name, pid, started, image: resolve(image.path), action: kind, words, opts: instOpts, logOut: logs.out, logErr: logs.err });
}

/** `ctr exec|run|shell [FLAGS] instance://NAME CMD`: the instance's container, the exec's
 * own environment, working directory and command. */
export async function instanceExec(action: Action, name: string, command: string[], opts: LaunchOptions): Promise<number> {
  const i = find(stateDir(), checkName(name));
  if (!i) throw new CtrError(`instance ${name}`, 'not running', { hint: 'ctr instance list' });
  const { joinInstanceWords } = await import('../plan/instance.js');
  const { shellCommand } = await import('../plan/compose.js');
  // The instance's mounts and namespaces, the exec's environment and working directory
  // (--cwd, else where it is run from; where the container lacks that: /, with a warning).
  const mine: LaunchOptions = {
    ...i.opts, cleanenv: opts.cleanenv, env: [...opts.env, `APPTAINER_INSTANCE=${name}`, `SINGULARITY_INSTANCE=${name}`],
    envFiles: opts.envFiles, noEval: opts.noEval, noEnv: opts.noEnv, pwd: opts.pwd, debug: opts.debug, shell: opts.shell, noUmask: opts.noUmask,
  };
  const { plan } = await planFor(action, i.image, mine);
  const words = [...joinInstanceWords(i.words, plan.args), '--', ...shellCommand(action, mine, command)];
  const fd = planDescriptor();
  return fd !== undefined ? sendPlan(fd, words) : runLauncher(words);
}

function signalNumber(signal: string): NodeJS.Signals | number {
  if (/^\d+$/.test(signal)) return Number(signal);
  const sig = `SIG${signal.replace(/^SIG/i, '').toUpperCase()}`;
  if (!(sig in constants.signals)) throw new CtrError(`signal ${signal}`, 'unknown', { hint: 'a name such as TERM, INT, KILL, or a number' });
  return sig as NodeJS.Signals;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Signal each instance's init (it passes the signal on); what has not ended TIMEOUT s
 * later is killed, as Apptainer does (-F: at once). */
export async function instanceStop(names: string[], all: boolean, signal = 'TERM', timeoutS = STOP_TIMEOUT_S, force = false): Promise<void> {
  const dir = stateDir();
  const sig = force ? 'SIGKILL' : signalNumber(signal);
  const running = list(dir);
  const targets = all ? running : names.map((n) => {
    const i = running.find((r) => r.name === checkName(n));
    if (!i) throw new CtrError(`instance ${n}`, 'not running', { hint: 'ctr instance list' });
    return i;
  });
  for (const i of targets) signalInit(i, sig);
  const deadline = Date.now() + timeoutS * 1000;
  for (const i of targets) {
    while (alive(i) && Date.now() < deadline) await sleep(20);
    if (alive(i)) {
      process.stderr.write(`ctr: note: instance ${i.name} still running ${timeoutS} s after the signal: killed\n`);
      signalInit(i, 'SIGKILL');
      for (let n = 0; alive(i) && n < 250; n++) await sleep(20);
    }
    remove(dir, i.name);
  }
}

export function instanceList(json: boolean, logs: boolean): void {
  const running: Instance[] = list(stateDir());
  if (json) {
    process.stdout.write(JSON.stringify({ instances: running.map((i) => ({ instance: i.name, pid: i.pid, img: i.image, logErrPath: i.logErr, logOutPath: i.logOut })) }, null, 2) + '\n');
    return;
  }
  const head = ['INSTANCE NAME', 'PID', logs ? 'LOGS' : 'IMAGE'];
  const rows = [[head], ...running.map((i) => logs ? [[i.name, String(i.pid), i.logErr], ['', '', i.logOut]] : [[i.name, String(i.pid), i.image]])].flat();
  const w = [0, 1].map((c) => Math.max(...rows.map((r) => r[c].length)) + 4);
  for (const r of rows) process.stdout.write(`${r[0].padEnd(w[0])}${r[1].padEnd(w[1])}${r[2]}\n`);
}
