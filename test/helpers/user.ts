// The unprivileged user that every rootless test runs as, and how to run things as it.
import { execa, type Options } from 'execa';
import { chown, cp, mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CTR_BIN, REPO } from './paths.js';

/** CTR_TEST_USER names another, for running some files beside a suite already running. */
export const TEST_USER = process.env.CTR_TEST_USER ?? 'ctrtest';

export async function ensureTestUser(): Promise<void> {
  const r = await execa('id', ['-u', TEST_USER], { reject: false });
  if (r.exitCode !== 0) await execa('useradd', ['--create-home', '--shell', '/bin/sh', TEST_USER]);
  await ensureSubIds(TEST_USER);
}

/** Subordinate ids for NAME (fake root's subuid way), as useradd gives a new user where
 * /etc/subuid exists: a range of 65536 past every range already given. */
export async function ensureSubIds(name: string): Promise<void> {
  for (const [file, flag] of [['/etc/subuid', '--add-subuids'], ['/etc/subgid', '--add-subgids']]) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (new RegExp(`^${name}:`, 'm').test(text)) continue;
    const end = Math.max(100000, ...text.split('\n').map((l) => l.split(':')).filter((f) => f.length === 3).map((f) => Number(f[1]) + Number(f[2])));
    await execa('usermod', [flag, `${end}-${end + 65535}`, name]);
  }
}

export async function userIds(): Promise<{ uid: number; gid: number; home: string }> {
  const { stdout } = await execa('getent', ['passwd', TEST_USER]);
  const f = stdout.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
}

/**
 * The user must be able to reach the built ctr. A checkout under a private directory
 * (/root, say) is not reachable, so then the built parts are copied somewhere that is.
 */
export async function stageForUser(): Promise<string> {
  const ok = await execa('runuser', ['-u', TEST_USER, '--', 'test', '-r', `${REPO}/dist/src/cli/main.js`], { reject: false });
  if (ok.exitCode === 0) return REPO;
  const dir = await mkdtemp(join(tmpdir(), 'ctr-under-test-'));
  await execa('chmod', ['755', dir]);
  for (const part of ['package.json', 'bin', 'dist', 'native/build', 'node_modules']) {
    await cp(join(REPO, part), join(dir, part), { recursive: true });
  }
  return dir;
}

/** Run a program as the test user (runuser keeps stdio; HOME etc. are the user's). */
export function asUser(cmd: string, args: readonly string[], opts: Options = {}) {
  return execa('runuser', ['-u', TEST_USER, '--', 'env', `HOME=/home/${TEST_USER}`, `USER=${TEST_USER}`, cmd, ...args], {
    reject: false, stripFinalNewline: false, ...opts,
  });
}

/** `ctr ARGS` as the test user, through bin/ctr as users run it. */
export function ctr(args: readonly string[], opts: Options = {}) {
  return asUser(CTR_BIN, [...args], opts);
}

/** A scratch directory owned by the test user. */
export async function userTmp(prefix = 'ctr-t-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const { uid, gid } = await userIds();
  await chown(dir, uid, gid);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A second unprivileged user: the neighbour in isolation tests. */
export const OTHER_USER = 'ctrother';
/** A user with no /etc/subuid or /etc/subgid entries: fake root falls back to seccomp. */
export const NOSUB_USER = 'ctrnosub';

/** Make NAME if missing; with subids false, take its /etc/subuid and /etc/subgid lines out. */
export async function ensureUser(name: string, subids = true): Promise<{ uid: number; gid: number; home: string }> {
  const r = await execa('id', ['-u', name], { reject: false });
  if (r.exitCode !== 0) await execa('useradd', ['--create-home', '--shell', '/bin/sh', name]);
  if (!subids) {
    for (const f of ['/etc/subuid', '/etc/subgid']) {
      await execa('sed', ['-i', `/^${name}:/d`, f], { reject: false });
    }
  }
  const { stdout } = await execa('getent', ['passwd', name]);
  const f = stdout.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
}

/** Run a program as user NAME (HOME etc. set as for the test user). */
export function asNamed(name: string, cmd: string, args: readonly string[], opts: Options = {}) {
  return execa('runuser', ['-u', name, '--', 'env', `HOME=/home/${name}`, `USER=${name}`, cmd, ...args], {
    reject: false, stripFinalNewline: false, ...opts,
  });
}
