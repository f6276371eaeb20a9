// Benchmark images, built once into BENCH_WORK with ctr itself, world-readable, plus the
// same SquashFS bytes as a bare file for ch-run (which can't read a SIF) and an
// unpacked tree for bubblewrap and for bare-metal runs of the same files.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO, sh } from './lib.js';

export const WORK = process.env.BENCH_WORK ?? '/var/tmp/ctr-bench';
export const CTR = [process.execPath, join(REPO, 'dist/src/cli/main.js')];
/** ctr as users start it: bin/ctr, which starts exec/run/shell/plan from the start-up snapshot. */
export const CTR_BIN = join(REPO, 'bin/ctr');
/** ctr as make install puts it in PREFIX/bin: the launcher under the name ctr (native/launch_front.c). */
export const CTR_FRONT = join(REPO, 'native/build/ctr');
/** As root, containers run as an unprivileged user, as they would in production. */
export const USER = process.getuid?.() === 0 ? (process.env.BENCH_USER ?? 'ctrbench') : undefined;
export const asUser = (cmd: string[]): string[] => (USER ? ['runuser', '-u', USER, '--', ...cmd] : cmd);

export interface BenchImage { sif: string; sqfs: string; dir: string }

export function workDir(): string {
  mkdirSync(WORK, { recursive: true });
  chmodSync(WORK, 0o777);
  if (USER && spawnSync('id', ['-u', USER]).status !== 0) sh(['useradd', '--create-home', USER]);
  return WORK;
}

/** Build NAME.sif from SOURCE (a definition file or a directory) unless present. */
export function image(name: string, source: string | (() => string)): BenchImage {
  workDir();
  const sif = join(WORK, `${name}.sif`);
  if (!existsSync(sif)) sh([...CTR, 'build', '--force', sif, typeof source === 'string' ? source : source()]);
  const sqfs = join(WORK, `${name}.sqfs`);
  if (!existsSync(sqfs)) {
    const info = JSON.parse(sh([...CTR, 'inspect', '--json', sif])) as { objects: Array<{ offset: number; size: number; partition?: unknown }> };
    const part = info.objects.find((o) => o.partition)!;
    const buf = Buffer.alloc(part.size);
    const fd = openSync(sif, 'r');
    readSync(fd, buf, 0, part.size, part.offset);
    closeSync(fd);
    writeFileSync(sqfs, buf);
  }
  const dir = join(WORK, `${name}.dir`);
  if (!existsSync(dir)) sh(['unsquashfs', '-no-progress', '-quiet', '-d', dir, sqfs]);
  for (const f of [sif, sqfs]) chmodSync(f, 0o644);
  return { sif, sqfs, dir };
}

/** A plan file for IMAGE (with launch FLAGS), made as the benchmark user. */
export function planFile(img: BenchImage, name: string, flags: string[] = []): string {
  const plan = join(WORK, `${name}-${USER ?? 'self'}.plan`);
  sh(asUser([...CTR, 'plan', '-o', plan, ...flags, img.sif]), { cwd: WORK });
  return plan;
}

/**
 * A tree with Debian's python3 and its standard library: the interpreter, every shared
 * library it and its extension modules need (found with ldd), and /usr/lib/python3.11.
 */
export function pythonTree(): string {
  const root = join(WORK, 'python-src');
  if (existsSync(join(root, 'usr/bin/python3'))) return root;
  sh(['rm', '-rf', root]);
  const copy = (p: string, deref = false) => {
    const to = join(root, p);
    mkdirSync(dirname(to), { recursive: true });
    sh(['cp', deref ? '-L' : '-a', p, to]);
  };
  for (const p of ['/usr/bin/python3.11', '/usr/lib/python3.11', '/bin/sh', '/usr/bin/dash', '/usr/bin/env', '/usr/bin/find', '/usr/bin/cat', '/usr/bin/true']) {
    if (existsSync(p)) copy(p);
  }
  const bins = sh(['find', join(root, 'usr'), '-name', '*.so*', '-o', '-type', 'f', '-perm', '-u+x']).split('\n').filter(Boolean);
  const libs = new Set<string>();
  for (const b of bins) {
    const out = spawnSync('ldd', [b], { encoding: 'utf8' }).stdout ?? '';
    for (const m of out.matchAll(/=> (\/\S+)|^\s*(\/\S+ld-linux\S*)/gm)) libs.add(m[1] ?? m[2]);
  }
  // Libraries (and the dynamic loader, /lib64/ld-linux-x86-64.so.2) as files, not links.
  for (const l of libs) if (!existsSync(join(root, l))) copy(l, true);
  sh(['ln', '-sf', 'python3.11', join(root, 'usr/bin/python3')]);
  // What Charliecloud needs to find in an image to bind over.
  for (const d of ['dev', 'proc', 'sys', 'tmp', 'home', 'etc', 'var/tmp', 'mnt', 'root']) mkdirSync(join(root, d), { recursive: true });
  for (const f of ['etc/passwd', 'etc/group', 'etc/hosts', 'etc/resolv.conf']) writeFileSync(join(root, f), f === 'etc/passwd' ? 'root:x:0:0:root:/root:/bin/sh\n' : '');
  mkdirSync(join(root, 'bin'), { recursive: true });
  for (const t of ['sh', 'true', 'cat', 'find', 'env']) {
    if (!existsSync(join(root, 'bin', t)) && existsSync(join(root, 'usr/bin', t))) sh(['ln', '-sf', `/usr/bin/${t}`, join(root, 'bin', t)]);
  }
  return root;
}
