// Leave nothing behind. What a long command (build, pull) makes is named here as it is
// made, and removed when the command ends, fails, or is interrupted: on SIGINT/SIGTERM
// the launchers it started are killed first (a build's %post runs in the launcher's PID
// namespace, so the launcher takes every process of the section along: launch_init.c),
// then the files go, then one line and exit 130/143.
import { execa } from 'execa';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { errorLines } from '../errors.js';
import { killLaunchers } from '../launch/launcher.js';

export class Cleanup {
  private readonly dirs: string[] = [];
  private readonly files: Array<() => Iterable<string>> = [];
  private stopped = false;
  private readonly onSignal = (sig: NodeJS.Signals) => {
    this.stopped = true;
    killLaunchers();
    void this.run().finally(() => {
      // On a terminal a progress line may be open (\r-updated): end it first.
      process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}${errorLines(`${this.what} interrupted (${sig})`)}`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  };

  /** WHAT names the command in the interruption's line ("build", "pull"). */
  constructor(private readonly what: string) {
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /** Whether a signal stopped us: what fails now failed because of it, and is not news. */
  get interrupted(): boolean {
    return this.stopped;
  }

  /** A temporary tree, removed even if what ran in it left it read-only. */
  dir(path: string): void {
    this.dirs.push(path);
  }

  /** Files to remove, asked for at the end (some are known only then: blobs in flight). */
  file(paths: () => Iterable<string>): void {
    this.files.push(paths);
  }

  /** Another process (the build in its namespace) does the work and the clean-up. */
  disarm(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }

  async run(): Promise<void> {
    this.disarm();
    for (const list of this.files.splice(0)) for (const p of list()) rmSync(p, { force: true });
    for (const d of this.dirs.splice(0)) {
      // %post may leave read-only directories; make them writable to remove them.
      await execa('chmod', ['-R', 'u+rwX', d], { reject: false });
      await rm(d, { recursive: true, force: true });
    }
  }
}
