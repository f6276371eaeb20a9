// Shared by the squashfs tests: a source tree with every kind of entry the writer must
// handle, and scratch directories under os.tmpdir(). No suites here.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export const MTIME = 1700000000;
export const LONG_NAME = 'n'.repeat(255);

export function scratch(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ctr-${prefix}-`));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic pseudo-random bytes (xorshift), so a failure is reproducible. */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * Regular files (empty, small, 3 MiB, sparse), symlinks, a hard-link pair, an empty dir,
 * a 255-byte name, a fifo and a char device. Device nodes need root: fail loudly otherwise.
 */
export async function makeSourceTree(dir: string): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the squashfs tests create device nodes with mknod and must run as root');
  const w = (p: string, data: string | Buffer) => fs.writeFileSync(path.join(dir, p), data);
  fs.mkdirSync(path.join(dir, 'etc/deep/er'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'empty-dir'));
  fs.mkdirSync(path.join(dir, '.singularity.d/env'), { recursive: true });
  w('hello.txt', 'hello, world\n');
  w('empty', '');
  w('big.bin', bytes(3 * 1024 * 1024));
  w('etc/deep/er/config', 'x=1\n');
  w(LONG_NAME, 'long name\n');
  w('.singularity.d/runscript', '#!/bin/sh\nexec "$@"\n');
  w('.singularity.d/env/90-environment.sh', 'export FOO=bar\n');
  w('.singularity.d/labels.json', '{"org.label-schema.name":"t"}\n');
  fs.chmodSync(path.join(dir, '.singularity.d/runscript'), 0o755);
  fs.chmodSync(path.join(dir, 'etc/deep'), 0o700);
  // Sparse: 40 MiB with 4 KiB of data in the middle.
  const fd = fs.openSync(path.join(dir, 'sparse.img'), 'w');
  fs.writeSync(fd, bytes(4096, 7), 0, 4096, 20 * 1024 * 1024);
  fs.ftruncateSync(fd, 40 * 1024 * 1024);
  fs.closeSync(fd);
  fs.symlinkSync('hello.txt', path.join(dir, 'link-to-hello'));
  fs.symlinkSync('/nonexistent/dangling', path.join(dir, 'dangling'));
  fs.linkSync(path.join(dir, 'hello.txt'), path.join(dir, 'etc/hard-hello'));
  // Names whose byte order differs from locale order.
  w('B-upper', 'B');
  w('a-lower', 'a');
  w('é-accent', 'e');
  await execa('mkfifo', [path.join(dir, 'fifo')]);
  await execa('mknod', [path.join(dir, 'null-dev'), 'c', '1', '3']);
  for (const p of ['', 'etc', 'etc/deep', 'etc/deep/er', 'empty-dir', '.singularity.d', '.singularity.d/env']) {
    fs.utimesSync(path.join(dir, p), MTIME - 100, MTIME - 100);
  }
}

export async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const r = await execa(cmd, args, { reject: false, all: true });
  return { code: r.exitCode ?? -1, out: r.all ?? '' };
}
