// Find a GPU vendor's user-space driver on this host, for --nv and --rocm, the way
// Apptainer does with nvliblist.conf / rocmliblist.conf: each library name through the
// ld.so cache (then the vendor's usual directories), each program through PATH, the
// device nodes in /dev. A site whose driver sits under another prefix names it
// (`nv-root = /opt/nvidia` in the site config, or CTR_NV_ROOT / CTR_ROCM_ROOT): then
// PREFIX/lib64, PREFIX/lib/<multiarch>, PREFIX/lib and PREFIX/bin are searched instead.
// Thin: the lists are parsed by liblist.ts, the cache by ldcache.ts.
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CtrError, describeSystemError } from '../errors.js';
import { untrusted } from './cdi-read.js';
import { entryFits, parseLdCache } from './ldcache.js';
import { isLibraryFile, LIST_MAX, mergeNameLists, parseNameList, type NameList } from './liblist.js';

export type Vendor = 'nvidia' | 'rocm';

export interface GpuDriver {
  vendor: Vendor;
  /** Where it was looked for, in words (for the warning and ctr --version). */
  searched: string[];
  /** Name as the loader asks for it (libcuda.so.1) and the host file (symlinks resolved). */
  libraries: Array<{ name: string; path: string }>;
  programs: Array<{ name: string; path: string }>;
  /** Other files (sockets, loader configs), bound at the same path. */
  files: string[];
  /** Device nodes (/dev/nvidia0, /dev/kfd...). */
  devices: string[];
  version?: string;
}

/**
 * Is there a driver at all? The lists also name libraries that are not the vendor's
 * (libGL, libEGL and libOpenCL come from glvnd and Mesa, libdrm and libnuma from the
 * distribution): only the vendor's own runtime (libcuda, libnvidia-ml; libamdhip64,
 * libhsa-runtime64) says a driver is installed. Without one nothing is bound, so a host
 * without the GPU never puts its Mesa libraries over the image's.
 */
export function driverFound(d: GpuDriver): boolean {
  return d.libraries.some((l) => VENDOR[d.vendor].versionLibs.some((v) => isLibraryFile(l.name, v)));
}

export interface DriverSettings {
  /** The shipped list, then the site's. */
  lists: string[];
  /** Prefixes to search instead of the defaults. */
  roots?: string[];
  /** Where the shipped lists are (data/ in ctr's install). */
  dataDir: string;
}

const VENDOR = {
  nvidia: {
    list: 'nvliblist.conf',
    dirs: ['/usr/local/nvidia/lib64', '/usr/local/nvidia/lib'],
    bins: ['/usr/local/nvidia/bin'],
    devices: (names: string[]) => names.filter((n) => /^nvidia(\d+|ctl|-uvm|-uvm-tools|-modeset)$/.test(n)),
    subdirs: ['nvidia-caps'],
    versionLibs: ['libcuda.so', 'libnvidia-ml.so'],
  },
  rocm: {
    list: 'rocmliblist.conf',
    dirs: ['/opt/rocm/lib', '/opt/rocm/lib64'],
    bins: ['/opt/rocm/bin'],
    devices: (names: string[]) => names.filter((n) => n === 'kfd'),
    subdirs: ['dri'],
    versionLibs: ['libamdhip64.so', 'libhsa-runtime64.so'],
  },
} as const;

const MULTIARCH: Record<string, string> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ppc64: 'powerpc64le-linux-gnu' };

export function readNameLists(vendor: Vendor, s: DriverSettings): NameList {
  const files = [join(s.dataDir, VENDOR[vendor].list), ...s.lists];
  return mergeNameLists(files.map((f) => {
    let text: string;
    try {
      const st = statSync(f);
      if (st.size > LIST_MAX) throw new CtrError(`name list ${f}`, `larger than ${LIST_MAX >> 20} MiB`);
      const why = untrusted(st);
      if (why) throw new CtrError(`name list ${f}`, why);
      text = readFileSync(f, 'utf8');
    } catch (err) {
      if (err instanceof CtrError) throw err;
      throw new CtrError(`name list ${f}`, describeSystemError(err));
    }
    return parseNameList(text, f);
  }));
}

export function findDriver(vendor: Vendor, s: DriverSettings): GpuDriver {
  const v = VENDOR[vendor];
  const names = readNameLists(vendor, s);
  const libraries = new Map<string, string>();
  const add = (name: string, path: string) => {
    if (libraries.has(name) || !names.libraries.some((l) => isLibraryFile(name, l))) return;
    const real = regularFile(path);
    if (real) libraries.set(name, real);
  };
  const searched: string[] = [];
  let libDirs: string[], binDirs: string[];
  if (s.roots?.length) {
    const ma = MULTIARCH[process.arch];
    libDirs = s.roots.flatMap((r) => [join(r, 'lib64'), ...(ma ? [join(r, 'lib', ma)] : []), join(r, 'lib')]);
    binDirs = s.roots.map((r) => join(r, 'bin'));
    searched.push(...s.roots.map((r) => `${r} (the driver prefix the site names)`));
  } else {
    searched.push('the ld.so cache');
    for (const e of ldCache()) if (entryFits(e, process.arch)) add(e.name, e.path);
    libDirs = [...v.dirs];
    binDirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/')), '/usr/bin', ...v.bins];
    searched.push(...v.dirs);
  }
  for (const dir of libDirs) for (const name of listDir(dir)) add(name, join(dir, name));

  const programs: GpuDriver['programs'] = [];
  for (const p of names.programs) {
    for (const dir of binDirs) {
      const real = regularFile(join(dir, p));
      if (real) {
        programs.push({ name: p, path: real });
        break;
      }
    }
  }
  const found: GpuDriver = {
    vendor,
    searched,
    libraries: [...libraries].map(([name, path]) => ({ name, path })),
    programs,
    files: names.files.filter((f) => exists(f)),
    devices: [...v.devices(listDir('/dev')).map((n) => `/dev/${n}`), ...v.subdirs.flatMap((d) => listDir(`/dev/${d}`).map((n) => `/dev/${d}/${n}`))]
      .filter(isDevice).sort(),
  };
  const version = driverVersion(vendor, found, s.roots);
  return version ? { ...found, version } : found;
}

/** The driver's version: the kernel module's for NVIDIA, else the libraries' file names. */
function driverVersion(vendor: Vendor, d: GpuDriver, roots?: string[]): string | undefined {
  if (vendor === 'nvidia' && !roots?.length) {
    const m = /Kernel Module(?: for \S+)?\s+(\d[\d.]*)/.exec(readSmall('/proc/driver/nvidia/version'));
    if (m) return m[1];
  }
  if (vendor === 'rocm') {
    for (const r of roots?.length ? roots : ['/opt/rocm']) {
      const text = readSmall(join(r, '.info/version')).trim();
      if (/^[\w.-]{1,64}$/.test(text)) return text;
    }
  }
  for (const lib of VENDOR[vendor].versionLibs) {
    for (const l of d.libraries) {
      if (!isLibraryFile(l.name, lib)) continue;
      const m = /\.so\.(\d+\.\d+(?:\.\d+)*)$/.exec(l.path);
      if (m) return m[1];
    }
  }
  return undefined;
}

/** The host's ld.so cache entries; none when it is missing or unreadable. */
function ldCache() {
  try {
    const st = statSync('/etc/ld.so.cache');
    if (st.size > 64 << 20) return [];
    return parseLdCache(readFileSync('/etc/ld.so.cache'));
  } catch {
    return [];
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function regularFile(path: string): string | undefined {
  try {
    const real = realpathSync.native(path);
    return statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function isDevice(path: string): boolean {
  try {
    const st = statSync(path);
    return st.isCharacterDevice() || st.isBlockDevice();
  } catch {
    return false;
  }
}

function readSmall(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(0, 4096);
  } catch {
    return '';
  }
}
