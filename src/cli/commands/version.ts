// ctr --version / ctr version: what this ctr is made of, one `name: value` line each —
// ctr's version, the launcher's build (its FUSE server: in process, or squashfuse_ll),
// the libsquashfs it loads, the node it runs on, and whether bin/ctr starts the launch
// commands from the start-up snapshot (the same test bin/ctr makes), and which GPU
// drivers --nv and --rocm would bind.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CtrError } from '../../errors.js';
import { launcherPath } from '../../launch/launcher.js';
import { driverFound, type GpuDriver, type Vendor } from '../../gpu/driver.js';
import { findVendorDriver } from '../../host/gpu.js';
import { readSiteConfig } from '../site.js';
import { clashHint, ctrClash } from '../../host/ctr-name.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url)).replace(/\/$/, '');

function ctrVersion(): string {
  return (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string }).version;
}

function launcher(): string {
  const path = launcherPath();
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 5000 });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    return `not found: ${path} (exec, run and shell need it: npm run build, or make -C ${ROOT}/native)`;
  }
  if (r.error) return `${path}: cannot run: ${r.error.message}`;
  const first = (r.stdout || r.stderr).trim().split('\n')[0];
  if (r.status !== 0) return `${path}: does not run here or predates --version (${first || `exit ${r.status}`})`;
  return `${first} (${path})`;
}

function libsquashfs(lib: typeof import('../../squashfs/lib.js')): string {
  try {
    lib.sqfs();
  } catch (err) {
    if (err instanceof CtrError) return `not loaded: ${err.message}${err.hint ? ` (${err.hint})` : ''}`;
    throw err;
  }
  const path = readFileSync('/proc/self/maps', 'utf8').split('\n')
    .map((l) => l.slice(l.indexOf('/'))).find((p) => /\/libsquashfs\.so[.\d]*$/.test(p));
  if (!path) return 'loaded';
  let pkg = '';
  if (/^\/(usr\/)?lib\//.test(path)) {
    try {
      pkg = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'libsquashfs1'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch { /* not a Debian system */ }
  }
  return pkg ? `${path} (Debian libsquashfs1 ${pkg})` : path;
}

function snapshot(): string {
  if (process.env.CTR_NO_SNAPSHOT) return 'not in use: CTR_NO_SNAPSHOT is set';
  const dir = `${ROOT}/dist/snapshot`;
  let blob;
  try {
    blob = statSync(`${dir}/ctr.blob`);
  } catch {
    return 'not in use: not made (npm run build makes it; an installed package makes it on install)';
  }
  let built = '';
  try {
    built = readFileSync(`${dir}/node`, 'utf8').trim();
  } catch { /* unknown */ }
  if (built !== process.execPath) return `not in use: made by another node (${built || 'unknown'}), not ${process.execPath}: run npm run build`;
  if (statSync(process.execPath).mtimeMs > blob.mtimeMs) return `not in use: ${process.execPath} is newer than it: run npm run build`;
  return `in use: exec, run, shell and plan start from ${dir}/ctr.blob`;
}

/** What --nv / --rocm would find here, in one line. */
function gpuDriver(vendor: Vendor): string {
  let d: GpuDriver;
  try {
    d = findVendorDriver(vendor, readSiteConfig().gpu);
  } catch (err) {
    if (err instanceof CtrError) return `cannot tell: ${err.message}`;
    throw err;
  }
  const where = `looked in ${d.searched.join(', ')}`;
  if (!driverFound(d)) return `none found (${where})`;
  const n = (k: number, one: string) => `${k} ${one}${k === 1 ? '' : 's'}`;
  return `found${d.version ? `, version ${d.version}` : ''}: ${n(d.libraries.length, 'library file')}, ${n(d.programs.length, 'program')}, ${n(d.devices.length, 'device node')} (${where})`;
}

/** A line only where `ctr` in PATH is containerd's (Debian's containerd installs one). */
function clash(): string[] {
  const c = ctrClash();
  return c ? [`name: ${clashHint(c)}`] : [];
}

export async function versionCommand(): Promise<void> {
  const lib = await import('../../squashfs/lib.js');
  process.stdout.write([
    `ctr ${ctrVersion()}`,
    `launcher: ${launcher()}`,
    `libsquashfs: ${libsquashfs(lib)}`,
    `node: ${process.version} (${process.execPath})`,
    `start-up snapshot: ${snapshot()}`,
    `nvidia driver (--nv): ${gpuDriver('nvidia')}`,
    `rocm driver (--rocm): ${gpuDriver('rocm')}`,
    ...clash(),
  ].join('\n') + '\n');
}
