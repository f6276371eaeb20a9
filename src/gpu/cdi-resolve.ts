// `--device VENDOR/CLASS=NAME` (or =all) against the CDI specs found: which edits apply.
// As the CDI reference does, a spec in a later directory (/var/run/cdi after /etc/cdi)
// overrides one of the same kind in an earlier one; the same device twice in one
// directory is an error. Pure.
import { CtrError } from '../errors.js';
import { DEVICE_NAME, type CdiEdits, type CdiSpec } from './cdi-spec.js';

export type HookPolicy = 'error' | 'skip';

export interface FoundSpec {
  spec: CdiSpec;
  /** The index of its directory in the search order: higher wins. */
  priority: number;
}

export interface CdiSelection {
  /** Fully qualified names, in the order asked. */
  devices: string[];
  /** Each device's edits, then each spec's own edits once, with the file they are from. */
  edits: Array<CdiEdits & { file: string }>;
  /** Hooks left out (cdi-hooks = skip), for --debug. */
  skippedHooks: string[];
}

const REQUEST = /^([^/=]+\/[^/=]+)=(.+)$/;

export function selectCdiDevices(requests: readonly string[], found: readonly FoundSpec[], dirs: readonly string[], hooks: HookPolicy = 'error'): CdiSelection {
  // kind -> device name -> the spec that defines it
  const byKind = new Map<string, Map<string, FoundSpec>>();
  for (const f of found) {
    const devs = byKind.get(f.spec.kind) ?? new Map<string, FoundSpec>();
    byKind.set(f.spec.kind, devs);
    for (const name of f.spec.devices.keys()) {
      const had = devs.get(name);
      if (had && had.priority === f.priority) {
        throw new CtrError(`CDI device ${f.spec.kind}=${name}`, `defined both in ${had.spec.file} and in ${f.spec.file}`);
      }
      if (!had || had.priority < f.priority) devs.set(name, f);
    }
  }
  const out: CdiSelection = { devices: [], edits: [], skippedHooks: [] };
  const specsUsed = new Set<FoundSpec>();
  const chosen: Array<{ q: string; f: FoundSpec; e: CdiEdits }> = [];
  for (const req of requests) {
    const m = REQUEST.exec(req);
    if (!m || !DEVICE_NAME.test(m[2])) throw new CtrError(`--device ${req}`, 'expected VENDOR/CLASS=NAME (e.g. nvidia.com/gpu=0, or =all)');
    const [, kind, name] = m;
    const devs = byKind.get(kind);
    const names = devs ? (devs.has(name) || name !== 'all' ? [name] : [...devs.keys()].sort()) : [];
    if (!devs?.has(names[0])) throw new CtrError(`--device ${req}`, `no CDI spec defines it; ${describeKinds(byKind, dirs)}`);
    for (const n of names) {
      const q = `${kind}=${n}`;
      if (out.devices.includes(q)) continue;
      const f = devs.get(n)!;
      out.devices.push(q);
      chosen.push({ q, f, e: f.spec.devices.get(n)! });
      specsUsed.add(f);
    }
  }
  const all = [...chosen, ...[...specsUsed].map((f) => ({ q: `${f.spec.kind} (the spec's own edits)`, f, e: f.spec.edits }))];
  for (const { q, f, e } of all) {
    if (e.unsupported.length) {
      throw new CtrError(`CDI device ${q}`, `${f.spec.file} asks for ${e.unsupported.join(', ')}, which a rootless container can't have`);
    }
    for (const h of e.hooks) {
      if (hooks === 'skip') {
        out.skippedHooks.push(`${h.hookName} ${h.path} (${f.spec.file})`);
        continue;
      }
      throw new CtrError(`CDI device ${q}`, `${f.spec.file} asks for a ${h.hookName} hook (${h.path}): ctr runs no CDI hooks (they expect a runtime running as root)`,
        { hint: 'set cdi-hooks = skip in the site config to use the device without its hooks' });
    }
    out.edits.push({ ...e, file: f.spec.file });
  }
  return out;
}

function describeKinds(byKind: Map<string, Map<string, FoundSpec>>, dirs: readonly string[]): string {
  if (byKind.size === 0) return `no CDI specs found in ${dirs.join(', ')}`;
  const kinds = [...byKind.keys()].sort().map((k) => {
    const names = [...byKind.get(k)!.keys()].sort();
    const shown = names.length > 8 ? [...names.slice(0, 8), `and ${names.length - 8} more`] : names;
    return `${k} (${shown.join(', ')})`;
  });
  return `kinds found: ${kinds.join('; ')}`;
}
