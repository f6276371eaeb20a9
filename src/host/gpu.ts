// The host facts behind --nv, --nvccli, --rocm and --device: the GPU drivers found and
// the CDI devices asked for, with their host files checked. Nothing is read unless one
// of those flags is given. --nv with no driver is a warning, as in Apptainer: the
// container still runs, without the GPU.
import { realpathSync, statSync, type Stats } from 'node:fs';
import { CtrError, describeSystemError } from '../errors.js';
import { readCdiSpecs, DEFAULT_CDI_DIRS } from '../gpu/cdi-read.js';
import { selectCdiDevices, type CdiSelection } from '../gpu/cdi-resolve.js';
import { driverFound, findDriver, type GpuDriver, type Vendor } from '../gpu/driver.js';
import { driverFromNvccli } from '../gpu/nvccli.js';
import { dataDir } from '../launch/launcher.js';
import type { GpuFacts, GpuSite, LaunchOptions } from '../plan/options.js';

const LABEL: Record<Vendor, { flag: string; what: string }> = {
  nvidia: { flag: '--nv', what: 'NVIDIA driver' },
  rocm: { flag: '--rocm', what: 'ROCm driver' },
};

/** Driver prefixes: CTR_NV_ROOT / CTR_ROCM_ROOT (colon lists), else the site config's. */
export function driverRoots(vendor: Vendor, site: GpuSite | undefined, env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const v = vendor === 'nvidia' ? env.CTR_NV_ROOT : env.CTR_ROCM_ROOT;
  if (v) return v.split(':').filter((r) => r.startsWith('/'));
  const r = vendor === 'nvidia' ? site?.nvRoots : site?.rocmRoots;
  return r?.length ? r : undefined;
}

export function findVendorDriver(vendor: Vendor, site: GpuSite | undefined): GpuDriver {
  return findDriver(vendor, {
    dataDir: dataDir(),
    lists: (vendor === 'nvidia' ? site?.nvLists : site?.rocmLists) ?? [],
    roots: driverRoots(vendor, site),
  });
}

export async function gatherGpuFacts(opts: LaunchOptions, exists: Set<string>, warn = (s: string) => process.stderr.write(s)): Promise<GpuFacts | undefined> {
  if (!opts.nv && !opts.nvccli && !opts.rocm && !opts.device?.length) return undefined;
  const drivers: GpuDriver[] = [];
  const wanted: Vendor[] = [...(opts.nv || opts.nvccli ? ['nvidia' as const] : []), ...(opts.rocm ? ['rocm' as const] : [])];
  for (const vendor of wanted) {
    const d = vendor === 'nvidia' && opts.nvccli ? driverFromNvccli() : findVendorDriver(vendor, opts.gpuSite);
    if (!driverFound(d)) {
      const l = LABEL[vendor];
      warn(`ctr: warning: ${opts.nvccli && vendor === 'nvidia' ? '--nvccli' : l.flag}: no ${l.what} found on this host (looked in ${d.searched.join(', ')}); the container runs without it\n`);
      continue;
    }
    drivers.push(d);
  }
  let cdi: CdiSelection | undefined;
  if (opts.device?.length) {
    const dirs = opts.gpuSite?.cdiDirs?.length ? opts.gpuSite.cdiDirs : DEFAULT_CDI_DIRS;
    cdi = selectCdiDevices(opts.device, await readCdiSpecs(dirs), dirs, opts.gpuSite?.cdiHooks);
    checkCdiHostFiles(cdi, exists);
  }
  const visible = process.env.NVIDIA_VISIBLE_DEVICES;
  return { drivers, ...(cdi ? { cdi } : {}), ...(visible !== undefined ? { nvidiaVisible: visible } : {}) };
}

/** Every host path a selected CDI edit names must exist, a device node be one (of the
 * type and numbers the spec gives); container /dev paths that the host has are noted. */
function checkCdiHostFiles(sel: CdiSelection, exists: Set<string>): void {
  for (const e of sel.edits) {
    const fail = (what: string, why: string) => new CtrError(`CDI spec ${e.file}`, `${what}: ${why}`);
    for (const n of e.deviceNodes) {
      let st: Stats;
      try {
        st = statSync(n.hostPath);
      } catch (err) {
        throw fail(`device node ${n.hostPath}`, describeSystemError(err));
      }
      const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : undefined;
      if (!type) throw fail(`device node ${n.hostPath}`, 'not a device node on this host');
      if (n.type && n.type !== type) throw fail(`device node ${n.hostPath}`, `the spec says type ${n.type}, the host's is ${type}`);
      const major = Math.floor(st.rdev / 256) & 0xfff, minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
      if ((n.major !== undefined && n.major !== major) || (n.minor !== undefined && n.minor !== minor)) {
        throw fail(`device node ${n.hostPath}`, `the spec says ${n.major ?? '*'}:${n.minor ?? '*'}, the host's is ${major}:${minor}`);
      }
      try {
        statSync(n.path);
        exists.add(n.path);
      } catch { /* not in the host's /dev */ }
    }
    for (const m of e.mounts) {
      try {
        m.hostPath = realpathSync.native(m.hostPath);
      } catch (err) {
        throw fail(`mount ${m.hostPath}`, describeSystemError(err));
      }
    }
  }
}
