// Hand the plan to ctr-launch and stand aside: it becomes the command (execve), so the
// command's exit status, stdio and terminal are its own. Node stays only to relay
// signals sent to it (kill, Slurm) and to pass the status on.
import { spawn } from 'node:child_process';
import { constants as os } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CtrError } from '../errors.js';

/** $CTR_LAUNCHER, else the one built beside this package (native/build/ctr-launch). */
export function launcherPath(): string {
  return process.env.CTR_LAUNCHER ?? fileURLToPath(new URL('../../../native/build/ctr-launch', import.meta.url));
}

const RELAYED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGCONT', 'SIGWINCH'];

/** Run the launcher with ARGS; resolves to the exit status ctr should give (128+N for a signal). */
export function runLauncher(args: string[]): Promise<number> {
  const launcher = launcherPath();
  return new Promise((resolve, reject) => {
    // MPICH's Hydra names no job: the launcher recognises the ranks of one step by their
    // common parent, which is ours, not Node's.
    const child = spawn(launcher, args, { stdio: 'inherit', env: { ...process.env, CTR_PARENT_PID: String(process.ppid) } });
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
    const done = () => handlers.forEach(([sig, h]) => process.off(sig, h));
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
