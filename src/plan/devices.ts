// The mounts and environment for GPUs and CDI devices: --nv / --rocm (a driver found on
// the host, gpu/driver.ts) and --device (CDI edits, gpu/cdi-resolve.ts). Pure: what was
// found comes in, binds and variables go out; compose.ts places them in the plan.
import { CtrError } from '../errors.js';
import type { CdiSelection } from '../gpu/cdi-resolve.js';
import type { GpuDriver } from '../gpu/driver.js';
import type { GpuFacts } from './options.js';

/** Where the driver's libraries go inside: Apptainer's directory, first on LD_LIBRARY_PATH. */
export const GPU_LIBS = '/.singularity.d/libs';
/** Variables that say which GPUs a job was given (Slurm sets CUDA_VISIBLE_DEVICES): kept with --cleanenv. */
export const GPU_VARS = { nvidia: ['NVIDIA_VISIBLE_DEVICES', 'CUDA_VISIBLE_DEVICES'], rocm: ['ROCR_VISIBLE_DEVICES', 'HIP_VISIBLE_DEVICES', 'CUDA_VISIBLE_DEVICES'] };

export interface DeviceBind {
  src: string;
  dst: string;
  ro: boolean;
}

export interface DeviceEdits {
  binds: DeviceBind[];
  /** NAME=VALUE, applied after the image's env scripts (before --env, which wins). */
  env: string[];
  /** Colon lists to put a directory first on, after everything else. */
  prepend: Array<{ name: string; value: string }>;
  keep: string[];
}

/**
 * A driver's binds. The host's /dev is the container's unless --contain, so device nodes
 * are bound only into --contain's own /dev; there, as Apptainer does, NVIDIA_VISIBLE_DEVICES
 * (a list of indices, all, none or void) picks which /dev/nvidiaN appear.
 */
export function driverEdits(d: GpuDriver, contain: boolean, visible?: string): DeviceEdits {
  const binds: DeviceBind[] = [
    ...d.libraries.map((l) => ({ src: l.path, dst: `${GPU_LIBS}/${l.name}`, ro: true })),
    ...d.programs.map((p) => ({ src: p.path, dst: `/usr/bin/${p.name}`, ro: true })),
    ...d.files.map((f) => ({ src: f, dst: f, ro: !f.startsWith('/run/') })),
  ];
  if (contain) binds.push(...visibleDevices(d, visible).map((n) => ({ src: n, dst: n, ro: false })));
  return {
    binds,
    env: [],
    prepend: d.libraries.length ? [{ name: 'LD_LIBRARY_PATH', value: GPU_LIBS }] : [],
    keep: GPU_VARS[d.vendor],
  };
}

function visibleDevices(d: GpuDriver, visible?: string): string[] {
  if (d.vendor !== 'nvidia' || visible === undefined || visible.trim() === '' || visible === 'all') return d.devices;
  const gpu = /^\/dev\/nvidia(\d+)$/;
  if (visible === 'none' || visible === 'void') return d.devices.filter((n) => !gpu.test(n));
  const want = visible.split(',').map((s) => s.trim());
  // UUIDs (GPU-...) need the driver to map them to indices: then all GPUs are bound.
  if (!want.every((w) => /^\d+$/.test(w))) return d.devices;
  return d.devices.filter((n) => !gpu.test(n) || want.includes(gpu.exec(n)![1]));
}

/**
 * CDI edits as binds and variables. A node at the same path in the host's /dev (no
 * --contain) is there already; one elsewhere in /dev needs --contain's /dev, where ctr
 * can make its mount point (ctr never creates files in a host directory).
 */
export function cdiEdits(sel: CdiSelection, contain: boolean, hostHas: (path: string) => boolean): DeviceEdits {
  const out: DeviceEdits = { binds: [], env: [], prepend: [], keep: [] };
  for (const e of sel.edits) {
    for (const n of e.deviceNodes) {
      if (!contain && n.path.startsWith('/dev/')) {
        if (n.path === n.hostPath) continue;
        if (!hostHas(n.path)) {
          throw new CtrError(`CDI device node ${n.path} (${e.file})`, "the container's /dev is the host's, which has no such file",
            { hint: 'add --contain: the container then gets a /dev of its own' });
        }
      }
      out.binds.push({ src: n.hostPath, dst: n.path, ro: false });
    }
    for (const m of e.mounts) out.binds.push({ src: m.hostPath, dst: m.containerPath, ro: m.ro });
    out.env.push(...e.env);
  }
  return out;
}

/** What was found, for --debug. */
export function describeGpu(g: GpuFacts | undefined): string[] {
  if (!g) return [];
  return [
    ...g.drivers.map((d) => `${d.vendor} driver${d.version ? ` ${d.version}` : ''}: ${d.libraries.length} library files, ` +
      `${d.programs.length} programs, ${d.files.length} other files, ${d.devices.length} device nodes (from ${d.searched.join(', ')})`),
    ...(g.cdi ? [`CDI devices: ${g.cdi.devices.join(', ')}`] : []),
    ...(g.cdi?.skippedHooks.map((h) => `CDI hook not run (cdi-hooks = skip): ${h}`) ?? []),
  ];
}

export function mergeEdits(all: readonly DeviceEdits[]): DeviceEdits {
  const seen = new Set<string>();
  const binds = all.flatMap((e) => e.binds).filter((b) => !seen.has(b.dst) && seen.add(b.dst));
  const prep = new Set<string>();
  return {
    binds,
    env: all.flatMap((e) => e.env),
    prepend: all.flatMap((e) => e.prepend).filter((p) => !prep.has(`${p.name}=${p.value}`) && prep.add(`${p.name}=${p.value}`)),
    keep: [...new Set(all.flatMap((e) => e.keep))],
  };
}
