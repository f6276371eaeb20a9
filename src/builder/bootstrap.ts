// Bootstrap agents: make the root file system a definition file starts from, in DIR.
import { execa } from 'execa';
import { chmod, cp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CtrError } from '../errors.js';
import { openImage } from '../image/open.js';
import { SquashfsReader } from '../squashfs/read.js';
import type { Definition } from './definition.js';
import { extractImage } from './extract.js';
import { progress } from './progress.js';
import { STANDARD_DIRS } from '../image/layout.js';


export interface BootstrapOptions {
  /** Plain HTTP to the registry (Bootstrap: docker), as `ctr build --no-https`. */
  noHttps?: boolean;
}

export async function bootstrap(def: Definition, dir: string, opts: BootstrapOptions = {}): Promise<void> {
  switch (def.bootstrap) {
    case 'docker':
    case 'oci':
    case 'oci-archive':
    case 'docker-archive':
      return fromOci(`${def.bootstrap === 'docker' ? 'docker://' : `${def.bootstrap}:`}${def.header.from.replace(/^docker:\/\//, '')}`, dir, opts);
    case 'scratch':
      return;
    case 'busybox':
      return busybox(dir);
    case 'localimage':
      return localImage(def.header.from, dir);
    case 'debootstrap':
      return debootstrap(def, dir);
    default:
      throw new CtrError(`bootstrap ${def.bootstrap}`, 'not supported');
  }
}

/**
 * An OCI/Docker image: pulled into a SIF beside DIR (layers applied, ownership mapped,
 * the config made /.singularity.d), then unpacked like a local image, so %files and %post
 * work on a plain tree. The intermediate SIF is removed.
 */
async function fromOci(ref: string, dir: string, opts: BootstrapOptions): Promise<void> {
  const { pullToSif } = await import('../oci/index.js');
  const tmp = `${dir}.pulled.sif`;
  try {
    await pullToSif(ref, tmp, { force: true, https: !opts.noHttps });
    await localImage(tmp, dir);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Debian's static busybox, one link per applet, and the files a shell expects. */
async function busybox(dir: string): Promise<void> {
  const bb = '/bin/busybox';
  const { stdout } = await execa(bb, ['--list-full']).catch(() => {
    throw new CtrError('bootstrap busybox', `${bb} not found or not runnable (apt-get install busybox-static)`);
  });
  await mkdir(join(dir, 'bin'), { recursive: true });
  await cp(bb, join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  for (const rel of stdout.split('\n').filter(Boolean)) {
    if (rel === 'bin/busybox') continue;
    const at = join(dir, rel);
    await mkdir(dirname(at), { recursive: true });
    const depth = rel.split('/').length - 1;
    await symlink(`${'../'.repeat(depth)}bin/busybox`, at).catch((err) => { if (err.code !== 'EEXIST') throw err; });
  }
  await standardDirs(dir);
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
}

async function standardDirs(dir: string): Promise<void> {
  for (const [d, mode] of STANDARD_DIRS) {
    await mkdir(join(dir, d), { recursive: true });
    await chmod(join(dir, d), mode); // past the umask: /tmp is 1777
  }
}

/** A SIF, SquashFS image or directory, unpacked (or copied) into DIR, made here. */
export const unpackInto = (from: string, dir: string) => localImage(from, dir);

async function localImage(from: string, dir: string): Promise<void> {
  const img = await openImage(from);
  if (img.kind === 'dir') {
    await cp(img.path, dir, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    return;
  }
  const reader = SquashfsReader.open(img.path, { offset: img.offset });
  try {
    const { skipped } = await extractImage(reader, dir);
    if (skipped.length) progress(`left out of ${from} (devices, FIFOs, sockets): ${skipped.slice(0, 5).join(' ')}${skipped.length > 5 ? ` and ${skipped.length - 5} more` : ''}`);
  } finally {
    reader.close();
  }
}

/** Debian through mmdebstrap: `OSVersion` (suite), `MirrorURL`, `Include` (packages). */
async function debootstrap(def: Definition, dir: string): Promise<void> {
  const suite = def.header.osversion || 'bookworm';
  const args = ['--variant=minbase', '--quiet'];
  if (def.header.include) args.push(`--include=${def.header.include.split(/[\s,]+/).filter(Boolean).join(',')}`);
  args.push(suite, dir);
  if (def.header.mirrorurl) args.push(def.header.mirrorurl);
  const r = await execa('mmdebstrap', args, { reject: false, all: true });
  if (r.failed) {
    const why = (r as { code?: string }).code === 'ENOENT' ? 'mmdebstrap not found (apt-get install mmdebstrap)'
      : `mmdebstrap exited with ${r.exitCode}:\n${String(r.all ?? '').trim().split('\n').slice(-10).join('\n')}`;
    throw new CtrError('bootstrap debootstrap', why);
  }
}
