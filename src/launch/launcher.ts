// Hand the plan to ctr-launch: down the pipe of the launcher that started Node to ask
// for it (bin/ctr: ctr-launch --ask; sendPlan), or by starting the launcher with it
// (plain Node; runLauncher). Either way the launcher becomes the command (execve), so
// the command's exit status, stdio and terminal are its own; in the second, Node stays
// to relay signals sent to it (kill, Slurm) and to pass the status on.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, writeSync } from 'node:fs';
import { constants as os } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CtrError } from '../errors.js';
import { inputsDescriptor, takeInputs } from './inputs.js';

let installRoot: string | undefined;

/** Where ctr is installed, for code that can't know it from its own URL (the start-up
 * snapshot, src/cli/snapshot.ts, is one bundled script made elsewhere). */
export function setInstallRoot(root: string): void {
  installRoot = root;
}

/** The data files that ship with ctr (data/: the GPU name lists). */
export function dataDir(): string {
  if (installRoot) return `${installRoot}/data`;
  return fileURLToPath(new URL('../../../data', import.meta.url));
}

/** Whether this process started from the start-up snapshot (its entry sets the root). */
export function fromSnapshot(): boolean {
  return installRoot !== undefined;
}

/** $CTR_LAUNCHER, else the one built beside this package (native/build/ctr-launch). */
export function launcherPath(): string {
  if (process.env.CTR_LAUNCHER) return process.env.CTR_LAUNCHER;
  if (installRoot) return `${installRoot}/native/build/ctr-launch`;
  return fileURLToPath(new URL('../../../native/build/ctr-launch', import.meta.url));
}

/**
 * Descriptors that process managers hand a rank by number, passed on at the same number
 * as an exec would keep them (Node marks every descriptor close-on-exec at start-up, so
 * which ones were inherited can't be told from their flags): MPICH's Hydra and Slurm's
 * PMI-2 talk to a rank on PMI_FD, Hydra's proxy also on HYDI_CONTROL_FD, make's jobserver
 * on the pair in MAKEFLAGS; CTR_PASS_FDS names any others (comma list).
 */
export function inheritedStdio(env: NodeJS.ProcessEnv = process.env): Array<'inherit' | 'ignore' | number> {
  const stdio: Array<'inherit' | 'ignore' | number> = ['inherit', 'inherit', 'inherit'];
  const fds = [env.PMI_FD, env.HYDI_CONTROL_FD, ...(env.CTR_PASS_FDS ?? '').split(',')];
  const jobserver = /--jobserver-(?:auth|fds)=(\d+),(\d+)/.exec(env.MAKEFLAGS ?? '');
  if (jobserver) fds.push(jobserver[1], jobserver[2]);
  for (const v of fds) {
    const fd = Number(v);
    if (!v || !Number.isInteger(fd) || fd < 3 || fd > 1024) continue;
    try {
      fstatSync(fd);
    } catch {
      continue; // named but not open: nothing to pass
    }
    while (stdio.length < fd) stdio.push('ignore');
    stdio[fd] = fd;
  }
  return stdio;
}

const RELAYED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGCONT', 'SIGWINCH'];

/**
 * The launcher that started us to plan (`ctr-launch --ask`, from bin/ctr) reads the plan
 * on this descriptor: undefined when Node was started some other way.
 */
export function planDescriptor(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const fd = Number(env.CTR_PLAN_FD);
  return env.CTR_PLAN_FD && Number.isInteger(fd) && fd > 2 ? fd : undefined;
}

/**
 * Hand ARGS (plan words, `--`, command) to the launcher waiting on FD, as NUL-ended words;
 * then, when it asked for them (its plan cache), what planning read (inputs.ts).
 */
export function sendPlan(fd: number, args: string[]): number {
  const inputs = inputsDescriptor();
  const words = inputs !== undefined ? takeInputs() : [];
  try {
    writeWords(fd, args);
    if (inputs !== undefined) writeWords(inputs, words);
  } catch (err) {
    throw new CtrError('handing the plan to the launcher', String((err as Error).message));
  }
  return 0;
}

function writeWords(fd: number, words: string[]): void {
  const data = Buffer.from(words.map((a) => `${a}\0`).join(''));
  for (let done = 0; done < data.length;) done += writeSync(fd, data, done);
  closeSync(fd);
}

/** The launchers runLauncher() started that have not exited yet. */
const running = new Set<ChildProcess>();

/** SIGKILL every launcher still running: with a PID namespace, all its processes go too. */
export function killLaunchers(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Run the launcher with ARGS; resolves to the exit status ctr should give (128+N for a signal). */
export function runLauncher(args: string[]): Promise<number> {
  const launcher = launcherPath();
  return new Promise((resolve, reject) => {
    // MPICH's Hydra names no job: the launcher recognises the ranks of one step by their
    // common parent, which is ours, not Node's.
    const child = spawn(launcher, args, { stdio: inheritedStdio(), env: { ...process.env, CTR_PARENT_PID: String(process.ppid) } });
    running.add(child);
    // From a terminal, Ctrl-C already reaches the command (same process group); relaying
    // it too would deliver it twice. A SIGINT sent with kill(1) in a batch job is relayed.
    const handlers = RELAYED.map((sig) => {
      const h = () => {
        if (sig === 'SIGINT' && process.stdin.isTTY) return;
        child.kill(sig);
      };
      process.on(sig, h);
      return [sig, h] as const;
    });
    const done = () => {
      running.delete(child);
      handlers.forEach(([sig, h]) => process.off(sig, h));
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      done();
      reject(new CtrError(`cannot run launcher ${launcher}`, err.code === 'ENOENT' ? 'not found (run npm run build)' : err.message));
    });
    child.on('exit', (code, signal) => {
      done();
      resolve(signal ? 128 + (os.signals[signal] ?? 0) : code ?? 0);
    });
  });
}
