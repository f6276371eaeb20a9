// The host's CRIU, as the launcher runs it inside a container (native/launch_criu.c): its
// path, version, dynamic loader and library directories. The container's tree is the
// image's, so the launcher runs CRIU through the host's own loader, with the host's
// library directories named, all under a descriptor of the host's root.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, openSync, readSync, closeSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { CtrError } from '../errors.js';

export interface Criu {
  path: string;
  version: string;
  interp: string;
  libraryPath: string;
}

/** CRIU's --unprivileged mode (it runs as the user, with the container's capabilities). */
const MIN_MAJOR = 4;
const INSTALL_HINT = 'install CRIU 4.0 or later (Debian trixie\'s criu; scripts/setup.sh --test builds 4.1.1 into /opt/ctr-test/criu), or set CTR_CRIU to its path';

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** $CTR_CRIU, else criu in PATH, /usr/sbin or /usr/local/sbin. */
export function findCriu(env: NodeJS.ProcessEnv = process.env): Criu {
  let path = env.CTR_CRIU;
  if (path !== undefined && !executable(path)) throw new CtrError(`CTR_CRIU=${path}`, 'not an executable file', { hint: INSTALL_HINT });
  if (path === undefined) {
    const dirs = [...(env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/')), '/usr/sbin', '/usr/local/sbin'];
    path = dirs.map((d) => join(d, 'criu')).find(executable);
  }
  if (path === undefined) throw new CtrError('checkpoint', 'CRIU is not installed (no criu in PATH, /usr/sbin or /usr/local/sbin)', { hint: INSTALL_HINT });
  path = realpathSync(path);
  const out = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10000 });
  const m = /Version:\s*(\d+)\.(\d+)(?:\.(\d+))?/.exec(out.stdout ?? '');
  if (!m) throw new CtrError(`CRIU ${path}`, `did not say its version${out.error ? ` (${out.error.message})` : ''}`, { hint: INSTALL_HINT });
  const version = m.slice(1).filter((x) => x !== undefined).join('.');
  if (Number(m[1]) < MIN_MAJOR) throw new CtrError(`CRIU ${version} (${path})`, `too old: 4.0 or later runs without root (--unprivileged)`, { hint: INSTALL_HINT });
  const interp = realpathSync(elfInterpreter(path));
  return { path, version, interp, libraryPath: libraryDirs(path, interp).join(':') };
}

/** PT_INTERP of a 64-bit little-endian ELF executable. */
export function elfInterpreter(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(64);
    readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) throw new CtrError(`CRIU ${path}`, 'not a 64-bit little-endian ELF file');
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    if (phnum > 64 || phentsize < 56) throw new CtrError(`CRIU ${path}`, 'an ELF file with a bad program header');
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (ph.readUInt32LE(o) !== 3) continue; // PT_INTERP
      const off = Number(ph.readBigUInt64LE(o + 8));
      const size = Number(ph.readBigUInt64LE(o + 32));
      if (size < 2 || size > 4096) break;
      const s = Buffer.alloc(size);
      readSync(fd, s, 0, size, off);
      return s.toString('latin1').replace(/\0.*$/s, '');
    }
    throw new CtrError(`CRIU ${path}`, 'a statically linked or odd ELF file: no dynamic loader named');
  } finally {
    closeSync(fd);
  }
}

/** The directories of the libraries CRIU loads (ldd), the loader's first. */
function libraryDirs(path: string, interp: string): string[] {
  const out = spawnSync('ldd', [path], { encoding: 'utf8', timeout: 10000 });
  if (out.status !== 0) throw new CtrError(`ldd ${path}`, (out.stderr || out.error?.message || 'failed').trim().split('\n')[0]);
  const dirs = [dirname(interp)];
  for (const line of out.stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line);
    if (!m) {
      if (/not found/.test(line)) throw new CtrError(`CRIU ${path}`, `a library is missing: ${line.trim()}`);
      continue;
    }
    const d = dirname(realpathSync(m[1]));
    if (!dirs.includes(d)) dirs.push(d);
  }
  for (const d of dirs) if (d.includes(':')) throw new CtrError(`CRIU library directory ${d}`, 'has a colon in its name');
  return dirs;
}
