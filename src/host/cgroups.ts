// Where this user may make cgroups: the directories a site delegated, per cgroup v1
// hierarchy (memory, cpu, pids... each mounted on its own, as here and on RHEL 8) or in
// the one cgroup v2 tree. Found from /proc/self/cgroup (our own cgroup, writable where
// Slurm's task/cgroup made the step's for the user, or systemd delegated one), or the
// site config's `cgroup-root`: an absolute path from each hierarchy's root, or a relative
// one under our own cgroup; %u is the user's name, %U the uid. Reads only.
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import type { CgroupDir, CgroupLayout, Controller } from '../plan/cgroups.js';

interface Mount { point: string; root: string; v2: boolean; controllers: string[] }

function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of readOr('/proc/self/mountinfo').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const f = pre.split(' ');
    const [fstype, , superOpts = ''] = post.split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    out.push({ point: unescapeOctal(f[4]), root: unescapeOctal(f[3]), v2: fstype === 'cgroup2', controllers: fstype === 'cgroup' ? superOpts.split(',') : [] });
  }
  return out;
}

const unescapeOctal = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Our cgroup in a hierarchy: from /proc/self/cgroup, by controller ('' for v2). */
function ownPaths(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readOr('/proc/self/cgroup').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '') out.set('', m[2]);
    for (const c of m[1].split(',')) if (c) out.set(c, m[2]);
  }
  return out;
}

function writable(path: string): boolean {
  try {
    if (!statSync(path).isDirectory()) return false;
    accessSync(path, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The directory under mount M for our cgroup OWN, with the site's ROOT applied. */
function delegated(m: Mount, own: string, root: string | undefined, user: string, uid: number): string {
  const rel = own.startsWith(m.root) ? own.slice(m.root.length) : own;
  const base = `${m.point}${rel.startsWith('/') || rel === '' ? rel : `/${rel}`}`.replace(/\/+$/, '');
  if (root === undefined) return base;
  const r = root.replace(/%u/g, user).replace(/%U/g, String(uid));
  return (r.startsWith('/') ? `${m.point}${r}` : `${base}/${r}`).replace(/\/+$/, '').replace(/\/{2,}/g, '/');
}

export function findCgroups(needed: Controller[], root: string | undefined, user: string, uid: number, env: NodeJS.ProcessEnv): CgroupLayout {
  const all = mounts();
  const own = ownPaths();
  const where = root !== undefined ? `the site config's cgroup-root (${root})` : 'your own cgroup (/proc/self/cgroup)';
  const v1 = needed.map((c) => all.find((m) => !m.v2 && m.controllers.includes(c)));
  const dirs: CgroupDir[] = [];
  let version: 1 | 2 = 1;
  const unwritable: string[] = [];
  if (v1.every(Boolean)) {
    for (const m of new Set(v1 as Mount[])) {
      const controller = needed.find((c) => m.controllers.includes(c))!;
      const path = delegated(m, own.get(controller) ?? '/', root, user, uid);
      if (!writable(path)) unwritable.push(`${path} (${m.controllers.filter((c) => needed.includes(c as Controller)).join(', ')})`);
      else dirs.push({ controllers: m.controllers, path, files: readdirSync(path) });
    }
  } else {
    version = 2;
    const m = all.find((x) => x.v2);
    const missing = needed.filter((_, i) => !v1[i]);
    if (!m || !own.has('')) return fail(`no cgroup hierarchy has the ${missing.join(', ')} controller${missing.length > 1 ? 's' : ''}`);
    const path = delegated(m, own.get('')!, root, user, uid);
    const ours = delegated(m, own.get('')!, undefined, user, uid);
    // v2 moves a process only where the user may write the cgroup.procs of the common
    // ancestor of where it is and where it goes: ours, when PATH is below it.
    const ancestor = path.startsWith(`${ours}/`) || path === ours ? ours : m.point;
    if (!writable(path) || !writableFile(`${ancestor}/cgroup.procs`)) unwritable.push(`${path} (cgroup v2)`);
    else {
      const enabled = readOr(`${path}/cgroup.subtree_control`).trim().split(/\s+/).filter(Boolean);
      dirs.push({ controllers: enabled, path, files: readdirSync(path) });
    }
  }
  if (unwritable.length) return fail(`no cgroup you may write: ${unwritable.join(', ')} from ${where}`);
  return { ok: true, version, dirs };

  function fail(why: string): CgroupLayout {
    const slurm = env.SLURM_JOB_ID ? 'Under Slurm the job step\'s own limits apply (srun --mem, --cpus-per-task); ' : '';
    const hint = version === 1
      ? `${slurm}an administrator must delegate a cgroup directory owned by ${user} in each hierarchy of ${needed.join(', ')} ` +
        `(cgroup v1), e.g. mkdir /sys/fs/cgroup/memory/ctr/${user} && chown ${user} /sys/fs/cgroup/memory/ctr/${user}, ` +
        'and name it in /etc/ctr/ctr.conf: cgroup-root = /ctr/%u'
      : `${slurm}an administrator must delegate a cgroup v2 subtree to ${user} (systemd: Delegate=yes for user@.service, ` +
        'then run ctr under systemd-run --user --scope -p Delegate=yes), or name a delegated one in /etc/ctr/ctr.conf: cgroup-root = PATH';
    return { ok: false, why, hint };
  }
}

function writableFile(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** "MAJOR:MINOR" of a block device PATH, or why not. */
export function blockDevice(path: string): { ok: true; numbers: string } | { ok: false; why: string } {
  try {
    const st = statSync(path);
    if (!st.isBlockDevice()) return { ok: false, why: 'not a block device' };
    // st.rdev: the kernel's new_encode_dev (major in bits 8-19, minor in 0-7 and 20-31).
    const major = (st.rdev >> 8) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    return { ok: true, numbers: `${major}:${minor}` };
  } catch (err) {
    return { ok: false, why: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such device' : String((err as Error).message) };
  }
}
