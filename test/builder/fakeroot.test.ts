// Rootless builds that run a real package manager (issue 11), with the real Debian mirror:
// a definition file whose %post runs apt-get, useradd and install -o, built by a user with
// subordinate ids (the subuid way: real ids, kept in the image) and by one without (the
// seccomp way: one id, the privileged calls faked, everything owned by root); and apt-get
// in a --fakeroot --writable-tmpfs container, both ways.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSif, primaryPartition } from '../../src/sif/read.js';
import { debianSif } from '../helpers/images.js';
import { leftovers } from '../helpers/leftovers.js';
import { CTR_BIN } from '../helpers/paths.js';
import { asNamed, ensureUser, NOSUB_USER, TEST_USER } from '../helpers/user.js';

const DEF = (from: string) => `Bootstrap: localimage
From: ${from}

%post
    apt-get update -q
    apt-get install -y -q --no-install-recommends python3-minimal
    useradd svc
    install -d -o svc /srv/data
`;

/** Owners in the SIF's SquashFS, as unsquashfs -lln lists them: path -> "uid/gid". */
async function owners(sif: string, paths: string[]): Promise<Record<string, string>> {
  const part = primaryPartition(await readSif(sif), sif);
  const { stdout } = await execa('unsquashfs', ['-lln', '-o', String(part.offset), sif, ...paths]);
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^\S+ (\d+\/\d+)\s.*squashfs-root(\S+)/.exec(line);
    if (m) out[m[2]] = m[1];
  }
  return out;
}

const Fakeroot = suite('fake-root builds');
let debian: string;
const users = [
  { name: TEST_USER, mode: 'subuid' },
  { name: NOSUB_USER, mode: 'seccomp' },
];

Fakeroot.before(async () => {
  debian = await debianSif();
  await ensureUser(NOSUB_USER, false);
});
Fakeroot.after.each(async () => {
  for (const u of users) {
    const left = await leftovers(3000, u.name);
    await execa('pkill', ['-KILL', '-u', u.name], { reject: false });
    assert.equal(left, [], `processes of ${u.name} left behind`);
  }
});

for (const u of users) {
  Fakeroot(`build :: %post apt-get install, useradd, install -o, in the ${u.mode} way (${u.name})`, async () => {
    const dir = `/tmp/ctr-fakeroot-${u.name}`;
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    await execa('chown', [u.name, dir]);
    await writeFile(join(dir, 'py.def'), DEF(debian));
    const t0 = Date.now();
    const b = await asNamed(u.name, CTR_BIN, ['build', join(dir, 'py.sif'), join(dir, 'py.def')], { cwd: dir, all: true });
    assert.is(b.exitCode, 0, String(b.all).split('\n').slice(-15).join('\n'));
    process.stderr.write(`  (${u.mode} build: ${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
    const img = join(dir, 'py.sif');
    const r = await asNamed(u.name, CTR_BIN, ['exec', img, 'python3', '-c', 'print(1)'], { cwd: dir });
    assert.is(r.stderr, '');
    assert.is(r.stdout, '1\n');
    const svc = await asNamed(u.name, CTR_BIN, ['exec', img, 'id', '-u', 'svc'], { cwd: dir });
    const o = await owners(img, ['/srv/data', '/var/cache/apt/archives/partial', '/etc/shadow']);
    if (u.mode === 'subuid') {
      // _apt is uid 42 in Debian, in group nogroup (65534)... apt chowns partial/ to _apt:root.
      assert.is(o['/var/cache/apt/archives/partial'], '42/0', 'apt chowned partial/ to _apt');
      assert.is(o['/srv/data'], `${String(svc.stdout).trim()}/0`, 'install -o svc (owner only: the group stays root)');
      assert.ok(Number(String(svc.stdout)) >= 1000);
    } else {
      assert.is(o['/var/cache/apt/archives/partial'], '0/0', 'one id: everything is root');
      assert.is(o['/srv/data'], '0/0');
    }
    await rm(dir, { recursive: true, force: true });
  });

  Fakeroot(`exec :: apt-get install in a --fakeroot --writable-tmpfs container, the ${u.mode} way; the change vanishes`, async () => {
    const r = await asNamed(u.name, CTR_BIN, ['exec', '--fakeroot', '--writable-tmpfs', '--writable-tmpfs-size', '1G', debian, 'sh', '-c',
      'apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends python3-minimal >/dev/null && python3 -c "print(3)"'],
    { cwd: '/', all: true });
    assert.is(r.exitCode, 0, String(r.all).split('\n').slice(-15).join('\n'));
    assert.match(String(r.stdout), /^3\n$/);
    const gone = await asNamed(u.name, CTR_BIN, ['exec', debian, 'sh', '-c', 'command -v python3 || echo none'], { cwd: '/' });
    assert.is(gone.stdout, 'none\n');
  });
}

Fakeroot('errors :: --fakeroot-mode subuid without /etc/subuid entries is one line that says what to add', async () => {
  const { uid } = await ensureUser(NOSUB_USER, false);
  const r = await asNamed(NOSUB_USER, CTR_BIN, ['exec', '--fakeroot', '--fakeroot-mode', 'subuid', debian, 'true'], { cwd: '/' });
  assert.is(r.stderr, `ctr: error: --fakeroot-mode subuid: no /etc/subuid entry for ${NOSUB_USER}\n` +
    `ctr: hint: an administrator can add "${uid}:100000:65536" (a range no one else has) to /etc/subuid and /etc/subgid and install uidmap\n`);
  assert.is(r.exitCode, 255);
});

Fakeroot.run();
