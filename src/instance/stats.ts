// ctr instance stats NAME [--json]: CPU, memory, block I/O and task counts of an instance.
//
// Apptainer reads these from the instance's cgroup, and without one says only that stats
// need cgroups. A ctr instance is its PID namespace (commands.ts): every process of the
// instance is in it and nothing else is, so the numbers are those of its processes, read
// from /proc, with or without a delegated cgroup:
//   CPU %      user+system time over one second (USER_HZ ticks, 100 a second on Linux's
//              /proc ABI) of the processes present at both readings;
//   memory     proportional set size (smaps_rollup's Pss: shared pages divided among their
//              users, so the sum over processes counts each page once), against the
//              --memory limit it was started with, else the node's memory (as Apptainer);
//   block I/O  read_bytes and write_bytes of /proc/PID/io (what reached the storage layer);
//   PIDS       tasks (threads), as a cgroup's pids.current counts them.
import { readFileSync } from 'node:fs';
import { CtrError } from '../errors.js';
import { find, members, stateDir } from './state.js';

const USER_HZ = 100;

interface Sample { ticks: Map<number, number>; pss: number; read: number; write: number; tasks: number; at: number }

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

function field(text: string | undefined, name: string): number {
  const m = text && new RegExp(`^${name}:?\\s+(\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

function sample(pids: number[]): Sample {
  const s: Sample = { ticks: new Map(), pss: 0, read: 0, write: 0, tasks: 0, at: Date.now() };
  for (const pid of pids) {
    const stat = readOr(`/proc/${pid}/stat`);
    if (!stat) continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    s.ticks.set(pid, Number(f[11]) + Number(f[12]));
    s.tasks += Number(f[17]);
    const rollup = readOr(`/proc/${pid}/smaps_rollup`);
    s.pss += 1024 * (rollup ? field(rollup, 'Pss') : field(readOr(`/proc/${pid}/status`), 'VmRSS'));
    const io = readOr(`/proc/${pid}/io`);
    s.read += field(io, 'read_bytes');
    s.write += field(io, 'write_bytes');
  }
  return s;
}

/** Apptainer's (go-units BytesSize) form: 4 significant digits, binary units. */
export function bytesSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number(n.toPrecision(4))}${units[i]}`;
}

export async function instanceStats(name: string, json: boolean): Promise<void> {
  const i = find(stateDir(), name);
  if (!i) throw new CtrError(`instance ${name}`, 'not running', { hint: 'ctr instance list' });
  const first = sample(members(i));
  await new Promise((r) => setTimeout(r, 1000));
  const now = sample(members(i));
  let delta = 0;
  for (const [pid, t] of now.ticks) if (first.ticks.has(pid)) delta += Math.max(0, t - first.ticks.get(pid)!);
  const cpu = (delta / USER_HZ) / ((now.at - first.at) / 1000) * 100;
  const total = [...now.ticks.values()].reduce((a, b) => a + b, 0);
  const limit = i.opts.resources?.memory ?? 1024 * field(readOr('/proc/meminfo'), 'MemTotal');
  if (json) {
    process.stdout.write(JSON.stringify({
      cpu_stats: { cpu_usage: { total_usage: total * (1e9 / USER_HZ), percent: Number(cpu.toFixed(2)) } },
      memory_stats: { usage: { usage: now.pss, limit } },
      pids_stats: { current: now.tasks },
      blkio_stats: { io_service_bytes_recursive: [{ op: 'Read', value: now.read }, { op: 'Write', value: now.write }] },
    }, null, 2) + '\n');
    return;
  }
  const rows = [
    ['INSTANCE NAME', 'CPU USAGE', 'MEM USAGE / LIMIT', 'MEM %', 'BLOCK I/O', 'PIDS'],
    [i.name, `${cpu.toFixed(2)}%`, `${bytesSize(now.pss)} / ${bytesSize(limit)}`, `${(limit ? now.pss / limit * 100 : 0).toFixed(2)}%`,
      `${bytesSize(now.read)} / ${bytesSize(now.write)}`, String(now.tasks)],
  ];
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)) + 4);
  for (const r of rows) process.stdout.write(r.map((v, c) => (c < r.length - 1 ? v.padEnd(w[c]) : v)).join('') + '\n');
}
