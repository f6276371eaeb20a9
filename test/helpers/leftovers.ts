// "Nothing is left mounted or running afterwards": every process of the test user is
// gone (the FUSE server and the command included; the mounts live in namespaces that
// die with their last process).
import { execa } from 'execa';
import { TEST_USER } from './user.js';

/**
 * The test user's processes, zombies left out: a killed FUSE server is reparented to
 * PID 1, which on these machines reaps only now and then, and a zombie runs nothing and
 * holds no namespace or mount.
 */
export async function userProcesses(user = TEST_USER): Promise<string[]> {
  const r = await execa('ps', ['-u', user, '-o', 'pid=,stat=,comm='], { reject: false });
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l && !/^\d+\s+Z/.test(l));
}

/** Processes of the test user still alive after a grace period (PDEATHSIG is asynchronous). */
export async function leftovers(graceMs = 3000, user = TEST_USER): Promise<string[]> {
  const until = Date.now() + graceMs;
  for (;;) {
    const procs = await userProcesses(user);
    if (procs.length === 0 || Date.now() > until) return procs;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Kill anything a failed test left, so the next test starts clean. */
export async function killUserProcesses(): Promise<void> {
  await execa('pkill', ['-KILL', '-u', TEST_USER], { reject: false });
}
