// Resource limits (issue 18), as the unprivileged test user in cgroups the harness
// delegated as a site would (test/helpers/cgroups.ts): memory (OOM kill, exit 137 and
// ctr's note), a fork loop stopped by --pids-limit, the CPU quota and I/O throttles in
// force (their effect is measured in bench/cgroups.ts, not timed here), --apply-cgroups,
// and no container cgroup left afterwards, also after kill -9 of the launcher.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdir, readFile, rm, rmdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { delegateCgroups, leftoverCgroups, loopDevice, containerCgroups, type Delegation } from '../helpers/cgroups.js';
import { ctr, userTmp, userIds, TEST_USER } from '../helpers/user.js';

const Limits = suite('resource limits');
let sif: string, d: string, site: Delegation, loop: { dev: string; detach(): Promise<void> };
const env = () => ({ CTR_CONFIG: site.config });
/** The container's own cgroup directory for CONTROLLER, as seen from inside. */
const inside = (controller: string) => `/sys/fs/cgroup/${controller}$(grep ':${controller}:' /proc/self/cgroup | cut -d: -f3)`;

Limits.before(async () => {
  sif = await busyboxSif();
  d = await userTmp();
  await execa('chmod', ['755', d]);
  site = await delegateCgroups(d);
  loop = await loopDevice(d);
});
Limits.after(async () => {
  await site?.undo();
  await loop?.detach();
  await rm(d, { recursive: true, force: true });
});
Limits.after.each(async () => {
  const left = await leftovers();
  const cgroups = await leftoverCgroups(site);
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
  assert.equal(cgroups, [], 'container cgroups left behind');
});

Limits('--memory :: allocating past 64M is killed: exit 137 and a note that the limit was hit', async () => {
  // busybox dd allocates its block and fills it from /dev/zero: 100 MiB in one piece.
  const r = await ctr(['exec', '--memory', '64M', sif, 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=100M', 'count=1'], { cwd: '/', env: env() });
  assert.is(r.exitCode, 137);
  assert.is(r.stderr, 'ctr: note: the container hit its memory limit (64 MiB): the kernel killed 1 process in it (out of memory)\n');
});

Limits('--memory :: under the limit nothing happens; the limit is the cgroup\'s, and no note', async () => {
  const r = await ctr(['exec', '--memory', '64M', sif, 'sh', '-c', `dd if=/dev/zero of=/dev/null bs=16M count=1 2>/dev/null; cat ${inside('memory')}/memory.limit_in_bytes`], { cwd: '/', env: env() });
  assert.is(r.stderr, '');
  assert.is(r.stdout, `${64 << 20}\n`);
  assert.is(r.exitCode, 0);
});

Limits('--pids-limit :: a fork loop stops at 50 processes', async () => {
  // Each round starts one more sleeper; ash gives up when fork fails.
  const r = await ctr(['exec', '--pids-limit', '50', sif, 'sh', '-c', 'i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); echo $i; done'], { cwd: '/', env: env() });
  assert.match(String(r.stderr), /can't fork: Resource temporarily unavailable/);
  assert.is.not(r.exitCode, 0);
  const started = Number(String(r.stdout).trim().split('\n').pop());
  assert.ok(started >= 40 && started < 50, `started ${started} sleepers under a limit of 50 (the shell is one)`);
});

Limits('--cpus, --cpu-shares, --cpuset-cpus :: the CFS quota, shares and CPU list are the container\'s', async () => {
  const cpu = inside('cpu');
  const r = await ctr(['exec', '--cpus', '0.5', '--cpu-shares', '512', '--cpuset-cpus', '0', sif, 'sh', '-c',
    `cat ${cpu}/cpu.cfs_quota_us ${cpu}/cpu.cfs_period_us ${cpu}/cpu.shares ${inside('cpuset')}/cpuset.cpus`], { cwd: '/', env: env() });
  assert.is(r.stderr, '');
  assert.is(r.stdout, '50000\n100000\n512\n0\n');
});

Limits('--device-read-bps, --device-write-bps :: direct I/O on a loop device goes through the throttled cgroup', async () => {
  const blk = inside('blkio');
  const { stdout: numbers } = await execa('stat', ['-c', '%t:%T', loop.dev]);
  const [maj, min] = numbers.trim().split(':').map((h) => parseInt(h, 16));
  const r = await ctr(['exec', '--device-read-bps', `${loop.dev}:8mb`, '--device-write-bps', `${loop.dev}:8mb`, sif, 'sh', '-c',
    `dd if=${loop.dev} of=/dev/null bs=1M count=4 iflag=direct 2>/dev/null && dd if=/dev/zero of=${loop.dev} bs=1M count=2 oflag=direct 2>/dev/null && ` +
    `cat ${blk}/blkio.throttle.read_bps_device ${blk}/blkio.throttle.write_bps_device ${blk}/blkio.throttle.io_service_bytes`], { cwd: '/', env: env() });
  assert.is(r.stderr, '');
  assert.is(r.exitCode, 0);
  const lines = String(r.stdout).split('\n');
  assert.equal(lines.slice(0, 2), [`${maj}:${min} ${8 << 20}`, `${maj}:${min} ${8 << 20}`]);
  assert.ok(lines.includes(`${maj}:${min} Read ${4 << 20}`), String(r.stdout));
  assert.ok(lines.includes(`${maj}:${min} Write ${2 << 20}`), String(r.stdout));
});

Limits('--blkio-weight :: a weight where the kernel has one (bfq), else one clear error', async () => {
  const files = await execa('ls', [site.dirs.blkio]);
  const has = /^blkio\.(bfq\.)?weight$/m.test(files.stdout);
  const r = await ctr(['exec', '--blkio-weight', '300', sif, 'true'], { cwd: '/', env: env() });
  if (has) assert.is(r.exitCode, 0, String(r.stderr));
  else {
    assert.is(r.stderr, 'ctr: error: --blkio-weight: this kernel\'s blkio cgroup has no blkio.weight (weights need the bfq I/O scheduler: echo bfq > /sys/block/DEV/queue/scheduler)\n');
    assert.is(r.exitCode, 255);
  }
});

Limits('--apply-cgroups :: Apptainer\'s TOML sets the limits; a flag given wins over it', async () => {
  const toml = join(d, 'cgroups.toml');
  await writeFile(toml, '[memory]\n  limit = 134217728\n[pids]\n  limit = 64\n[cpu]\n  quota = 25000\n  period = 100000\n', { mode: 0o644 });
  const r = await ctr(['exec', '--apply-cgroups', toml, '--pids-limit', '32', sif, 'sh', '-c',
    `cat ${inside('memory')}/memory.limit_in_bytes ${inside('pids')}/pids.max ${inside('cpu')}/cpu.cfs_quota_us`], { cwd: '/', env: env() });
  assert.is(r.stderr, '');
  assert.is(r.stdout, `${128 << 20}\n32\n25000\n`);
});

Limits('--apply-cgroups :: a key ctr does not carry out is refused by name, not ignored', async () => {
  const toml = join(d, 'devices.toml');
  await writeFile(toml, '[memory]\n  limit = 134217728\n  kernel = 1000\n', { mode: 0o644 });
  const r = await ctr(['exec', '--apply-cgroups', toml, sif, 'true'], { cwd: '/', env: env() });
  assert.is(r.stderr, `ctr: error: --apply-cgroups ${toml}: memory.kernel: not supported by ctr (in [memory]: limit, swap, reservation)\n`);
  assert.is(r.exitCode, 255);
});

Limits('cleanup :: kill -9 of the launcher: the reaper removes the container\'s cgroups', async () => {
  const run = ctr(['exec', '--memory', '64M', '--pids-limit', '20', sif, 'sleep', '30'], { cwd: '/', env: env() });
  // The cgroup's name is the launcher's pid.
  let name: string | undefined;
  for (const until = Date.now() + 10_000; !name && Date.now() < until;) {
    [name] = await containerCgroups(site.dirs.pids);
    if (!name) await new Promise((res) => setTimeout(res, 25));
  }
  assert.ok(name, 'the container\'s cgroup appeared');
  // Wait until the command itself is in it, so the whole container is up.
  for (const until = Date.now() + 10_000; Date.now() < until;) {
    const procs = await readFile(join(site.dirs.pids, name!, 'cgroup.procs'), 'utf8').catch(() => '');
    if (procs.trim()) break;
    await new Promise((res) => setTimeout(res, 25));
  }
  process.kill(Number(name!.slice(4)), 'SIGKILL');
  const r = await run;
  assert.is(r.exitCode, 137);
  let left: string[] = [];
  for (const until = Date.now() + 5000; Date.now() < until;) {
    left = await leftoverCgroups(site);
    if (left.length === 0) break;
    await new Promise((res) => setTimeout(res, 25));
  }
  assert.equal(left, [], 'cgroups left after kill -9');
});

Limits('cleanup :: a stale cgroup of a launcher long dead is removed on sight; a new one is not', async () => {
  const { uid, gid } = await userIds();
  // No PID is 4194303 or 4194302 (past pid_max's limit); the new one could be a launcher's
  // in another PID namespace whose command has not joined yet.
  const stale = join(site.dirs.memory, 'ctr-4194303');
  const fresh = join(site.dirs.memory, 'ctr-4194302');
  for (const dir of [stale, fresh]) {
    await mkdir(dir);
    await execa('chown', [`${uid}:${gid}`, dir]);
  }
  const minuteAgo = new Date(Date.now() - 60_000);
  await utimes(stale, minuteAgo, minuteAgo);
  const r = await ctr(['exec', '--memory', '64M', sif, 'true'], { cwd: '/', env: env() });
  assert.is(r.exitCode, 0, String(r.stderr));
  assert.equal(await containerCgroups(site.dirs.memory), ['ctr-4194302']);
  await rmdir(fresh);
});

Limits('no delegated cgroup :: one error saying what to delegate; under Slurm, that the step\'s limits apply', async () => {
  const r = await ctr(['exec', '--memory', '64M', '--pids-limit', '10', sif, 'true'], { cwd: '/' });
  const lines = String(r.stderr).split('\n');
  assert.match(lines[0], /^ctr: error: resource limits: no cgroup you may write: \/sys\/fs\/cgroup\/memory\S* \(memory\), \/sys\/fs\/cgroup\/pids\S* \(pids\) from your own cgroup \(\/proc\/self\/cgroup\)$/);
  assert.is(lines[1], `ctr: hint: an administrator must delegate a cgroup directory owned by ${TEST_USER} in each hierarchy of memory, pids (cgroup v1), ` +
    `e.g. mkdir /sys/fs/cgroup/memory/ctr/${TEST_USER} && chown ${TEST_USER} /sys/fs/cgroup/memory/ctr/${TEST_USER}, and name it in /etc/ctr/ctr.conf: cgroup-root = /ctr/%u`);
  assert.is(lines.length, 3);
  assert.is(r.exitCode, 255);
  const s = await ctr(['exec', '--memory', '64M', sif, 'true'], { cwd: '/', env: { SLURM_JOB_ID: '7' } });
  assert.match(String(s.stderr).split('\n')[1], /^ctr: hint: Under Slurm the job step's own limits apply \(srun --mem, --cpus-per-task\); an administrator must delegate/);
  assert.is(s.exitCode, 255);
});

Limits('flags :: a bad value is one error line', async () => {
  for (const [args, msg] of [
    [['--memory', 'lots'], 'ctr: error: --memory "lots": expected a size such as 64M, 1G or 512k (a plain number is bytes)'],
    [['--cpus', '0'], 'ctr: error: --cpus "0": expected a number of CPUs from 0.01 up, such as 0.5 or 2'],
    [['--pids-limit', '0'], 'ctr: error: --pids-limit "0": expected a whole number from 1 to 4194304 (or -1)'],
    [['--device-read-bps', '/nonexistent:1mb'], 'ctr: error: --device-read-bps /nonexistent: no such device'],
    [['--memory-swap', '32M', '--memory', '64M'], 'ctr: error: --memory-swap: is memory plus swap: it cannot be less than --memory'],
  ] as const) {
    const r = await ctr(['exec', ...args, sif, 'true'], { cwd: '/', env: env() });
    assert.is(r.stderr, `${msg}\n`, args.join(' '));
    assert.is(r.exitCode, 255);
  }
});

Limits.run();
