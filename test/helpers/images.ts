// Test images, built once and cached (CACHE): a busybox root file system as a bare
// SquashFS (mksquashfs) and as a SIF assembled by the SIF reference tool (siftool), so
// ctr is tested on bytes it did not write itself.
import { execa } from 'execa';
import { access, chmod, cp, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CACHE, CTR_MAIN, SIFTOOL } from './paths.js';

const APPLETS = ['sh', 'ls', 'cat', 'echo', 'id', 'true', 'false', 'env', 'pwd', 'touch', 'mkdir', 'sleep',
  'kill', 'stat', 'readlink', 'mount', 'grep', 'wc', 'head', 'test', 'printf', 'ps', 'chmod', 'rm', 'tty', 'dd'];

/** A busybox root file system with Apptainer metadata (env script, runscript) and a setuid file. */
export async function makeBusyboxTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await mkdir(join(dir, 'etc'), { recursive: true });
  await mkdir(join(dir, '.singularity.d/env'), { recursive: true });
  await cp('/bin/busybox', join(dir, 'bin/busybox'));
  for (const a of APPLETS) await symlink('busybox', join(dir, 'bin', a));
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\n');
  await writeFile(join(dir, 'etc/image-release'), 'busybox test image\n');
  await writeFile(join(dir, '.singularity.d/env/90-environment.sh'),
    'export IMAGE_VAR="from the image"\nexport PATH="/bin:$PATH"\nexport OVERRIDDEN=image\n');
  await writeFile(join(dir, '.singularity.d/runscript'), '#!/bin/sh\necho "runscript: $*"\n', { mode: 0o755 });
  // A setuid-root copy of busybox: running it must give no privilege.
  await cp('/bin/busybox', join(dir, 'bin/suid-busybox'));
  await chmod(join(dir, 'bin/suid-busybox'), 0o4755);
}

/** Cached images are named after this file's contents: change how they are made, and they are made anew. */
const VERSION = createHash('sha256').update(readFileSync(fileURLToPath(import.meta.url))).digest('hex').slice(0, 10);

/** CACHE/NAME, made once by BUILD (into a temporary name, renamed when complete). */
export async function cached(name: string, build: (tmp: string) => Promise<void>, versioned = true): Promise<string> {
  const out = join(CACHE, versioned ? `${VERSION}-${name}` : name);
  try {
    await access(out);
    return out;
  } catch { /* build it */ }
  await mkdir(CACHE, { recursive: true, mode: 0o755 });
  await chmod(CACHE, 0o755);
  const tmp = `${out}.tmp${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await build(tmp);
  await rename(tmp, out);
  return out;
}

/** The busybox tree as a directory image. */
export function busyboxDir(): Promise<string> {
  return cached('busybox.dir', (tmp) => makeBusyboxTree(tmp));
}

/** The busybox tree as a bare SquashFS (mksquashfs, files owned by root). */
export async function busyboxSqfs(): Promise<string> {
  const dir = await busyboxDir();
  return cached('busybox.sqfs', async (tmp) => {
    await execa('mksquashfs', [dir, tmp, '-noappend', '-all-root', '-comp', 'zstd', '-quiet', '-no-progress']);
    await chmod(tmp, 0o644);
  });
}

/** The same SquashFS inside a SIF made by the reference tool (siftool new + add). */
export async function busyboxSif(arch = '2'): Promise<string> {
  const sqfs = await busyboxSqfs();
  return cached(`busybox-arch${arch}.sif`, async (tmp) => {
    await execa(SIFTOOL, ['new', tmp]);
    await execa(SIFTOOL, ['add', tmp, sqfs, '--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', arch]);
    await chmod(tmp, 0o644);
  });
}

/** Debian bookworm minbase made by mmdebstrap (as root), as a SIF built by ctr: for real
 * package managers (fake-root builds) and glibc's ldconfig (the compat cases). */
export function debianSif(): Promise<string> {
  return cached('debian-bookworm-minbase.sif', async (tmp) => {
    const tar = `${tmp}.tar`;
    await execa('mmdebstrap', ['--variant=minbase', '--quiet', 'bookworm', tar]);
    await execa(process.execPath, [CTR_MAIN, 'build', tmp, tar]);
    await chmod(tmp, 0o644);
    await rm(tar, { force: true });
  }, false);
}
