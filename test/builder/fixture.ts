// Shared by the build tests: a source tree with every kind of entry, tarballs of it made
// by tar(1), ctr run as root or as the test user, and SIF partitions read with the
// reference siftool. Images are built once per process and shared. No suites here.
import { bytes } from '../squashfs/fixture.js';
export { bytes };
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CTR_MAIN, SIFTOOL } from '../helpers/paths.js';
import { asUser } from '../helpers/user.js';

export const EPOCH = 1700000000;
export const LONG = 'L'.repeat(255);
export const BIG = 200 * 1024 * 1024;

// Node warns on stderr when NO_COLOR (the harness) meets FORCE_COLOR (some CI shells).
const QUIET = { FORCE_COLOR: undefined as unknown as string };

export interface Ran { code: number; stdout: string; stderr: string }

export async function run(cmd: string, args: readonly string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<Ran> {
  const r = await execa(cmd, args, { reject: false, stripFinalNewline: false, ...opts });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** `ctr ARGS` as root (trees with device nodes and root-only files). */
export function ctrRoot(args: readonly string[], env: Record<string, string> = {}): Promise<Ran> {
  return run(process.execPath, [CTR_MAIN, ...args], { env: { ...QUIET, ...env } });
}

/** `ctr ARGS` as the test user, with extra environment (runuser does not pass execa's env on). */
export async function ctrUser(args: readonly string[], env: Record<string, string> = {}, cwd?: string): Promise<Ran> {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const p = asUser('/usr/bin/env', ['-u', 'FORCE_COLOR', ...vars, process.execPath, CTR_MAIN, ...args], { detached: true, ...(cwd ? { cwd } : {}) });
  if (p.pid) sessions.add(p.pid);
  const r = await p;
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * Every ctr these tests start as the user runs in a session of its own (setsid), so
 * leftovers are found by session id: other suites may run as the same user at the same
 * time, and their processes are none of ours (nor ours to kill).
 */
export const sessions = new Set<number>();

async function ownProcesses(): Promise<Array<{ pid: number; line: string }>> {
  // Zombies (state Z) are dead already, waiting for init to reap them.
  const r = await execa('ps', ['-e', '-o', 'pid=,sid=,stat=,comm='], { reject: false });
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && sessions.has(Number(f[1])) && !f[2].startsWith('Z'))
    .map((f) => ({ pid: Number(f[0]), line: `${f[0]} ${f.slice(3).join(' ')}` }));
}

/** Our processes still alive after a grace period (PDEATHSIG is asynchronous); they are then killed. */
export async function ownLeftovers(graceMs = 3000): Promise<string[]> {
  const until = Date.now() + graceMs;
  for (;;) {
    const procs = await ownProcesses();
    if (procs.length === 0) return [];
    if (Date.now() > until) {
      for (const p of procs) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
      return procs.map((p) => p.line);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function scratch(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ctr-t-${prefix}-`));
}

/**
 * Regular files with assorted modes (setuid, sticky dir, 0600), symlinks (relative,
 * dangling absolute), a hard-link pair across directories, char/block devices (one with
 * a minor above 255), a fifo, an empty directory, a 255-byte name, a path over 100 bytes
 * (tar long names), a sparse file, and a 200 MiB mostly-hole file with data here and there.
 */
export async function makeContentTree(dir: string): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the build content tests create device nodes and must run as root');
  const at = (p: string) => path.join(dir, p);
  const w = (p: string, data: string | Buffer, mode = 0o644) => { fs.writeFileSync(at(p), data); fs.chmodSync(at(p), mode); };
  for (const d of ['etc/deep', 'empty', 'tmp', 'bin', `${'d'.repeat(60)}/${'e'.repeat(60)}`]) fs.mkdirSync(at(d), { recursive: true });
  fs.chmodSync(at('tmp'), 0o1777);
  fs.chmodSync(at('etc/deep'), 0o700);
  w('hello.txt', 'hello, world\n');
  w('empty-file', '');
  w('etc/secret', 'root only\n', 0o600);
  w('bin/tool', bytes(3 * 1024 * 1024 + 17), 0o755);
  w('bin/suid', 'pretend setuid\n', 0o4755);
  w(LONG, 'long name\n');
  w(`${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(60)}`, 'deep long path\n');
  fs.linkSync(at('hello.txt'), at('etc/deep/hard-hello'));
  fs.symlinkSync('hello.txt', at('link-to-hello'));
  fs.symlinkSync('/nonexistent/dangling', at('dangling'));
  await execa('mknod', [at('null'), 'c', '1', '3']);
  await execa('mknod', [at('blk'), 'b', '259', '300']);
  await execa('mkfifo', [at('fifo')]);
  // Sparse: 8 MiB with 4 KiB of data in the middle.
  let fd = fs.openSync(at('sparse'), 'w');
  fs.writeSync(fd, bytes(4096, 7), 0, 4096, 4 * 1024 * 1024);
  fs.ftruncateSync(fd, 8 * 1024 * 1024);
  fs.closeSync(fd);
  // Large: 200 MiB, 1 MiB of data every 50 MiB, holes between (fast to write and read).
  fd = fs.openSync(at('large'), 'w');
  for (let off = 0; off < BIG; off += 50 * 1024 * 1024) fs.writeSync(fd, bytes(1 << 20, off + 1), 0, 1 << 20, off);
  fs.ftruncateSync(fd, BIG);
  fs.closeSync(fd);
}

/** The partitions of a SIF as the reference tool lists them: id, start, end, type. */
export async function sifObjects(sif: string): Promise<Array<{ id: number; start: number; end: number; type: string }>> {
  const r = await run(SIFTOOL, ['list', sif]);
  if (r.code !== 0) throw new Error(`siftool list ${sif}: ${r.stderr}`);
  return r.stdout.split('\n').map((l) => /^(\d+)\s*\|\S+\s*\|\S+\s*\|(\d+)-(\d+)\s*\|(.*)$/.exec(l)).filter((m) => m !== null)
    .map((m) => ({ id: Number(m![1]), start: Number(m![2]), end: Number(m![3]), type: m![4].trim() }));
}

/** The SquashFS partition's bytes, written to `to` by `siftool dump`. */
export async function dumpPartition(sif: string, to: string): Promise<void> {
  const part = (await sifObjects(sif)).find((o) => o.type.startsWith('FS (Squashfs'));
  if (!part) throw new Error(`${sif} has no SquashFS partition`);
  const r = await execa(SIFTOOL, ['dump', String(part.id), sif], { stdout: { file: to }, reject: false });
  if (r.exitCode !== 0) throw new Error(`siftool dump: ${r.stderr}`);
}

export const files = (dir: string) => fs.readdirSync(dir).sort();
