// A CDI (Container Device Interface) spec, checked: the JSON or YAML that vendors' tools
// write to /etc/cdi and /var/run/cdi (`nvidia-ctk cdi generate`), versions 0.5 to 0.8.
// Spec files are input ctr does not control, so everything is checked and bounded, and
// a mistake is one error naming the file and where in it. Pure: a parsed document in, a
// spec out (cdi-read.ts reads the files; cdi-resolve.ts picks the devices).
import { CtrError } from '../errors.js';

export interface CdiDeviceNode {
  /** Where the node appears in the container. */
  path: string;
  /** The host's node that is bound there (hostPath, else path). */
  hostPath: string;
  type?: 'c' | 'b' | 'p';
  major?: number;
  minor?: number;
}

export interface CdiMount {
  hostPath: string;
  containerPath: string;
  ro: boolean;
}

export interface CdiHook {
  hookName: string;
  path: string;
}

export interface CdiEdits {
  env: string[];
  deviceNodes: CdiDeviceNode[];
  mounts: CdiMount[];
  hooks: CdiHook[];
  /** Edits ctr can't carry out without privilege (additionalGids, intelRdt, netDevices). */
  unsupported: string[];
}

export interface CdiSpec {
  file: string;
  version: string;
  /** "vendor.com/class". */
  kind: string;
  devices: Map<string, CdiEdits>;
  /** The spec-wide edits, applied once when any of its devices is used. */
  edits: CdiEdits;
}

/** Bounds on what one spec may hold. */
export const CDI_LIMITS = { devices: 4096, list: 1024, string: 4096 };
export const CDI_VERSIONS = /^0\.[5-8]\.\d+$/;
const VENDOR = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const CLASS = /^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$/;
export const DEVICE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$/;
const ENV = /^[A-Za-z_][A-Za-z0-9_]*=/;
const HOOK_NAMES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];
/** Mount options that say how to bind; the rest (nosuid, nodev, ...) are left as the source has them. */
const BIND_TYPES = [undefined, 'bind', 'rbind', 'none'];

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkCdiSpec(doc: Json, file: string): CdiSpec {
  const fail = (where: string, why: string) => new CtrError(`CDI spec ${file}`, where ? `${where}: ${why}` : why);
  const str = (v: Json, where: string): string => {
    if (typeof v !== 'string' || v === '') throw fail(where, `expected a non-empty string, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
    if (v.length > CDI_LIMITS.string || v.includes('\0')) throw fail(where, `longer than ${CDI_LIMITS.string} characters or holds a NUL`);
    return v;
  };
  const absPath = (v: Json, where: string): string => {
    const p = str(v, where);
    if (!p.startsWith('/')) throw fail(where, `${JSON.stringify(p)} is not an absolute path`);
    if (p.split('/').includes('..')) throw fail(where, `${JSON.stringify(p)} has a ".." component`);
    const out = p.replace(/\/+/g, '/');
    return out.length > 1 ? out.replace(/\/$/, '') : out;
  };
  const list = (v: Json, where: string): Json[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw fail(where, 'expected a list');
    if (v.length > CDI_LIMITS.list) throw fail(where, `more than ${CDI_LIMITS.list} entries`);
    return v;
  };
  const int = (v: Json, where: string, max: number): number | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw fail(where, `expected a whole number from 0 to ${max}`);
    return v;
  };

  const edits = (v: Json, where: string): CdiEdits => {
    const out: CdiEdits = { env: [], deviceNodes: [], mounts: [], hooks: [], unsupported: [] };
    if (v === undefined || v === null) return out;
    if (!isObject(v)) throw fail(where, 'expected a mapping');
    list(v.env, `${where}.env`).forEach((e, i) => {
      const s = str(e, `${where}.env[${i}]`);
      if (!ENV.test(s)) throw fail(`${where}.env[${i}]`, `${JSON.stringify(s)} is not NAME=VALUE`);
      out.env.push(s);
    });
    list(v.deviceNodes, `${where}.deviceNodes`).forEach((d, i) => {
      const w = `${where}.deviceNodes[${i}]`;
      if (!isObject(d)) throw fail(w, 'expected a mapping');
      const path = absPath(d.path, `${w}.path`);
      const node: CdiDeviceNode = { path, hostPath: d.hostPath === undefined ? path : absPath(d.hostPath, `${w}.hostPath`) };
      if (d.type !== undefined) {
        if (d.type !== 'c' && d.type !== 'b' && d.type !== 'p' && d.type !== 'u') throw fail(`${w}.type`, `${JSON.stringify(d.type)} is not c, b, u or p`);
        node.type = d.type === 'u' ? 'c' : d.type;
      }
      const major = int(d.major, `${w}.major`, 0xfff), minor = int(d.minor, `${w}.minor`, 0xfffff);
      if (major !== undefined) node.major = major;
      if (minor !== undefined) node.minor = minor;
      out.deviceNodes.push(node);
    });
    list(v.mounts, `${where}.mounts`).forEach((m, i) => {
      const w = `${where}.mounts[${i}]`;
      if (!isObject(m)) throw fail(w, 'expected a mapping');
      const options = list(m.options, `${w}.options`).map((o, k) => str(o, `${w}.options[${k}]`));
      if (m.type !== undefined && typeof m.type !== 'string') throw fail(`${w}.type`, 'expected a string');
      if (!BIND_TYPES.includes(m.type as string | undefined)) {
        throw fail(`${w}.type`, `a ${JSON.stringify(m.type)} mount: ctr adds bind mounts only`);
      }
      out.mounts.push({ hostPath: absPath(m.hostPath, `${w}.hostPath`), containerPath: absPath(m.containerPath, `${w}.containerPath`), ro: options.includes('ro') && !options.includes('rw') });
    });
    list(v.hooks, `${where}.hooks`).forEach((h, i) => {
      const w = `${where}.hooks[${i}]`;
      if (!isObject(h)) throw fail(w, 'expected a mapping');
      const hookName = str(h.hookName, `${w}.hookName`);
      if (!HOOK_NAMES.includes(hookName)) throw fail(`${w}.hookName`, `${JSON.stringify(hookName)} is not one of ${HOOK_NAMES.join(', ')}`);
      out.hooks.push({ hookName, path: absPath(h.path, `${w}.path`) });
    });
    for (const key of ['additionalGids', 'intelRdt', 'netDevices']) {
      const x = v[key];
      if (x !== undefined && x !== null && !(Array.isArray(x) && x.length === 0)) out.unsupported.push(key);
    }
    return out;
  };

  if (!isObject(doc)) throw fail('', 'not a mapping (a CDI spec is a JSON or YAML object)');
  const version = str(doc.cdiVersion, 'cdiVersion');
  if (!CDI_VERSIONS.test(version)) throw fail('cdiVersion', `${JSON.stringify(version)} is not a version ctr reads (0.5.0 to 0.8.x)`);
  const kind = str(doc.kind, 'kind');
  const [vendor, cls, ...more] = kind.split('/');
  if (more.length || !VENDOR.test(vendor) || cls === undefined || !CLASS.test(cls)) throw fail('kind', `${JSON.stringify(kind)} is not VENDOR/CLASS`);
  if (!Array.isArray(doc.devices) || doc.devices.length === 0) throw fail('devices', 'expected a list of at least one device');
  if (doc.devices.length > CDI_LIMITS.devices) throw fail('devices', `more than ${CDI_LIMITS.devices} devices`);
  const devices = new Map<string, CdiEdits>();
  doc.devices.forEach((d: Json, i: number) => {
    const w = `devices[${i}]`;
    if (!isObject(d)) throw fail(w, 'expected a mapping');
    const name = str(d.name, `${w}.name`);
    if (!DEVICE_NAME.test(name)) throw fail(`${w}.name`, `${JSON.stringify(name)} is not a device name (letters, digits, _ . : -)`);
    if (devices.has(name)) throw fail(`${w}.name`, `device ${JSON.stringify(name)} is defined twice`);
    if (d.containerEdits === undefined) throw fail(`${w}.containerEdits`, 'missing');
    devices.set(name, edits(d.containerEdits, `${w}.containerEdits`));
  });
  return { file, version, kind, devices, edits: edits(doc.containerEdits, 'containerEdits') };
}
