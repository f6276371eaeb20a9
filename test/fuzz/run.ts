// Running fuzz variants (generate.ts) through ctr as the test user, and judging each:
// a variant may run (the walk inside sees what it sees, I/O errors included: that is the
// command's own result) or be refused with exactly one `ctr: error:` line (a `ctr: hint:`
// allowed) and exit 255. Never: a launcher or FUSE server killed by a signal, a core
// dump, a stack trace, a hang, or a dead server seen from inside (ENOTCONN).
import { execa } from 'execa';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CTR_BIN, LAUNCHER } from '../helpers/paths.js';
import { TEST_USER } from '../helpers/user.js';
import type { Variant } from './generate.js';

/** The walk: every name and file's bytes, every link, from the host's busybox bound in.
 * Then a name that is nowhere, looked up by the shell itself: the lookup reaches the
 * server, which answers ENOENT while it lives (busybox's find ignores readdir errors, so
 * a dead server could go unseen otherwise). */
const WALK = [
  'B=/.fz/busybox',
  // The 300 small files of /many share one fragment: listed, not each read.
  '$B find / -xdev -type f ! -path "/.fz/*" ! -path "/many/*" -exec $B cat {} + >/dev/null',
  '$B find / -xdev -type l -exec $B readlink {} \\; >/dev/null',
  'cd /.fz-probe',
  'exit 0',
].join('\n');
const PROBE = /^sh: cd: (line \d+: )?can't cd to \/\.fz-probe: No such file or directory$/;

export interface Result {
  variant: Variant;
  /** outcome class, for the table; failures start with "FAIL" */
  cls: string;
  detail: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  timeoutS?: number;
  /** also `ctr inspect` (Node reads the SIF and superblock: only for kinds that touch those) */
  inspect?: boolean;
}

/** Judges one ctr run's exit status and stderr. */
export function judge(what: string, exitCode: number | undefined, stderr: string, seconds = 0, timeoutS = 10): { cls: string; detail: string } {
  const lines = stderr.split('\n').filter((l) => l && !PROBE.test(l));
  const errors = lines.filter((l) => l.startsWith('ctr: error:'));
  // Warnings (an optional bind skipped because its place in a corrupt image can't be
  // read) may come before the error; they are counted apart, not failed.
  const warnings = lines.filter((l) => l.startsWith('ctr: warning:'));
  const other = lines.filter((l) => l.startsWith('ctr:') && !/^ctr: (error|hint|warning):/.test(l));
  const detail = `${what}: exit ${exitCode}: ${lines.slice(0, 6).join(' | ')}`;
  // timeout(1) answers 124 (TERM sufficed) or 137 (KILL was needed); a 137 well before the
  // timeout is someone else's SIGKILL (another test's cleanup of the test user's processes).
  if (exitCode === 124 || (exitCode === 137 && seconds >= timeoutS)) return { cls: 'FAIL hang', detail };
  if (exitCode === 137) return { cls: 'FAIL killed from outside (rerun)', detail };
  // `npm run build` elsewhere rewriting the start-up snapshot while ctr starts from it.
  if (/Cannot open .*ctr\.blob/.test(stderr)) return { cls: 'FAIL killed from outside (rerun): snapshot rebuilt', detail };
  if (/Transport endpoint is not connected|Software caused connection abort/.test(stderr)) return { cls: 'FAIL server died under the command', detail };
  if (/core dumped|Segmentation fault|stack smashing|Aborted|double free|corrupted (size|top|double-linked|unsorted)|malloc\(\): |free\(\): |^\s+at .*\(|node:internal/m.test(stderr)) return { cls: 'FAIL crash or stack trace', detail };
  if (/killed by signal/.test(stderr)) return { cls: 'FAIL server killed by a signal', detail };
  if (exitCode === 255) {
    if (errors.length !== 1 || other.length) return { cls: `FAIL ${errors.length} error lines`, detail };
    const why = /not a valid SquashFS/.test(errors[0]) ? 'launcher check'
      : /SquashFS|superblock|truncated|bad magic|version/.test(errors[0]) ? 'planner check'
      : /SIF|descriptor|partition|object/i.test(errors[0]) ? 'SIF check'
      : /Input\/output error/.test(errors[0]) ? 'I/O error in the image' : 'other error';
    return { cls: `refused (${why})${warnings.length ? ', warnings first' : ''}`, detail };
  }
  if (errors.length || other.length) return { cls: 'FAIL ctr lines without exit 255', detail };
  if (warnings.length && lines.length === warnings.length) return { cls: 'ran clean, warnings', detail };
  if (exitCode !== 0) return { cls: `FAIL exit ${exitCode}`, detail };
  return { cls: lines.length ? 'ran, errors inside' : 'ran clean', detail };
}

const BUSYBOX = ['-B', '/usr/bin/busybox:/.fz/busybox', '--pwd', '/'];
const COMMAND = ['/.fz/busybox', 'sh', '-c', WALK];

async function asUser(cmd: string[], env: Record<string, string>, timeoutS: number) {
  // timeout(1) inside runuser, so the signal reaches ctr (the launcher, then the command).
  const t0 = Date.now();
  const r = await execa('runuser', ['-u', TEST_USER, '--', 'env', `HOME=/home/${TEST_USER}`, `USER=${TEST_USER}`,
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'timeout', '-k', '2', String(timeoutS), ...cmd],
  { reject: false, cwd: '/', stdin: 'ignore' });
  return { exitCode: r.exitCode, stderr: String(r.stderr), seconds: (Date.now() - t0) / 1000 };
}

/**
 * A worker's place: one image path, and a plan made once for it (`ctr plan`), so that a
 * variant of the bare SquashFS runs through the launcher alone (its checks and the FUSE
 * server are what is fuzzed; Node's planning is the same for every such variant, and
 * costs twice the rest). SIF variants, which only Node's planner can place, and some
 * superblock and truncation variants (see viaCtr) go through `ctr exec` itself.
 */
interface Slot { img: string; plan: string }

async function makeSlot(dir: string, k: number, base: Buffer): Promise<Slot> {
  const slot = { img: join(dir, `slot${k}.sqfs`), plan: join(dir, `slot${k}.plan`) };
  await writeFile(slot.img, base, { mode: 0o644 });
  const r = await asUser([CTR_BIN, 'plan', '-o', slot.plan, ...BUSYBOX, slot.img], {}, 30);
  if (r.exitCode !== 0) throw new Error(`ctr plan: ${r.stderr}`);
  return slot;
}

const VIA_CTR = new Set(['named', 'sif']);
/** Superblock and truncation variants: a third through ctr (Node's own superblock check
 * answers first there), the rest through the plan (the launcher's checks alone). */
const viaCtr = (v: Variant) => VIA_CTR.has(v.kind) || v.sif
  || (['superblock', 'truncation'].includes(v.kind) && [...v.name].reduce((h, c) => h * 31 + c.charCodeAt(0), 7) % 3 === 0);
const INSPECTED = new Set(['named', 'sif']);

export async function runVariant(slot: Slot, v: Variant, opts: RunOptions = {}): Promise<Result> {
  const env = opts.env ?? {};
  const t = opts.timeoutS ?? 10;
  const ctrExec = viaCtr(v);
  const img = v.sif ? slot.img.replace(/\.sqfs$/, '.sif') : slot.img;
  await writeFile(img, v.bytes, { mode: 0o644 });
  const launcher = env.CTR_LAUNCHER ?? LAUNCHER;
  const r = ctrExec ? await asUser([CTR_BIN, 'exec', ...BUSYBOX, img, ...COMMAND], env, t)
    : await asUser([launcher, '--plan', slot.plan, ...COMMAND], env, t);
  let j = judge(ctrExec ? 'exec' : 'plan', r.exitCode, r.stderr, r.seconds, t);
  if (opts.inspect && INSPECTED.has(v.kind) && !j.cls.startsWith('FAIL')) {
    const ri = await asUser([CTR_BIN, 'inspect', '--all', img], env, t);
    const ji = judge('inspect', ri.exitCode, ri.stderr, ri.seconds, t);
    if (ji.cls.startsWith('FAIL')) j = ji;
  }
  return { variant: v, ...j };
}

/** Runs VARIANTS, CONCURRENCY at a time; ONE is told about each result as it comes. */
export async function runAll(variants: Variant[], base: Buffer,
  opts: RunOptions & { concurrency?: number; one?: (r: Result, i: number) => void } = {}): Promise<Result[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ctr-fuzz-'));
  await chmod(dir, 0o777); // the plans are written by the test user
  const results: Result[] = new Array(variants.length);
  let next = 0;
  const worker = async (k: number) => {
    const slot = await makeSlot(dir, k, base);
    while (next < variants.length) {
      const i = next++;
      results[i] = await runVariant(slot, variants[i], opts);
      // Other tests clean up after themselves by killing all of the test user's processes.
      for (let again = 0; again < 2 && results[i].cls.startsWith('FAIL killed from outside'); again++) {
        results[i] = await runVariant(slot, variants[i], opts);
      }
      opts.one?.(results[i], i);
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, (_, k) => worker(k)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

/** Outcome classes by mutation kind, as a Markdown table. */
export function table(results: Result[]): string {
  const classes = [...new Set(results.map((r) => r.cls))].sort();
  const kinds = [...new Set(results.map((r) => r.variant.kind))];
  const rows = kinds.map((k) => `| ${k} | ${classes.map((c) => results.filter((r) => r.variant.kind === k && r.cls === c).length).join(' | ')} |`);
  const total = `| **all** | ${classes.map((c) => results.filter((r) => r.cls === c).length).join(' | ')} |`;
  return [`| mutation | ${classes.join(' | ')} |`, `| --- |${classes.map(() => ' ---: |').join('')}`, ...rows, total].join('\n');
}

/** Kernel log lines about segfaults of the FUSE servers (root only; empty if unreadable). */
export async function serverSegfaults(): Promise<string[]> {
  const r = await execa('dmesg', [], { reject: false });
  return r.stdout.split('\n').filter((l) => /(ctr-fuse|squashfuse_ll)\[\d+\].*(segfault|general protection|trap)/.test(l));
}
