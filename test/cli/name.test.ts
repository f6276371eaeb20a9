// The name clash (issue 13): Debian's containerd package installs /usr/bin/ctr too. ctr is
// also ctr-hpc (npm's bin, make install); it tells containerd's ctr from itself, against
// the real containerd ctr from Debian's package (scripts/setup.sh --test extracts it), and
// says so in `ctr version` and in ctr-srun's failing preflight (`ctr plan`, before any
// srun). make install PREFIX=... installs both names, the man pages, completion and
// the SPANK plugin, and ctr-hpc runs from there as the test user.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerdVersion, ctrClash, findOnPath } from '../../src/host/ctr-name.js';
import { busyboxSif } from '../helpers/images.js';
import { CTR_ROOT, REPO } from '../helpers/paths.js';
import { asUser, ctr, userTmp } from '../helpers/user.js';

const CONTAINERD_CTR = process.env.CTR_TEST_CONTAINERD_CTR ?? '/opt/ctr-test/containerd/usr/bin/ctr';
const CD_DIR = CONTAINERD_CTR.replace(/\/ctr$/, '');
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const Name = suite('ctr and containerd\'s ctr');

Name.before(() => {
  if (!existsSync(CONTAINERD_CTR)) throw new Error(`${CONTAINERD_CTR} is missing: run scripts/setup.sh --test (it extracts containerd's ctr from Debian's package)`);
});

Name('detection :: containerd\'s ctr is recognised by its version line; ctr\'s own is not', () => {
  const version = containerdVersion(CONTAINERD_CTR);
  assert.match(version ?? '', /^ctr github\.com\/containerd\/containerd \S+$/);
  assert.equal(ctrClash(`${CD_DIR}:${SYSTEM_PATH}`), { path: CONTAINERD_CTR, version });
  assert.is(containerdVersion(join(CTR_ROOT, 'bin/ctr')), undefined);
  assert.is(ctrClash(`${CTR_ROOT}/bin:${CD_DIR}:${SYSTEM_PATH}`), undefined);
  assert.is(ctrClash('/nonexistent:relative/dir'), undefined);
  assert.is(findOnPath('ctr', `relative:${CD_DIR}`), CONTAINERD_CTR);
});

Name('ctr version :: names the clash, and what to run instead', async () => {
  const r = await ctr(['version'], { env: { PATH: `${CD_DIR}:${SYSTEM_PATH}` } });
  assert.is(r.exitCode, 0, String(r.stderr));
  const last = String(r.stdout).trimEnd().split('\n').pop();
  assert.is(last, `name: the ctr in PATH, ${CONTAINERD_CTR}, is containerd's (${containerdVersion(CONTAINERD_CTR)}), not this ctr: run ctr-hpc, or put ctr's bin directory before ${CD_DIR} in PATH`);
  const clean = await ctr(['version'], { env: { PATH: SYSTEM_PATH } });
  assert.not.match(String(clean.stdout), /^name:/m);
});

Name('ctr-srun :: a preflight that ran containerd\'s ctr says so', async () => {
  const sif = await busyboxSif();
  const cwd = await userTmp('ctr-name-');
  try {
    const r = await asUser(join(REPO, 'slurm/ctr-srun'), [`--ctr-image=${sif}`, 'true'], { cwd, env: { PATH: `${CD_DIR}:${SYSTEM_PATH}` } });
    assert.is(r.stdout, '');
    assert.is(String(r.stderr), "No help topic for 'plan'\n" +
      `ctr-srun: hint: ${CONTAINERD_CTR} is containerd's ctr (${containerdVersion(CONTAINERD_CTR)}), not ctr's: set CTR=ctr-hpc (or the full path of ctr's bin/ctr)\n`);
    assert.is.not(r.exitCode, 0);
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
});

Name.run();

const Install = suite('make install');
let prefix: string;
Install.before(async () => {
  prefix = await mkdtemp(join(tmpdir(), 'ctr-install-'));
  await chmod(prefix, 0o755);
});
Install.after(async () => {
  if (prefix) await rm(prefix, { recursive: true, force: true });
});

Install('PREFIX :: ctr and ctr-hpc, man pages, completion, plugin; ctr-hpc runs as the user from outside the checkout', async () => {
  const mk = await execa('make', ['-s', '-C', REPO, 'install', `PREFIX=${prefix}`], { reject: false, all: true });
  assert.is(mk.exitCode, 0, mk.all);
  for (const name of ['ctr', 'ctr-hpc']) assert.is(readlinkSync(join(prefix, 'bin', name)), '../lib/ctr/native/build/ctr', name);
  assert.ok(existsSync(join(prefix, 'bin/ctr-srun')));
  assert.equal((await readdir(join(prefix, 'share/man/man1'))).sort(), [...(await readdir(join(REPO, 'dist/man'))), 'ctr-hpc.1'].sort());
  assert.is(readFileSync(join(prefix, 'share/bash-completion/completions/ctr'), 'utf8'), readFileSync(join(REPO, 'dist/completion/ctr.bash'), 'utf8'));
  assert.ok(existsSync(join(prefix, 'share/zsh/site-functions/_ctr')));
  if (existsSync(join(REPO, 'native/build/ctr_spank.so'))) assert.ok(existsSync(join(prefix, 'lib/slurm/ctr_spank.so')), 'SPANK plugin');
  const cwd = await userTmp('ctr-install-user-');
  try {
    const v = await asUser(join(prefix, 'bin/ctr-hpc'), ['--version'], { cwd });
    assert.is(v.exitCode, 0, String(v.stderr));
    assert.match(String(v.stdout), new RegExp(`^launcher: ctr-launch \\S+, .*\\(${prefix}/lib/ctr/native/build/ctr-launch\\)$`, 'm'));
    const x = await asUser(join(prefix, 'bin/ctr-hpc'), ['exec', await busyboxSif(), 'echo', 'from ctr-hpc'], { cwd });
    assert.equal([x.stdout, x.stderr, x.exitCode], ['from ctr-hpc\n', '', 0]);
    const m = await asUser('man', ['-M', join(prefix, 'share/man'), 'ctr-hpc'], { cwd, env: { MANPAGER: 'cat', MANWIDTH: '200' } });
    assert.match(String(m.stdout), /^CTR\(1\)/);
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
  const un = await execa('make', ['-s', '-C', REPO, 'uninstall', `PREFIX=${prefix}`], { reject: false, all: true });
  assert.is(un.exitCode, 0, un.all);
  assert.is((await execa('find', [prefix, '-not', '-type', 'd'])).stdout, '', 'nothing left');
});

Install('INSTALL_CTR_NAME=no :: only ctr-hpc, where containerd\'s ctr is', async () => {
  const dir = join(prefix, 'only-hpc');
  const mk = await execa('make', ['-s', '-C', REPO, 'install', `PREFIX=${dir}`, 'INSTALL_CTR_NAME=no'], { reject: false, all: true });
  assert.is(mk.exitCode, 0, mk.all);
  assert.equal((await readdir(join(dir, 'bin'))).sort(), ['ctr-hpc', 'ctr-srun']);
});

Install.run();
