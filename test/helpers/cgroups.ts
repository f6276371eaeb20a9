// The site administrator's part of resource limits, played by the (root) harness: a cgroup
// directory per v1 hierarchy delegated to the test user (made and chowned, as Slurm's
// task/cgroup does for a step), under the harness's own cgroup so that whatever limits
// it runs under still apply, and a site config naming it (cgroup-root, relative). Also a
// loop device the user may read and write, for the I/O limits.
import { execa } from 'execa';
import { chown, mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TEST_USER, userIds } from './user.js';

export const CONTROLLERS = ['memory', 'cpu', 'pids', 'blkio', 'cpuset'];

export interface Delegation {
  /** The config file to point CTR_CONFIG at. */
  config: string;
  /** The delegated directory of each controller. */
  dirs: Record<string, string>;
  undo(): Promise<void>;
}

/** Our own cgroup in CONTROLLER's v1 hierarchy, from /proc/self/cgroup. */
async function ownCgroup(controller: string): Promise<string> {
  const text = await readFile('/proc/self/cgroup', 'utf8');
  const line = text.split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
  if (!line) throw new Error(`no cgroup v1 ${controller} hierarchy here (/proc/self/cgroup): these tests need one`);
  return line.split(':')[2].replace(/\/$/, '');
}

/** Delegate NAME under our own cgroup of every controller to the test user; CONFIG_DIR holds the config. */
export async function delegateCgroups(configDir: string, name = `ctr-test-${TEST_USER}`): Promise<Delegation> {
  const { uid, gid } = await userIds();
  const dirs: Record<string, string> = {};
  for (const c of CONTROLLERS) {
    const own = await ownCgroup(c);
    const dir = `/sys/fs/cgroup/${c}${own}/${name}`;
    await mkdir(dir, { recursive: true });
    if (c === 'cpuset') {
      // A v1 cpuset takes no process until its cpus and mems are set.
      for (const f of ['cpuset.cpus', 'cpuset.mems']) await writeFile(join(dir, f), await readFile(`/sys/fs/cgroup/cpuset${own}/${f}`, 'utf8'));
    }
    await chown(dir, uid, gid);
    dirs[c] = dir;
  }
  const config = join(configDir, 'cgroups.conf');
  await writeFile(config, `# the harness as the site: cgroups delegated under ours\ncgroup-root = ${name}\n`, { mode: 0o644 });
  return {
    config,
    dirs,
    async undo() {
      for (const dir of Object.values(dirs)) {
        for (const child of await containerCgroups(dir)) await rmdir(join(dir, child)).catch(() => {});
        await rmdir(dir).catch(() => {});
      }
    },
  };
}

/** The containers' cgroups (ctr-PID) in a delegated directory. */
export async function containerCgroups(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && e.name.startsWith('ctr-')).map((e) => e.name);
}

/** Every container cgroup left in any delegated directory. */
export async function leftoverCgroups(d: Delegation): Promise<string[]> {
  const out: string[] = [];
  for (const dir of Object.values(d.dirs)) for (const c of await containerCgroups(dir)) out.push(join(dir, c));
  return out;
}

/** A loop device over a new file of SIZE bytes in DIR, owned by the test user. */
export async function loopDevice(dir: string, size = 32 << 20): Promise<{ dev: string; detach(): Promise<void> }> {
  const file = join(dir, 'disk.img');
  await execa('truncate', ['-s', String(size), file]);
  const { stdout } = await execa('losetup', ['--find', '--show', file]);
  const dev = stdout.trim();
  const was = await stat(dev);
  const { uid } = await userIds();
  await chown(dev, uid, was.gid);
  return {
    dev,
    async detach() {
      await execa('losetup', ['-d', dev], { reject: false });
      await chown(dev, was.uid, was.gid);
    },
  };
}
