// Apptainer's site conventions, read in the CLI layer so the planner stays pure:
// bind variables (CTR_BIND, APPTAINER_BIND[PATH], SINGULARITY_BIND[PATH]), the
// APPTAINER_/SINGULARITY_ CLEANENV, CONTAIN, HOME, NV, NVCCLI and ROCM variables, and the site config file
// /etc/ctr/ctr.conf (or $CTR_CONFIG). Synchronous and small: `ctr exec` runs it once per
// rank from the start-up snapshot. Nothing is kept between calls.
import { readFileSync } from 'node:fs';
import { CtrError, describeSystemError } from '../errors.js';
import { parseBinds } from '../plan/binds.js';
import type { GpuSite, LaunchOptions } from '../plan/options.js';
import { parseSize } from '../plan/size.js';

export const DEFAULT_CONFIG = '/etc/ctr/ctr.conf';
/** Bind variables, in the order their binds are added (all before the -B flags' binds). */
export const BIND_VARS = ['CTR_BIND', 'APPTAINER_BIND', 'APPTAINER_BINDPATH', 'SINGULARITY_BIND', 'SINGULARITY_BINDPATH'];

export interface SiteConfig {
  /** Where it was read from; undefined when there is no file. */
  path?: string;
  /** `bind = ...` lines: skipped where the source is missing on this node. */
  binds: string[];
  writableTmpfsSize?: number;
  /** cdi-spec-dir, cdi-hooks, nv-list, rocm-list, nv-root, rocm-root. */
  gpu: GpuSite;
  /** Where cgroups delegated to users are (host/cgroups.ts): %u user, %U uid. */
  cgroupRoot?: string;
}

/** Keys whose value is an absolute path, repeatable, and the GpuSite list they add to. */
const GPU_PATH_KEYS = { 'cdi-spec-dir': 'cdiDirs', 'nv-list': 'nvLists', 'rocm-list': 'rocmLists', 'nv-root': 'nvRoots', 'rocm-root': 'rocmRoots' } as const;
const KEYS = ['bind', 'writable-tmpfs-size', 'cgroup-root', 'cdi-hooks', ...Object.keys(GPU_PATH_KEYS)];

/** 1, true, yes (any case) are on; anything else, or unset, is off. */
export function truthy(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes)$/i.test(value.trim());
}

/** Parse the config file's TEXT; errors name PATH and the line. Pure. */
export function parseSiteConfig(text: string, path: string): SiteConfig {
  const out: SiteConfig = { path, binds: [], gpu: { nvLists: [], rocmLists: [] } };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const fail = (why: string) => new CtrError(`config ${path}`, `line ${i + 1}: ${why}`);
    const eq = line.indexOf('=');
    if (eq < 0) throw fail(`expected KEY = VALUE, got ${JSON.stringify(line)}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (value === '') throw fail(`${key}: no value`);
    try {
      if (key === 'bind') {
        parseBinds([value]);
        out.binds.push(value);
      } else if (key === 'writable-tmpfs-size') {
        out.writableTmpfsSize = parseSize(value, 'writable-tmpfs-size');
      } else if (key === 'cdi-hooks') {
        if (value !== 'error' && value !== 'skip') throw new CtrError(`cdi-hooks: ${JSON.stringify(value)} is not error or skip`, '');
        out.gpu.cdiHooks = value;
      } else if (key in GPU_PATH_KEYS) {
        if (!value.startsWith('/')) throw new CtrError(`${key}: ${JSON.stringify(value)} is not an absolute path`, '');
        const field = GPU_PATH_KEYS[key as keyof typeof GPU_PATH_KEYS];
        out.gpu[field] = [...(out.gpu[field] ?? []), value];
      } else if (key === 'cgroup-root') {
        if (/(^|\/)\.\.(\/|$)/.test(value)) throw new CtrError(`cgroup-root ${JSON.stringify(value)}`, 'no .. in it');
        out.cgroupRoot = value;
      } else {
        throw new CtrError(`unknown key ${JSON.stringify(key)}`, '', { hint: `keys: ${KEYS.join(', ')}` });
      }
    } catch (err) {
      if (err instanceof CtrError) throw fail(err.message);
      throw err;
    }
  }
  return out;
}

/** Read the site config once, synchronously, if it exists. */
export function readSiteConfig(env: NodeJS.ProcessEnv = process.env): SiteConfig {
  const path = env.CTR_CONFIG || DEFAULT_CONFIG;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { binds: [], gpu: { nvLists: [], rocmLists: [] } };
    throw new CtrError(`config ${path}`, describeSystemError(err));
  }
  return parseSiteConfig(text, path);
}

/**
 * OPTS (from the flags) with the environment's and the site config's settings added:
 * variable binds before the flags' binds, config binds as optional ones; a flag given
 * wins over a variable, a variable or flag over the config.
 */
export function withSiteSettings(opts: LaunchOptions, env: NodeJS.ProcessEnv = process.env, site = readSiteConfig(env)): LaunchOptions {
  const envBinds = BIND_VARS.map((v) => env[v]).filter((v): v is string => !!v);
  const first = (...names: string[]) => names.map((n) => env[n]).find((v) => v !== undefined && v !== '');
  const home = opts.home ?? first('APPTAINER_HOME', 'SINGULARITY_HOME');
  return {
    ...opts,
    bind: [...envBinds, ...opts.bind],
    ...(site.binds.length ? { siteBind: site.binds } : {}),
    gpuSite: site.gpu,
    cleanenv: opts.cleanenv || truthy(first('APPTAINER_CLEANENV', 'SINGULARITY_CLEANENV')),
    noEnv: [...(opts.noEnv ?? []), ...[first('APPTAINER_NOENV', 'SINGULARITY_NOENV')].filter((v): v is string => !!v)],
    noEval: opts.noEval || truthy(first('APPTAINER_NO_EVAL', 'SINGULARITY_NO_EVAL')),
    contain: opts.contain || truthy(first('APPTAINER_CONTAIN', 'SINGULARITY_CONTAIN')),
    nv: opts.nv || truthy(first('APPTAINER_NV', 'SINGULARITY_NV')),
    nvccli: opts.nvccli || truthy(first('APPTAINER_NVCCLI', 'SINGULARITY_NVCCLI')),
    rocm: opts.rocm || truthy(first('APPTAINER_ROCM', 'SINGULARITY_ROCM')),
    ...(home !== undefined && !opts.noHome ? { home } : {}),
    ...(opts.writableTmpfsSize === undefined && site.writableTmpfsSize !== undefined ? { writableTmpfsSize: site.writableTmpfsSize } : {}),
    ...(site.cgroupRoot !== undefined ? { cgroupRoot: site.cgroupRoot } : {}),
  };
}
