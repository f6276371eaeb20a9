// The resource-limit planner (src/plan/resources.ts, src/plan/cgroups.ts): flags and
// Apptainer's TOML to limits, limits to cgroup v1 and v2 files. Pure: no cgroup is made.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'smol-toml';
import { planCgroups, type CgroupLayout } from '../../src/plan/cgroups.js';
import { limitsFromFlags, limitsFromToml, mergeLimits } from '../../src/plan/resources.js';
import { PlanWriter } from '../../src/plan/words.js';
import type { CtrError } from '../../src/errors.js';
import { parseSiteConfig } from '../../src/cli/site.js';

const V1_FILES = ['cgroup.procs', 'memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.soft_limit_in_bytes', 'memory.oom_control',
  'cpu.cfs_period_us', 'cpu.cfs_quota_us', 'cpu.shares', 'pids.max', 'blkio.bfq.weight', 'blkio.throttle.read_bps_device',
  'blkio.throttle.write_bps_device', 'blkio.throttle.read_iops_device', 'blkio.throttle.write_iops_device', 'cpuset.cpus', 'cpuset.mems'];
const V1: CgroupLayout = {
  ok: true, version: 1,
  dirs: ['memory', 'cpu', 'pids', 'blkio', 'cpuset'].map((c) => ({ controllers: [c], path: `/sys/fs/cgroup/${c}/ctr/u`, files: V1_FILES })),
};
const V2: CgroupLayout = { ok: true, version: 2, dirs: [{ controllers: ['memory', 'cpu', 'pids', 'io', 'cpuset'], path: '/sys/fs/cgroup/user.slice/u', files: [] }] };
const dev = () => '7:0';

/** The cgroup words the planner writes, as [word, ...args] rows. */
function words(flags: Parameters<typeof limitsFromFlags>[0], layout: CgroupLayout): string[][] {
  const w = new PlanWriter();
  planCgroups(w, limitsFromFlags(flags), layout, dev);
  const v = w.words().slice(2);
  const rows: string[][] = [];
  for (let i = 0; i < v.length;) {
    const n = v[i] === '--cgroup' ? 2 : 4;
    rows.push(v.slice(i, i + n));
    i += n;
  }
  return rows;
}

const Plan = suite('cgroup plan');

Plan('v1 :: each controller in its own hierarchy, values in order, the OOM counter last', () => {
  assert.equal(words({ memory: '64M', cpus: '0.5', pidsLimit: '50', deviceReadBps: ['/dev/loop0:1mb'] }, V1), [
    ['--cgroup', '/sys/fs/cgroup/memory/ctr/u'],
    ['--cgroup-set', '/sys/fs/cgroup/memory/ctr/u', 'memory.limit_in_bytes', String(64 << 20)],
    ['--cgroup', '/sys/fs/cgroup/cpu/ctr/u'],
    ['--cgroup-set', '/sys/fs/cgroup/cpu/ctr/u', 'cpu.cfs_period_us', '100000'],
    ['--cgroup-set', '/sys/fs/cgroup/cpu/ctr/u', 'cpu.cfs_quota_us', '50000'],
    ['--cgroup', '/sys/fs/cgroup/pids/ctr/u'],
    ['--cgroup-set', '/sys/fs/cgroup/pids/ctr/u', 'pids.max', '50'],
    ['--cgroup', '/sys/fs/cgroup/blkio/ctr/u'],
    ['--cgroup-set', '/sys/fs/cgroup/blkio/ctr/u', 'blkio.throttle.read_bps_device', `7:0 ${1 << 20}`],
    ['--cgroup-oom', '/sys/fs/cgroup/memory/ctr/u', 'memory.oom_control', '64 MiB'],
  ]);
});

Plan('v2 :: one directory; cpu.max, memory.swap.max as swap alone, io.max, weight from shares', () => {
  const d = '/sys/fs/cgroup/user.slice/u';
  assert.equal(words({ memory: '1G', memorySwap: '2G', cpus: '2', cpuShares: '1024', blkioWeight: '500', deviceWriteIops: ['/dev/loop0:100'] }, V2), [
    ['--cgroup', d],
    ['--cgroup-set', d, 'memory.max', String(2 ** 30)],
    ['--cgroup-set', d, 'memory.swap.max', String(2 ** 30)],
    ['--cgroup-set', d, 'cpu.max', '200000 100000'],
    ['--cgroup-set', d, 'cpu.weight', '39'],
    ['--cgroup-set', d, 'io.weight', 'default 500'],
    ['--cgroup-set', d, 'io.max', '7:0 wiops=100'],
    ['--cgroup-oom', d, 'memory.events', '1 GiB'],
  ]);
});

Plan('v1 :: a file the kernel lacks is one error naming what to change', () => {
  const noSwap: CgroupLayout = { ...V1, dirs: V1.dirs.map((d) => ({ ...d, files: d.files.filter((f) => !f.startsWith('memory.memsw')) })) } as CgroupLayout;
  assert.throws(() => words({ memory: '1G', memorySwap: '2G' }, noSwap),
    (e: CtrError) => e.message === "--memory-swap: this kernel's memory cgroup has no memory.memsw.limit_in_bytes (swap accounting is off: the kernel needs swapaccount=1)");
});

Plan('no writable cgroup :: the layout\'s reason and hint, only when limits are asked for', () => {
  const none: CgroupLayout = { ok: false, why: 'no cgroup you may write: /x', hint: 'delegate one' };
  assert.throws(() => words({ pidsLimit: '5' }, none), (e: CtrError) => e.message === 'resource limits: no cgroup you may write: /x' && e.hint === 'delegate one');
  assert.equal(words({}, none), []);
});

Plan('TOML :: Apptainer\'s cgroups.toml keys; flags win; unknown sections and keys refused', () => {
  const doc = parse('[memory]\nlimit = 536870912\n[cpu]\nshares = 512\ncpus = "0-1"\n[pids]\nlimit = 100\n' +
    '[blockIO]\nweight = 300\n[[blockIO.throttleReadBpsDevice]]\nmajor = 8\nminor = 0\nrate = 1048576\n') as Record<string, unknown>;
  const l = limitsFromToml(doc, 'c.toml');
  assert.equal(l, { readBps: [{ device: { major: 8, minor: 0 }, rate: 1048576 }], writeBps: [], readIops: [], writeIops: [],
    memory: 536870912, cpuShares: 512, cpusetCpus: '0-1', pidsLimit: 100, blkioWeight: 300 });
  const m = mergeLimits(l, limitsFromFlags({ pidsLimit: '10', deviceReadBps: ['/dev/sda:2mb'] }));
  assert.is(m.pidsLimit, 10);
  assert.is(m.memory, 536870912);
  assert.is(m.readBps.length, 2);
  assert.throws(() => limitsFromToml(parse('[devices]\nallow = true\n') as Record<string, unknown>, 'c.toml'),
    (e: CtrError) => e.message === '--apply-cgroups c.toml: devices: not supported by ctr (it applies memory, cpu, pids, blockIO)');
  assert.throws(() => limitsFromToml(parse('[pids]\nlimit = "many"\n') as Record<string, unknown>, 'c.toml'),
    (e: CtrError) => e.message === '--apply-cgroups c.toml: pids.limit: expected a whole number from 1 to 4194304 (or -1)');
});

Plan('flags :: Docker\'s units and ranges', () => {
  const l = limitsFromFlags({ memory: '1.5g', memoryReservation: '512m', cpus: '1.25', pidsLimit: '-1', cpusetCpus: '0-3,8' });
  assert.equal([l.memory, l.memoryReservation, l.cpuQuota, l.cpuPeriod, l.pidsLimit, l.cpusetCpus], [1.5 * 2 ** 30, 512 * 2 ** 20, 125000, 100000, -1, '0-3,8']);
  assert.is(limitsFromFlags({ memory: '1048576' }).memory, 1048576);
  assert.throws(() => limitsFromFlags({ cpusetCpus: '0-' }), (e: CtrError) => e.message === '--cpuset-cpus "0-": expected a list such as 0-3,8');
  assert.throws(() => limitsFromFlags({ blkioWeight: '5' }), (e: CtrError) => e.message === '--blkio-weight "5": expected a whole number from 10 to 1000');
  assert.throws(() => limitsFromFlags({ deviceReadBps: ['sda:1mb'] }), (e: CtrError) => e.message === '--device-read-bps "sda:1mb": expected DEVICE:RATE, such as /dev/sda:10mb');
});

Plan('site config :: cgroup-root is kept as written; .. in it is refused', () => {
  assert.is(parseSiteConfig('cgroup-root = /ctr/%u\n', '/c').cgroupRoot, '/ctr/%u');
  assert.throws(() => parseSiteConfig('cgroup-root = ctr/../../x\n', '/c'),
    (e: CtrError) => e.message === 'config /c: line 1: cgroup-root "ctr/../../x": no .. in it');
});

Plan.run();
