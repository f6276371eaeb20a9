// Resource limits as cgroup files: which delegated directory each controller's cgroup
// goes in (found by src/host/cgroups.ts), and what is written there, for cgroup v1
// (one hierarchy per controller, as on this machine and RHEL 8) and v2. The launcher
// makes the container's cgroup in each directory, writes the values in this order, puts
// the command in, and removes it at the end (native/launch_cgroup.c). Pure.
import { CtrError } from '../errors.js';
import { describeBytes, type DeviceRate, type ResourceLimits } from './resources.js';
import type { PlanWriter } from './words.js';

export type Controller = 'memory' | 'cpu' | 'cpuset' | 'pids' | 'blkio';

/** A directory delegated to the user: v1, one hierarchy's (CONTROLLERS mounted there);
 * v2, the one tree's (CONTROLLERS: those its cgroup.subtree_control enables). FILES: the
 * names in it (v1: a child has the same ones). */
export interface CgroupDir { controllers: string[]; path: string; files: string[] }

export type CgroupLayout =
  | { ok: true; version: 1 | 2; dirs: CgroupDir[] }
  | { ok: false; why: string; hint: string };

/** The controllers LIMITS need (v1 names; v2 calls blkio io). */
export function controllersFor(l: ResourceLimits): Controller[] {
  const out = new Set<Controller>();
  if (l.memory !== undefined || l.memorySwap !== undefined || l.memoryReservation !== undefined) out.add('memory');
  if (l.cpuQuota !== undefined || l.cpuShares !== undefined) out.add('cpu');
  if (l.cpusetCpus !== undefined || l.cpusetMems !== undefined) out.add('cpuset');
  if (l.pidsLimit !== undefined) out.add('pids');
  if (l.blkioWeight !== undefined || [l.readBps, l.writeBps, l.readIops, l.writeIops].some((d) => d.length)) out.add('blkio');
  return [...out];
}

type Numbers = (d: DeviceRate) => string;

/**
 * Write LIMITS' cgroup words to W. DEVICE gives "MAJOR:MINOR" of a device rate's path
 * (looked up on the host). Throws a CtrError when no usable cgroup is there (LAYOUT says
 * why) or the kernel lacks a file a limit needs.
 */
export function planCgroups(w: PlanWriter, l: ResourceLimits, layout: CgroupLayout, device: Numbers): void {
  const needed = controllersFor(l);
  if (needed.length === 0) return;
  if (!layout.ok) throw new CtrError('resource limits', layout.why, { hint: layout.hint });
  const v2 = layout.version === 2;
  const dirOf = (c: Controller): CgroupDir => {
    const name = v2 && c === 'blkio' ? 'io' : c;
    const d = layout.dirs.find((x) => x.controllers.includes(name));
    if (!d) throw new CtrError('resource limits', `the ${name} controller is not available here (cgroup v${layout.version})`);
    return d;
  };
  const sets = new Map<CgroupDir, Array<[string, string]>>();
  const oom: Array<[CgroupDir, string, string]> = [];
  const set = (c: Controller, file: string, value: string | number, what: string) => {
    const d = dirOf(c);
    if (!v2 && !d.files.includes(file)) throw new CtrError(what, `this kernel's ${c} cgroup has no ${file}${FILE_HINTS[file] ?? ''}`);
    if (!sets.has(d)) sets.set(d, []);
    sets.get(d)!.push([file, String(value)]);
  };

  if (l.memory !== undefined) {
    set('memory', v2 ? 'memory.max' : 'memory.limit_in_bytes', l.memory, '--memory');
    oom.push([dirOf('memory'), v2 ? 'memory.events' : 'memory.oom_control', describeBytes(l.memory)]);
  }
  if (l.memorySwap !== undefined) {
    if (v2) set('memory', 'memory.swap.max', l.memorySwap === -1 ? 'max' : l.memorySwap - (l.memory ?? 0), '--memory-swap');
    else set('memory', 'memory.memsw.limit_in_bytes', l.memorySwap, '--memory-swap');
  }
  if (l.memoryReservation !== undefined) set('memory', v2 ? 'memory.low' : 'memory.soft_limit_in_bytes', l.memoryReservation, '--memory-reservation');
  if (l.cpuQuota !== undefined) {
    const period = l.cpuPeriod ?? 100_000;
    if (v2) set('cpu', 'cpu.max', `${l.cpuQuota} ${period}`, '--cpus');
    else {
      set('cpu', 'cpu.cfs_period_us', period, '--cpus');
      set('cpu', 'cpu.cfs_quota_us', l.cpuQuota, '--cpus');
    }
  }
  if (l.cpuShares !== undefined) {
    // v2's weight from v1's shares, as runc converts them (2..262144 to 1..10000).
    if (v2) set('cpu', 'cpu.weight', 1 + Math.floor(((l.cpuShares - 2) * 9999) / 262142), '--cpu-shares');
    else set('cpu', 'cpu.shares', l.cpuShares, '--cpu-shares');
  }
  if (l.cpusetCpus !== undefined) set('cpuset', 'cpuset.cpus', l.cpusetCpus, '--cpuset-cpus');
  if (l.cpusetMems !== undefined) set('cpuset', 'cpuset.mems', l.cpusetMems, '--cpuset-mems');
  if (l.pidsLimit !== undefined) set('pids', 'pids.max', l.pidsLimit === -1 ? 'max' : l.pidsLimit, '--pids-limit');
  if (l.blkioWeight !== undefined) {
    const d = dirOf('blkio');
    const file = v2 ? 'io.weight' : ['blkio.weight', 'blkio.bfq.weight'].find((f) => d.files.includes(f)) ?? 'blkio.weight';
    set('blkio', file, v2 ? `default ${l.blkioWeight}` : l.blkioWeight, '--blkio-weight');
  }
  const throttles: Array<[DeviceRate[], string, string, string]> = [
    [l.readBps, 'blkio.throttle.read_bps_device', 'rbps', '--device-read-bps'],
    [l.writeBps, 'blkio.throttle.write_bps_device', 'wbps', '--device-write-bps'],
    [l.readIops, 'blkio.throttle.read_iops_device', 'riops', '--device-read-iops'],
    [l.writeIops, 'blkio.throttle.write_iops_device', 'wiops', '--device-write-iops'],
  ];
  for (const [rates, file, key, flag] of throttles) {
    for (const r of rates) set('blkio', v2 ? 'io.max' : file, v2 ? `${device(r)} ${key}=${r.rate}` : `${device(r)} ${r.rate}`, flag);
  }

  for (const [d, values] of sets) {
    w.cgroup(d.path);
    for (const [file, value] of values) w.cgroupSet(d.path, file, value);
  }
  for (const [d, file, limit] of oom) w.cgroupOom(d.path, file, limit);
}

const FILE_HINTS: Record<string, string> = {
  'memory.memsw.limit_in_bytes': ' (swap accounting is off: the kernel needs swapaccount=1)',
  'blkio.weight': ' (weights need the bfq I/O scheduler: echo bfq > /sys/block/DEV/queue/scheduler)',
  'blkio.bfq.weight': ' (weights need the bfq I/O scheduler)',
};
