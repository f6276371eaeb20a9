// Resource limits as the user asks for them: Apptainer's (and Docker's) flags, and
// Apptainer's --apply-cgroups TOML, which is the OCI runtime spec's LinuxResources in
// TOML (memory.limit, cpu.quota, pids.limit, blockIO.throttleReadBpsDevice...). Both
// become one ResourceLimits; src/plan/cgroups.ts turns that into cgroup files. Pure.
import { CtrError } from '../errors.js';

/** A device by its number (the TOML's major/minor), or by its path (the flags'). */
export interface DeviceRate { device: string | { major: number; minor: number }; rate: number }

export interface ResourceLimits {
  /** Bytes of memory; memorySwap is memory plus swap (-1: unlimited), as Docker's. */
  memory?: number;
  memorySwap?: number;
  memoryReservation?: number;
  /** CFS bandwidth: QUOTA microseconds of CPU time in each PERIOD. */
  cpuQuota?: number;
  cpuPeriod?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  /** -1: unlimited. */
  pidsLimit?: number;
  blkioWeight?: number;
  readBps: DeviceRate[];
  writeBps: DeviceRate[];
  readIops: DeviceRate[];
  writeIops: DeviceRate[];
}

export const CPU_PERIOD = 100_000;

export function noLimits(): ResourceLimits {
  return { readBps: [], writeBps: [], readIops: [], writeIops: [] };
}

/** Whether any limit is asked for. */
export function hasLimits(l: ResourceLimits | undefined): l is ResourceLimits {
  if (!l) return false;
  const { readBps, writeBps, readIops, writeIops, ...rest } = l;
  return readBps.length + writeBps.length + readIops.length + writeIops.length > 0 || Object.values(rest).some((v) => v !== undefined);
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Docker's sizes: a plain number is bytes; b, k, m, g, t (any case, with an optional b). */
export function parseBytes(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(text.trim());
  const n = m ? Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new CtrError(`${flag} ${JSON.stringify(text)}`, 'expected a size such as 64M, 1G or 512k (a plain number is bytes)');
  return n;
}

function integer(text: string, flag: string, min: number, max: number, also: number[] = []): number {
  const n = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!also.includes(n) && !(Number.isSafeInteger(n) && n >= min && n <= max)) {
    throw new CtrError(`${flag} ${JSON.stringify(text)}`, `expected a whole number from ${min} to ${max}${also.length ? ` (or ${also.join(', ')})` : ''}`);
  }
  return n;
}

/** --cpus N: N CPUs' worth of time in each 100 ms period (Docker's and Apptainer's). */
export function parseCpus(text: string): { quota: number; period: number } {
  const n = /^\d*\.?\d+$/.test(text.trim()) ? Number(text) : NaN;
  const quota = Math.round(n * CPU_PERIOD);
  if (!(quota >= 1000) || n > 4096) throw new CtrError(`--cpus ${JSON.stringify(text)}`, 'expected a number of CPUs from 0.01 up, such as 0.5 or 2');
  return { quota, period: CPU_PERIOD };
}

/** A CPU or memory-node list as cpuset takes it: 0-3,8,10-11. */
export function parseCpuList(text: string, flag: string): string {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(text.trim())) throw new CtrError(`${flag} ${JSON.stringify(text)}`, 'expected a list such as 0-3,8');
  return text.trim();
}

/** DEVICE:RATE, as Docker and Apptainer take it (/dev/sda:10mb; an iops rate is a count). */
export function parseDeviceRate(text: string, flag: string, bytes: boolean): DeviceRate {
  const at = text.lastIndexOf(':');
  const device = text.slice(0, at);
  if (at <= 0 || !device.startsWith('/')) throw new CtrError(`${flag} ${JSON.stringify(text)}`, 'expected DEVICE:RATE, such as /dev/sda:10mb');
  const rate = bytes ? parseBytes(text.slice(at + 1), flag) : integer(text.slice(at + 1), flag, 1, Number.MAX_SAFE_INTEGER);
  return { device, rate };
}

/** The flags' values (undefined: not given), as the CLI hands them over. */
export interface ResourceFlags {
  memory?: string;
  memorySwap?: string;
  memoryReservation?: string;
  cpus?: string;
  cpuShares?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: string;
  blkioWeight?: string;
  deviceReadBps?: string[];
  deviceWriteBps?: string[];
  deviceReadIops?: string[];
  deviceWriteIops?: string[];
}

export function limitsFromFlags(f: ResourceFlags): ResourceLimits {
  const l = noLimits();
  if (f.memory !== undefined) l.memory = parseBytes(f.memory, '--memory');
  if (f.memorySwap !== undefined) l.memorySwap = f.memorySwap.trim() === '-1' ? -1 : parseBytes(f.memorySwap, '--memory-swap');
  if (f.memoryReservation !== undefined) l.memoryReservation = parseBytes(f.memoryReservation, '--memory-reservation');
  if (f.cpus !== undefined) ({ quota: l.cpuQuota, period: l.cpuPeriod } = parseCpus(f.cpus));
  if (f.cpuShares !== undefined) l.cpuShares = integer(f.cpuShares, '--cpu-shares', 2, 262144);
  if (f.cpusetCpus !== undefined) l.cpusetCpus = parseCpuList(f.cpusetCpus, '--cpuset-cpus');
  if (f.cpusetMems !== undefined) l.cpusetMems = parseCpuList(f.cpusetMems, '--cpuset-mems');
  if (f.pidsLimit !== undefined) l.pidsLimit = integer(f.pidsLimit, '--pids-limit', 1, 2 ** 22, [-1]);
  if (f.blkioWeight !== undefined) l.blkioWeight = integer(f.blkioWeight, '--blkio-weight', 10, 1000);
  l.readBps = (f.deviceReadBps ?? []).map((t) => parseDeviceRate(t, '--device-read-bps', true));
  l.writeBps = (f.deviceWriteBps ?? []).map((t) => parseDeviceRate(t, '--device-write-bps', true));
  l.readIops = (f.deviceReadIops ?? []).map((t) => parseDeviceRate(t, '--device-read-iops', false));
  l.writeIops = (f.deviceWriteIops ?? []).map((t) => parseDeviceRate(t, '--device-write-iops', false));
  if (l.memorySwap !== undefined && l.memorySwap !== -1) {
    if (l.memory === undefined) throw new CtrError('--memory-swap', 'needs --memory (it is memory plus swap)');
    if (l.memorySwap < l.memory) throw new CtrError('--memory-swap', 'is memory plus swap: it cannot be less than --memory');
  }
  return l;
}

/** The flags' limits over the file's: a flag given wins (Apptainer applies both). */
export function mergeLimits(file: ResourceLimits, flags: ResourceLimits): ResourceLimits {
  const out: ResourceLimits = { ...file };
  for (const [k, v] of Object.entries(flags) as [keyof ResourceLimits, unknown][]) {
    if (Array.isArray(v)) (out[k] as DeviceRate[]) = [...(file[k] as DeviceRate[]), ...v];
    else if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  }
  return out;
}

// The TOML: which keys ctr carries out. Anything else of LinuxResources (devices,
// hugepageLimits, network, rdma, unified, the kernel memory limits) is refused by name
// rather than silently ignored: a limit the user believes in must be there.
type Table = Record<string, unknown>;
const TOML_KEYS: Record<string, string[]> = {
  memory: ['limit', 'swap', 'reservation'],
  cpu: ['shares', 'quota', 'period', 'cpus', 'mems'],
  pids: ['limit'],
  blockIO: ['weight', 'throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice'],
};

/** DOC, a parsed --apply-cgroups file (PATH, for messages), as limits. */
export function limitsFromToml(doc: Table, path: string): ResourceLimits {
  const fail = (key: string, why: string) => new CtrError(`--apply-cgroups ${path}`, `${key}: ${why}`);
  for (const [section, value] of Object.entries(doc)) {
    const known = TOML_KEYS[section];
    if (!known) throw fail(section, `not supported by ctr (it applies ${Object.keys(TOML_KEYS).join(', ')})`);
    if (!isTable(value)) throw fail(section, 'expected a table');
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) throw fail(`${section}.${key}`, `not supported by ctr (in [${section}]: ${known.join(', ')})`);
    }
  }
  const get = (section: string): Table => (isTable(doc[section]) ? doc[section] : {});
  const num = (section: string, key: string, min: number, max = Number.MAX_SAFE_INTEGER, also: number[] = []): number | undefined => {
    const v = get(section)[key];
    if (v === undefined) return undefined;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || (!also.includes(n) && (n < min || n > max))) {
      throw fail(`${section}.${key}`, `expected a whole number from ${min} to ${max}${also.length ? ` (or ${also.join(', ')})` : ''}`);
    }
    return n;
  };
  const list = (section: string, key: string): string | undefined => {
    const v = get(section)[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw fail(`${section}.${key}`, 'expected a string such as "0-3"');
    return parseCpuList(v, `--apply-cgroups ${path}: ${section}.${key}`);
  };
  const devices = (key: string): DeviceRate[] => {
    const v = get('blockIO')[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw fail(`blockIO.${key}`, 'expected an array of tables ([[blockIO.' + key + ']])');
    return v.map((d, i) => {
      const at = `blockIO.${key}[${i}]`;
      if (!isTable(d)) throw fail(at, 'expected a table with major, minor and rate');
      const field = (f: string, max: number) => {
        const x = typeof d[f] === 'bigint' ? Number(d[f]) : d[f];
        if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0 || x > max) throw fail(`${at}.${f}`, `expected a whole number from 0 to ${max}`);
        return x;
      };
      for (const f of Object.keys(d)) if (!['major', 'minor', 'rate'].includes(f)) throw fail(`${at}.${f}`, 'not supported (major, minor, rate)');
      return { device: { major: field('major', 4095), minor: field('minor', 2 ** 20 - 1) }, rate: field('rate', Number.MAX_SAFE_INTEGER) };
    });
  };
  const l = noLimits();
  l.memory = num('memory', 'limit', 1);
  l.memorySwap = num('memory', 'swap', 1, undefined, [-1]);
  l.memoryReservation = num('memory', 'reservation', 1);
  l.cpuShares = num('cpu', 'shares', 2, 262144);
  l.cpuQuota = num('cpu', 'quota', 1000, undefined, [-1]);
  l.cpuPeriod = num('cpu', 'period', 1000, 1_000_000);
  if (l.cpuQuota === -1) l.cpuQuota = undefined;
  if (l.cpuQuota !== undefined) l.cpuPeriod ??= CPU_PERIOD;
  l.cpusetCpus = list('cpu', 'cpus');
  l.cpusetMems = list('cpu', 'mems');
  l.pidsLimit = num('pids', 'limit', 1, 2 ** 22, [-1]);
  l.blkioWeight = num('blockIO', 'weight', 10, 1000);
  l.readBps = devices('throttleReadBpsDevice');
  l.writeBps = devices('throttleWriteBpsDevice');
  l.readIops = devices('throttleReadIOPSDevice');
  l.writeIops = devices('throttleWriteIOPSDevice');
  for (const [k, v] of Object.entries(l)) if (v === undefined) delete (l as unknown as Record<string, unknown>)[k];
  return l;
}

function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Bytes for a note: 64 MiB, 1.5 GiB, 4096 bytes. */
export function describeBytes(n: number): string {
  for (const [unit, size] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= size) return `${Number((n / size).toFixed(2))} ${unit}`;
  }
  return `${n} bytes`;
}
