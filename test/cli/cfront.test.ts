// The launcher as ctr (native/build/ctr, make install's PREFIX/bin/ctr:
// native/launch_front.c) against bin/ctr, the script it stands in for: the same
// arguments give the same output, the same errors and the same exit status, on each
// path the script takes (the launcher from a plan-cache hit or miss, help, Node without
// the snapshot, another launcher named by CTR_LAUNCHER, no node, a tree not built).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { chmod, copyFile, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { killUserProcesses, leftovers } from '../helpers/leftovers.js';
import { CTR_ROOT } from '../helpers/paths.js';
import { asUser, userTmp } from '../helpers/user.js';

const SCRIPT = `${CTR_ROOT}/bin/ctr`;
const FRONT = `${CTR_ROOT}/native/build/ctr`;

const Front = suite('the launcher as ctr');
let sif: string, work: string;

Front.before(async () => {
  sif = await busyboxSif();
  work = await userTmp('ctr-front-');
});

Front.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

/** Both ways, with the same arguments and environment: stdout, stderr and status. */
async function both(args: string[], env: Record<string, string> = {}, bins = [SCRIPT, FRONT]) {
  const out: Array<{ stdout: unknown; stderr: string; exitCode?: number }> = [];
  // Set by env(1) as the user (PATH too: runuser itself is found with the caller's).
  const vars = Object.entries({ XDG_RUNTIME_DIR: work, ...env }).map(([k, v]) => `${k}=${v}`);
  for (const bin of bins) {
    const r = await asUser('/usr/bin/env', [...vars, bin, ...args], { cwd: work });
    // --debug's lines carry pids and times.
    const stderr = String(r.stderr).replaceAll(bin, 'CTR').replace(/\[\d+\] \+[\d.]+ms/g, '').replace(/pid \d+/g, 'pid N');
    out.push({ stdout: r.stdout, stderr, exitCode: r.exitCode });
  }
  assert.equal(out[1], out[0], `ctr ${args.join(' ')}`);
  return out[1];
}

Front('exec :: the same output, from a plan-cache miss and then a hit', async () => {
  const first = await both(['exec', '--debug', sif, '/bin/echo', 'hello from the image'], { CTR_PLAN_CACHE: '0' });
  assert.match(String(first.stdout), /^hello from the image\n/);
  for (let i = 0; i < 2; i++) assert.is((await both(['exec', sif, '/bin/sh', '-c', 'echo $CTR_NAME; exit 7'])).exitCode, 7);
});

Front('exec :: errors of the launcher and of the planner are the same lines', async () => {
  const missing = await both(['exec', sif, '/no/such/command']);
  assert.is(missing.exitCode, 127);
  const bad = await both(['exec', join(work, 'no-such.sif'), '/bin/true']);
  assert.is(bad.exitCode, 255);
  assert.match(String(bad.stderr), /^ctr: error: /);
});

Front('help, --version, another command :: through Node as bin/ctr sends them', async () => {
  assert.is((await both(['exec', '--help'])).exitCode, 0);
  assert.is((await both(['shell', '-h'])).exitCode, 0);
  assert.match(String((await both(['--version'])).stdout), /^ctr \d/);
  assert.is((await both(['inspect', sif])).exitCode, 0);
  assert.is((await both([])).exitCode, (await asUser(SCRIPT, [], { cwd: work })).exitCode);
});

Front('CTR_NO_SNAPSHOT, CTR_LAUNCHER, plan :: the paths that leave the snapshot or this launcher', async () => {
  const plain = await both(['exec', sif, '/bin/echo', 'plain node'], { CTR_NO_SNAPSHOT: '1' });
  assert.is(plain.stdout, 'plain node\n');
  const other = await both(['exec', sif, '/bin/echo', 'other'], { CTR_LAUNCHER: `${CTR_ROOT}/native/build/ctr-launch`, CTR_PLAN_CACHE: '0' });
  assert.is(other.stdout, 'other\n');
  const none = await both(['exec', sif, '/bin/true'], { CTR_LAUNCHER: join(work, 'no-launcher') });
  assert.is(none.exitCode, 255);
  const plan = join(work, 'p.plan');
  await both(['plan', '-o', plan, sif]);
  assert.is((await asUser(plan, ['/bin/echo', 'planned'], { cwd: work })).stdout, 'planned\n');
});

Front('no node in PATH; a tree that is not built :: the same one-line errors', async () => {
  const noNode = await both(['exec', sif, '/bin/true'], { PATH: '/nonexistent' }, [SCRIPT, FRONT]);
  assert.is(noNode.stderr, 'ctr: error: node not found in PATH\n');
  assert.is(noNode.exitCode, 255);
  // A copy of the launcher and the script without dist/: each says what is missing.
  const tree = join(work, 'unbuilt');
  await mkdir(join(tree, 'bin'), { recursive: true });
  await mkdir(join(tree, 'native/build'), { recursive: true });
  await copyFile(SCRIPT, join(tree, 'bin/ctr'));
  await copyFile(`${CTR_ROOT}/native/build/ctr-launch`, join(tree, 'native/build/ctr-launch'));
  await symlink('ctr-launch', join(tree, 'native/build/ctr'));
  await chmod(tree, 0o755);
  await execaChown(tree);
  const r = await both(['exec', sif, '/bin/true'], {}, [join(tree, 'bin/ctr'), join(tree, 'native/build/ctr')]);
  assert.is(r.stderr, `ctr: error: ctr is not built: ${tree}/dist/src/cli/main.js missing\nctr: hint: run npm run build in ${tree}\n`);
  assert.is(r.exitCode, 255);
});

async function execaChown(dir: string): Promise<void> {
  await execa('chown', ['-R', `--reference=${work}`, dir]);
}

Front.run();
