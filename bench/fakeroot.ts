// Fake-root builds (issue 11): the python3-minimal definition file built the subuid way
// (a user with /etc/subuid entries) and the seccomp way (one without), beside
// `mmdebstrap --include=python3-minimal`, the floor for "install a package into Debian"
// (it does the same downloads and dpkg runs, as real root, with no container). Wall time,
// interleaved rounds, medians; one round by default (each is tens of seconds), three with
// --full. Needs root (it runs the builds as the test users, as the tests do).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { measure, REPO, table } from './lib.js';

const CACHE = process.env.CTR_TEST_CACHE ?? '/var/tmp/ctr-test-cache';
const SUBUID_USER = process.env.CTR_TEST_USER ?? 'ctrtest';
const NOSUB_USER = 'ctrnosub';
const rounds = process.argv.includes('--full') ? 3 : 1;

// The same Debian image the fake-root build test makes (test/builder/fakeroot.test.ts).
const debian = join(CACHE, 'debian-bookworm-minbase.sif');
if (!existsSync(debian)) {
  const tar = `${debian}.tar`;
  execFileSync('mmdebstrap', ['--variant=minbase', '--quiet', 'bookworm', tar], { stdio: 'inherit' });
  execFileSync(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'build', debian, tar], { stdio: 'inherit' });
  chmodSync(debian, 0o644);
  rmSync(tar);
}
for (const u of [SUBUID_USER, NOSUB_USER]) {
  try { execFileSync('id', ['-u', u], { stdio: 'ignore' }); } catch { execFileSync('useradd', ['--create-home', u]); }
}
execFileSync('sed', ['-i', `/^${NOSUB_USER}:/d`, '/etc/subuid', '/etc/subgid']);

const dir = '/tmp/ctr-bench-fakeroot';
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { mode: 0o1777 });
chmodSync(dir, 0o1777);
writeFileSync(join(dir, 'py.def'), `Bootstrap: localimage\nFrom: ${debian}\n\n%post\n    apt-get update -q\n    apt-get install -y -q --no-install-recommends python3-minimal\n`);
const ctr = join(REPO, 'bin/ctr');
const build = (user: string) => ['runuser', '-u', user, '--', 'sh', '-c', `cd ${dir} && rm -f ${user}.sif && ${ctr} build ${user}.sif py.def >${user}.log 2>&1 || { tail -20 ${user}.log >&2; exit 1; }`];
const rows = measure([
  { name: 'mmdebstrap --include=python3-minimal (root, no container)', cmd: ['sh', '-c', `rm -rf ${dir}/mm.tar && mmdebstrap --variant=minbase --quiet --include=python3-minimal bookworm ${dir}/mm.tar`] },
  { name: `ctr build, subuid way (${SUBUID_USER})`, cmd: build(SUBUID_USER) },
  { name: `ctr build, seccomp way (${NOSUB_USER})`, cmd: build(NOSUB_USER) },
], rounds, 0);
process.stdout.write(table('Fake-root build of a python3-minimal definition file (wall time)', rows));
rmSync(dir, { recursive: true, force: true });
