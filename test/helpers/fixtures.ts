// Small programs and crafted images for the isolation and escape tests, built once and
// cached like the other test images (helpers/images.ts).
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, cp, mkdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO } from './paths.js';
import { busyboxDir, cached } from './images.js';

/** test/fixtures/privcalls.c, static (it runs inside busybox images) and non-PIE;
 * cached under a name made from its source, so an edit rebuilds it. */
export function privcalls(): Promise<string> {
  const src = join(REPO, 'test/fixtures/privcalls.c');
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  return cached(`privcalls-${hash}`, async (tmp) => {
    await execa('gcc', ['-static', '-no-pie', '-O1', '-o', tmp, src]);
    await chmod(tmp, 0o755);
  }, false);
}

/** test/fixtures/slowdeath.c as a preload library (see there). */
export function slowdeath(): Promise<string> {
  const src = join(REPO, 'test/fixtures/slowdeath.c');
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  return cached(`slowdeath-${hash}.so`, async (tmp) => {
    await execa('gcc', ['-shared', '-fPIC', '-O1', '-o', tmp, src, '-ldl']);
    await chmod(tmp, 0o755);
  }, false);
}

/** The busybox tree, changed by EDIT, as a bare SquashFS (mksquashfs keeps FIFOs, sparse files, links). */
export function craftedImage(name: string, edit: (root: string) => Promise<void>): Promise<string> {
  return cached(`crafted-${name}.sqfs`, async (tmp) => {
    const root = `${tmp}.tree`;
    await rm(root, { recursive: true, force: true });
    await cp(await busyboxDir(), root, { recursive: true, verbatimSymlinks: true });
    await edit(root);
    await execa('mksquashfs', [root, tmp, '-noappend', '-all-root', '-comp', 'zstd', '-quiet', '-no-progress']);
    await chmod(tmp, 0o644);
    await rm(root, { recursive: true, force: true });
  });
}

/** Replace PATH in the tree ROOT by a symlink to TARGET. */
export async function plantLink(root: string, path: string, target: string): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true });
  await rm(join(root, path), { force: true });
  await symlink(target, join(root, path));
}

export async function plantFifo(root: string, path: string): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true });
  await rm(join(root, path), { force: true });
  await execa('mkfifo', [join(root, path)]);
}

/** A sparse file of SIZE bytes with a passwd line at its start. */
export async function plantSparse(root: string, path: string, size: number): Promise<void> {
  await writeFile(join(root, path), 'root:x:0:0:root:/root:/bin/sh\n');
  await truncate(join(root, path), size);
}
