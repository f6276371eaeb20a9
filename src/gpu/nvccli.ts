// --nvccli: ask NVIDIA's nvidia-container-cli (libnvidia-container) what the driver is,
// instead of the name lists: `nvidia-container-cli list` prints the device nodes,
// libraries, programs and IPC sockets the driver has, one absolute path a line, and
// needs no root (`--user`). ctr binds what it lists the way --nv binds its own finds;
// it does not run `configure`, which mounts into a container from outside as root.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, realpathSync } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { CtrError } from '../errors.js';
import type { GpuDriver } from './driver.js';

export function findNvccli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const d of [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/usr/local/bin']) {
    const p = join(d, 'nvidia-container-cli');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return undefined;
}

export function driverFromNvccli(): GpuDriver {
  const cli = findNvccli();
  if (!cli) {
    throw new CtrError('--nvccli', 'nvidia-container-cli is not installed here (not in PATH)',
      { hint: "install NVIDIA's libnvidia-container-tools, or use --nv" });
  }
  const args = [...(process.getuid?.() === 0 ? [] : ['--user']), 'list'];
  const r = spawnSync(cli, args, { encoding: 'utf8', timeout: 20000, maxBuffer: 4 << 20 });
  if (r.error || r.status !== 0) {
    const why = r.error?.message ?? ((r.stderr || '').trim().split('\n')[0] || `exit status ${r.status}`);
    throw new CtrError(`--nvccli: ${cli} ${args.join(' ')}`, why);
  }
  const d: GpuDriver = { vendor: 'nvidia', searched: [`${cli} list`], libraries: [], programs: [], files: [], devices: [] };
  for (const line of r.stdout.split('\n').map((l) => l.trim())) {
    if (!line.startsWith('/') || line.includes('\0') || line.split('/').includes('..')) continue;
    if (line.startsWith('/dev/')) d.devices.push(line);
    else if (/\.so(\.|$)/.test(basename(line))) d.libraries.push({ name: basename(line), path: real(line) });
    else if (/\/s?bin\/[^/]+$/.test(line)) d.programs.push({ name: basename(line), path: real(line) });
    else d.files.push(line);
  }
  const v = d.libraries.map((l) => /\.so\.(\d+\.\d+(?:\.\d+)*)$/.exec(l.path)?.[1]).find(Boolean);
  return v ? { ...d, version: v } : d;
}

function real(p: string): string {
  try {
    return realpathSync.native(p);
  } catch {
    return p;
  }
}
