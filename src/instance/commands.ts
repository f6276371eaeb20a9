// ctr instance start|stop|list, and the join of `ctr exec instance://NAME CMD`.
//
// An instance is a container whose first rank is a keeper: the image's startscript (in
// the background) and a wait that ends only by signal. Started with the join machinery
// (native/launch_join.c: --join on, a tag of the instance's own), its holder owns the
// namespaces and leaves when the last process in it exits; `exec instance://NAME` runs the
// same plan words with another command and so joins that container. No daemon: the keeper
// runs in a session of its own (setsid) and outlives the shell that started it; under
// Slurm it is one of the job's processes and ends with the job.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readlinkSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { constants } from 'node:os';
import { CtrError } from '../errors.js';
import type { LaunchOptions } from '../plan/options.js';
import { launcherPath, planDescriptor, runLauncher, sendPlan } from '../launch/launcher.js';
import { alive, checkName, find, list, remove, save, signalSession, startTime, stateDir, type Instance } from './state.js';

/** The keeper: $@ are the startscript's arguments. TERM/INT end it and what it started. */
const KEEPER = '[ -x /.singularity.d/startscript ] && /.singularity.d/startscript "$@" &\n' +
  "trap 'kill 0 2>/dev/null; exit 0' TERM INT HUP\nwhile :; do sleep 86400 & wait $!; done\n";
/** With --app NAME: the app's %appstart instead; an app without one does not start. */
const APP_KEEPER = '__s="/scif/apps/$SINGULARITY_APPNAME/scif/startscript"\n' +
  '[ -x "$__s" ] || { echo "ctr: error: app $SINGULARITY_APPNAME: no startscript ($__s)" >&2; exit 1; }\n' +
  KEEPER.replace('[ -x /.singularity.d/startscript ] && /.singularity.d/startscript', '"$__s"');

export async function instanceStart(imageArg: string, name: string, args: string[], opts: LaunchOptions): Promise<void> {
  checkName(name);
  // An instance's processes join its holder's namespaces, with no PID namespace of their
  // own: CRIU could not restore them at their PIDs (native/launch_criu.c).
  if (opts.checkpointable) throw new CtrError('instance start --checkpointable', 'instances cannot be checkpointed (they have no PID namespace of their own)', { hint: 'ctr exec --checkpointable IMAGE COMMAND &, then ctr checkpoint $! DIR' });
  const dir = stateDir();
  if (find(dir, name)) throw new CtrError(`instance ${name}`, 'already running', { hint: `ctr instance stop ${name}` });
  const { openImage } = await import('../image/open.js');
  const { gatherHostFacts } = await import('../host/facts.js');
  const { composePlan } = await import('../plan/compose.js');
  const image = await openImage(imageArg);
  if (opts.app !== undefined) {
    // Known before anything starts: the app, and its %appstart (read without mounting).
    const { inspectImage } = await import('../inspect/inspect.js');
    const i = await inspectImage(image.path, new Set(['startscript']), { app: opts.app });
    if (!i.apps?.[opts.app]?.startscript) throw new CtrError(`instance ${name}`, `app ${opts.app} has no startscript (%appstart ${opts.app})`);
  }
  const host = await gatherHostFacts(opts, image.kind !== 'dir', image.kind === 'dir' ? image.path : undefined);
  const env = [...opts.env, `APPTAINER_INSTANCE=${name}`, `SINGULARITY_INSTANCE=${name}`];
  const words = composePlan('exec', image, { ...opts, env, join: 'on', joinTag: `instance.${name}` }, host).args;
  const log = join(dir, `${name}.log`);
  const out = openSync(log, 'w', 0o600);
  const child = spawn(launcherPath(), [...words, '--', '/bin/sh', '-c', opts.app === undefined ? KEEPER : APP_KEEPER, 'ctr-instance', ...args], {
    detached: true, stdio: ['ignore', out, out],
  });
  closeSync(out);
  const pid = child.pid!;
  child.unref();
  // Ready once the launcher has joined its container and become the keeper's shell.
  const launcher = launcherPath();
  for (let waited = 0; ; waited += 50) {
    let exe: string | undefined;
    try { exe = readlinkSync(`/proc/${pid}/exe`); } catch { exe = undefined; }
    if (exe === undefined || startTime(pid) === undefined) {
      const why = readFileSync(log, 'utf8').trim().split('\n').slice(-3).join('; ');
      throw new CtrError(`instance ${name}`, `did not start${why ? `: ${why}` : ''}`);
    }
    if (exe !== launcher && !exe.endsWith('/ctr-launch')) break;
    if (waited > 60000) throw new CtrError(`instance ${name}`, 'did not start within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  save(dir, { name, pid, started: startTime(pid)!, image: resolve(image.path), words, log });
}

/** `ctr exec instance://NAME CMD`: the instance's plan words and CMD. */
export async function instanceExec(name: string, command: string[]): Promise<number> {
  const i = find(stateDir(), checkName(name));
  if (!i) throw new CtrError(`instance ${name}`, 'not running', { hint: 'ctr instance list' });
  const words = [...i.words, '--', ...command];
  const fd = planDescriptor();
  return fd !== undefined ? sendPlan(fd, words) : runLauncher(words);
}

export async function instanceStop(names: string[], all: boolean, signal = 'TERM'): Promise<void> {
  const dir = stateDir();
  const sig = `SIG${signal.replace(/^SIG/i, '').toUpperCase()}`;
  if (!(sig in constants.signals) && !/^\d+$/.test(signal)) throw new CtrError(`signal ${signal}`, 'unknown');
  const running = list(dir);
  const targets = all ? running : names.map((n) => {
    const i = running.find((r) => r.name === checkName(n));
    if (!i) throw new CtrError(`instance ${n}`, 'not running', { hint: 'ctr instance list' });
    return i;
  });
  for (const i of targets) signalSession(i, /^\d+$/.test(signal) ? Number(signal) : sig as NodeJS.Signals);
  for (const i of targets) {
    for (let waited = 0; alive(i) && waited < 10000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    if (alive(i)) throw new CtrError(`instance ${i.name}`, `still running 10 s after SIG${sig.replace(/^SIG/, '')}`, { hint: `ctr instance stop -s KILL ${i.name}` });
    remove(dir, i.name);
  }
}

export function instanceList(json: boolean): void {
  const running: Instance[] = list(stateDir());
  if (json) {
    process.stdout.write(JSON.stringify({ instances: running.map((i) => ({ instance: i.name, pid: i.pid, img: i.image, logOutPath: i.log })) }, null, 2) + '\n');
    return;
  }
  const rows = [['INSTANCE NAME', 'PID', 'IMAGE'], ...running.map((i) => [i.name, String(i.pid), i.image])];
  const w = [0, 1].map((c) => Math.max(...rows.map((r) => r[c].length)) + 4);
  for (const r of rows) process.stdout.write(`${r[0].padEnd(w[0])}${r[1].padEnd(w[1])}${r[2]}\n`);
}
