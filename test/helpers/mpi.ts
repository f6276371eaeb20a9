// MPI test image and the ping-pong's output. The image (images/openmpi.def: Debian
// bookworm, Open MPI and MPICH, /opt/ctr/pingpong.{openmpi,mpich} built from
// bench/mpi/pingpong.c) is built once with ctr itself and cached in CACHE under a name
// that hashes its inputs, so editing either rebuilds it.
import { cached } from './images.js';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { chmod, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO } from './paths.js';

export const MPI_DEF = 'images/openmpi.def';
export const PINGPONG_SRC = 'bench/mpi/pingpong.c';
/** The ping-pong's sizes: powers of two, 8 B to 16 MiB. */
export const PINGPONG_SIZES = Array.from({ length: 22 }, (_, i) => 8 * 2 ** i);

let building: Promise<string> | undefined;

/** The MPI image (a SIF, world-readable), built on first use; needs root and Debian's mirror. */
export function mpiImage(): Promise<string> {
  building ??= buildMpiImage();
  return building;
}

async function buildMpiImage(): Promise<string> {
  const hash = createHash('sha256');
  for (const f of [MPI_DEF, PINGPONG_SRC]) hash.update(f).update('\0').update(await readFile(join(REPO, f)));
  // Named after the definition and the program, not after images.ts: edit either, and it is rebuilt.
  return cached(`mpi-${hash.digest('hex').slice(0, 12)}.sif`, async (tmp) => {
    // %files paths are relative to the build's working directory: the repository root.
    const r = await execa(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'build', tmp, MPI_DEF], { cwd: REPO, reject: false, all: true });
    if (r.exitCode !== 0) {
      await rm(tmp, { force: true });
      throw new Error(`building the MPI image failed (${r.exitCode}):\n${String(r.all ?? '').split('\n').slice(-20).join('\n')}`);
    }
    await chmod(tmp, 0o644);
  }, false);
}

export interface PingpongSize { size: number; iters: number; latUs: number; bwMBps: number; ok: boolean }
export interface Pingpong {
  /** Per namespace kind (user, mnt): each rank's inode, and whether all are the same. */
  ns: Record<string, { inodes: number[]; same: boolean }>;
  sizes: PingpongSize[];
  /** The `done` line was printed: every size exchanged and checked. */
  done: boolean;
}

/** Parse the ping-pong's `key=value` lines (see bench/mpi/pingpong.c). */
export function parsePingpong(stdout: string): Pingpong {
  const out: Pingpong = { ns: {}, sizes: [], done: false };
  for (const line of stdout.split('\n')) {
    const [kind, ...words] = line.trim().split(/\s+/);
    const kv = Object.fromEntries(words.map((w) => w.split('=') as [string, string]));
    if (kind === 'ns') {
      const inodes = Object.keys(kv).filter((k) => /^rank\d+$/.test(k)).map((k) => Number(kv[k]));
      out.ns[kv.kind] = { inodes, same: kv.same === '1' };
    } else if (kind === 'pp') {
      out.sizes.push({ size: Number(kv.size), iters: Number(kv.iters), latUs: Number(kv.lat_us), bwMBps: Number(kv.bw_MBps), ok: kv.ok === '1' });
    } else if (kind === 'done') out.done = kv.ok === '1';
  }
  return out;
}
