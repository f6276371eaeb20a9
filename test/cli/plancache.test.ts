// The launcher's plan cache (native/launch_plancache.c, src/launch/inputs.ts): a plan is
// reused only while everything it was made from holds, and changing any one input
// gives a fresh plan that shows the change. `--debug` says hit or miss and why.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { chmod, chown, copyFile, cp, mkdir, readdir, readFile, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxDir, busyboxSif, busyboxSqfs, cached } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { asUser, TEST_USER, userIds, userTmp } from '../helpers/user.js';
import { CTR_BIN, REPO } from '../helpers/paths.js';

const Cache = suite('plan cache');
let sif: string, other: string, work: string, runtime: string;

/** The busybox image with another /etc/image-release, as a bare SquashFS. */
function otherImage(): Promise<string> {
  return cached('plancache-other.sqfs', async (tmp) => {
    const dir = `${tmp}.d`;
    await cp(await busyboxDir(), dir, { recursive: true, verbatimSymlinks: true });
    await writeFile(join(dir, 'etc/image-release'), 'the other image\n');
    await execa('mksquashfs', [dir, tmp, '-noappend', '-all-root', '-comp', 'zstd', '-quiet', '-no-progress']);
    await chmod(tmp, 0o644);
    await rm(dir, { recursive: true });
  });
}

/** What the launcher said about the cache ("hit (...)", "miss (...); planned and stored"). */
function note(r: { stderr: unknown }): string {
  return /plan cache: (.*)$/m.exec(String(r.stderr))?.[1] ?? `(nothing said: ${String(r.stderr)})`;
}

/** `ctr exec --debug ARGS` as the test user, with the cache in this file's own directory. */
async function run(args: string[], opts: { env?: Record<string, string>; cwd?: string; bin?: string; home?: string } = {}) {
  // asUser sets HOME itself; another one is given through env(1).
  const [cmd, pre] = opts.home ? ['env', [`HOME=${opts.home}`, opts.bin ?? CTR_BIN]] : [opts.bin ?? CTR_BIN, []];
  const r = await asUser(cmd, [...pre, 'exec', '--debug', ...args], {
    cwd: opts.cwd ?? work, env: { XDG_RUNTIME_DIR: runtime, ...opts.env },
  });
  const out = { stdout: String(r.stdout), note: note(r), exitCode: r.exitCode, stderr: String(r.stderr) };
  assert.is(out.exitCode, 0, out.stderr);
  return out;
}

const HIT = /^hit \(/;
const STORED = /planned and stored/;

/** Run ARGS until stored, then again: the second must be a hit with the same output. */
async function warm(args: string[], opts: Parameters<typeof run>[1] = {}) {
  const first = await run(args, opts);
  assert.match(first.note, STORED);
  const again = await run(args, opts);
  assert.match(again.note, HIT);
  assert.is(again.stdout, first.stdout);
  return first;
}

async function entries(): Promise<string[]> {
  return (await readdir(join(runtime, 'ctr/plans'))).filter((n) => n.startsWith('p-'));
}

Cache.before(async () => {
  sif = await busyboxSif();
  other = await otherImage();
  work = await userTmp('ctr-plancache-');
  runtime = join(work, 'run');
  await mkdir(runtime, { mode: 0o700 });
  const { uid, gid } = await userIds();
  await chown(runtime, uid, gid);
  await chmod(runtime, 0o700);
});
Cache.after(async () => {
  await rm(work, { recursive: true, force: true });
});
Cache.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

Cache('hit :: the second launch runs the kept plan without Node; per-launch variables still apply', async () => {
  const args = [sif, 'sh', '-c', 'echo "$PERLAUNCH $(cat /etc/image-release)"'];
  const first = await run(args, { env: { PERLAUNCH: 'one' } });
  assert.match(first.note, /^miss \(no entry p-[0-9a-f]{16}\); planned and stored \(\d+ inputs\)$/);
  assert.match(first.stderr, /started from the start-up snapshot/);
  const second = await run(args, { env: { PERLAUNCH: 'two' } });
  assert.match(second.note, /^hit \(.*\/ctr\/plans\/p-[0-9a-f]{16}, \d+ inputs unchanged\): Node not started$/);
  assert.not.match(second.stderr, /started from the start-up snapshot/);
  // --debug shows the kept plan as the planner showed it.
  const fresh = /ctr: debug: launch plan: (.*)$/m.exec(first.stderr)?.[1];
  assert.ok(fresh);
  assert.is(/launch plan \(kept\): (.*)$/m.exec(second.stderr)?.[1], fresh);
  assert.is(first.stdout, 'one busybox test image\n');
  assert.is(second.stdout, 'two busybox test image\n');
  const files = await entries();
  assert.ok(files.length >= 1);
  const st = await stat(join(runtime, 'ctr/plans', files[0]));
  assert.is(st.mode & 0o777, 0o600);
  assert.is((await stat(join(runtime, 'ctr/plans'))).mode & 0o777, 0o700);
});

Cache('off :: CTR_PLAN_CACHE=0 and --no-plan-cache plan anew and keep nothing', async () => {
  const args = [sif, 'echo', 'off'];
  const before = (await entries()).length;
  const a = await run(args, { env: { CTR_PLAN_CACHE: '0' } });
  assert.is(a.note, 'off (CTR_PLAN_CACHE=0)');
  const b = await run(['--no-plan-cache', ...args]);
  assert.is(b.note, 'off (--no-plan-cache)');
  assert.is(a.stdout, 'off\n');
  assert.is(b.stdout, 'off\n');
  assert.is((await entries()).length, before);
});

Cache('key :: a flag changed is another plan', async () => {
  const a = await warm(['--env', 'V=1', sif, 'sh', '-c', 'echo $V']);
  const b = await run(['--env', 'V=2', sif, 'sh', '-c', 'echo $V']);
  assert.match(b.note, /^miss \(no entry/);
  assert.is(a.stdout, '1\n');
  assert.is(b.stdout, '2\n');
});

Cache('image :: replaced by another of the same name (renamed over, or copied in place): a fresh plan', async () => {
  const img = join(work, 'img.sqfs');
  await copyFile(await busyboxSqfs(), img);
  await chmod(img, 0o644);
  const args = [img, 'cat', '/etc/image-release'];
  assert.is((await warm(args)).stdout, 'busybox test image\n');
  await copyFile(other, `${img}.new`);
  await rename(`${img}.new`, img);
  const renamed = await run(args);
  assert.match(renamed.note, new RegExp(`^miss \\(${img} changed\\); planned and stored`));
  assert.is(renamed.stdout, 'the other image\n');
  // In place: same inode, other bytes (and times).
  await copyFile(await busyboxSqfs(), img);
  const inPlace = await run(args);
  assert.match(inPlace.note, new RegExp(`^miss \\(${img} changed\\)`));
  assert.is(inPlace.stdout, 'busybox test image\n');
});

Cache('cwd and HOME :: each is part of the key', async () => {
  const d1 = join(work, 'd1'), d2 = join(work, 'd2');
  for (const d of [d1, d2]) await asUser('mkdir', ['-p', d]);
  const args = [sif, 'sh', '-c', 'pwd; echo $HOME'];
  const a = await warm(args, { cwd: d1 });
  const b = await run(args, { cwd: d2 });
  assert.match(b.note, /^miss \(no entry/);
  assert.is(a.stdout, `${d1}\n/home/${TEST_USER}\n`);
  assert.is(b.stdout, `${d2}\n/home/${TEST_USER}\n`);
  const h = await run(args, { cwd: d1, home: d2 });
  assert.match(h.note, /^miss \(no entry/);
  assert.match((await run(args, { cwd: d1, home: d2 })).note, HIT);
});

Cache('bind source :: a symlinked source pointed elsewhere gives a fresh plan binding the new target', async () => {
  const a = join(work, 'a'), b = join(work, 'b'), link = join(work, 'src');
  for (const [d, text] of [[a, 'from a'], [b, 'from b']]) {
    await asUser('mkdir', ['-p', d]);
    await asUser('sh', ['-c', `echo "${text}" > ${d}/f`]);
  }
  await asUser('ln', ['-s', a, link]);
  const args = ['-B', `${link}:/mnt`, sif, 'cat', '/mnt/f'];
  assert.is((await warm(args)).stdout, 'from a\n');
  await asUser('ln', ['-sfn', b, link]);
  const r = await run(args);
  assert.match(r.note, new RegExp(`^miss \\(${link} resolves elsewhere\\)`));
  assert.is(r.stdout, 'from b\n');
  // A missing source is the planner's error again, not a kept plan's failure.
  await unlink(link);
  const gone = await asUser(CTR_BIN, ['exec', '--debug', ...args], { cwd: work, env: { XDG_RUNTIME_DIR: runtime } });
  assert.is(gone.exitCode, 255);
  assert.match(String(gone.stderr), new RegExp(`^ctr: error: bind source ${link}: `, 'm'));
});

Cache('env file :: its content changed gives a fresh plan', async () => {
  const f = join(work, 'env');
  await asUser('sh', ['-c', `echo FROMFILE=first > ${f}`]);
  await backdate(f);
  const args = ['--env-file', f, sif, 'sh', '-c', 'echo $FROMFILE'];
  assert.is((await warm(args)).stdout, 'first\n');
  await asUser('sh', ['-c', `echo FROMFILE=later > ${f}`]);
  const r = await run(args);
  assert.match(r.note, new RegExp(`^miss \\(${f} changed\\)`));
  assert.is(r.stdout, 'later\n');
});

/** An input made a moment ago is not trusted (timestamps are coarse): make it older. */
async function backdate(path: string): Promise<void> {
  const t = new Date(Date.now() - 10_000);
  await utimes(path, t, t);
}

Cache('variables :: a variable the planner consulted (APPTAINER_BIND) changed gives a fresh plan', async () => {
  const d = join(work, 'vb');
  await asUser('mkdir', ['-p', d]);
  await asUser('sh', ['-c', `echo vb > ${d}/f`]);
  const args = [sif, 'sh', '-c', 'cat /vb/f 2>/dev/null || echo none'];
  assert.is((await warm(args)).stdout, 'none\n');
  const r = await run(args, { env: { APPTAINER_BIND: `${d}:/vb` } });
  assert.match(r.note, /^miss \(\$APPTAINER_BIND is set\)/);
  assert.is(r.stdout, 'vb\n');
});

Cache('site config :: its content changed gives a fresh plan', async () => {
  const conf = join(work, 'ctr.conf');
  const d = join(work, 'site');
  await asUser('mkdir', ['-p', d]);
  await asUser('sh', ['-c', `echo site > ${d}/f; echo "# nothing yet" > ${conf}`]);
  await backdate(conf);
  const env = { CTR_CONFIG: conf };
  const args = [sif, 'sh', '-c', 'cat /site/f 2>/dev/null || echo none'];
  assert.is((await warm(args, { env })).stdout, 'none\n');
  await asUser('sh', ['-c', `echo "bind = ${d}:/site" > ${conf}`]);
  const r = await run(args, { env });
  assert.match(r.note, new RegExp(`^miss \\(${conf} changed\\)`));
  assert.is(r.stdout, 'site\n');
});

Cache('/etc/passwd :: the user\'s entry changed (its GECOS field) gives a fresh plan with the new entry', async () => {
  const args = [sif, 'grep', `^${TEST_USER}:`, '/etc/passwd'];
  const before = await warm(args);
  const { stdout: old } = await execa('getent', ['passwd', TEST_USER]);
  const gecos = old.split(':')[4];
  await execa('usermod', ['-c', 'plan cache test', TEST_USER]);
  try {
    await new Promise((r) => setTimeout(r, 50)); // past the coarse-timestamp window
    const r = await run(args);
    assert.match(r.note, /^miss \(\/etc\/passwd changed\)/);
    assert.match(r.stdout, new RegExp(`^${TEST_USER}:x:\\d+:\\d+:plan cache test:`));
    assert.is.not(r.stdout, before.stdout);
  } finally {
    await execa('usermod', ['-c', gecos, TEST_USER]);
  }
});

Cache('ctr rebuilt :: a new launcher or start-up snapshot is another key', async () => {
  // A copy of the built ctr, whose files a "rebuild" replaces as npm run build does.
  const root = join(work, 'ctr');
  for (const part of ['package.json', 'bin', 'dist/snapshot', 'native/build/ctr-launch']) {
    await cp(join(REPO, part), join(root, part), { recursive: true });
  }
  await execa('chmod', ['-R', 'a+rX', root]);
  const bin = join(root, 'bin/ctr');
  await mkdir(join(root, 'dist/src/cli'), { recursive: true });
  await writeFile(join(root, 'dist/src/cli/main.js'), ''); // bin/ctr checks it is built
  const args = [sif, 'echo', 'rebuilt'];
  await warm(args, { bin });
  for (const f of ['native/build/ctr-launch', 'dist/snapshot/ctr.blob']) {
    await copyFile(join(REPO, f), join(root, `${f}.new`));
    await chmod(join(root, `${f}.new`), 0o755);
    await rename(join(root, `${f}.new`), join(root, f));
    const r = await run(args, { bin });
    assert.match(r.note, /^miss \(no entry/, f);
    assert.is(r.stdout, 'rebuilt\n');
  }
});

Cache('concurrent :: 32 first launches at once plan once, store one plan, all run correctly', async () => {
  const tag = `c${process.pid}${Date.now()}`;
  const before = new Set(await entries());
  const rs = await Promise.all(Array.from({ length: 32 }, (_, i) =>
    asUser(CTR_BIN, ['exec', '--debug', '--env', `TAG=${tag}`, sif, 'sh', '-c', 'echo $TAG $RANK'], {
      cwd: work, env: { XDG_RUNTIME_DIR: runtime, RANK: String(i) },
    })));
  rs.forEach((r, i) => {
    assert.is(r.exitCode, 0, String(r.stderr));
    assert.is(String(r.stdout), `${tag} ${i}\n`);
  });
  const notes = rs.map(note);
  assert.is(notes.filter((n) => STORED.test(n)).length, 1, notes.join('\n'));
  assert.is(notes.filter((n) => HIT.test(n)).length, 31, notes.join('\n'));
  assert.is(rs.filter((r) => /started from the start-up snapshot/.test(String(r.stderr))).length, 1);
  const added = (await entries()).filter((n) => !before.has(n));
  assert.is(added.length, 1);
});

Cache('tampered :: an entry of another owner, another mode, another version or damaged is refused and replanned', async () => {
  const args = [sif, 'echo', 'tamper'];
  await warm(args);
  const dir = join(runtime, 'ctr/plans');
  const newest = async () => {
    const files = await entries();
    const times = await Promise.all(files.map(async (f) => [(await stat(join(dir, f))).mtimeMs, f] as const));
    return join(dir, times.sort((x, y) => y[0] - x[0])[0][1]);
  };
  const entry = await newest();
  const refused = async (why: RegExp) => {
    const r = await run(args);
    assert.match(r.note, why);
    assert.match(r.note, /planned and stored/);
    assert.is(r.stdout, 'tamper\n');
    const st = await stat(entry);
    assert.is(st.mode & 0o777, 0o600);
    assert.is(st.uid, (await userIds()).uid);
    assert.match((await run(args)).note, HIT);
  };
  await chmod(entry, 0o644);
  await refused(/^refused .* \(not a private regular file of ours: owner \d+, mode 0644\); planning anew/);
  await chown(entry, 0, 0);
  await chmod(entry, 0o644); // readable: refused for its owner, not for want of access
  await refused(/^refused .* \(not a private regular file of ours: owner 0, mode 0644\); planning anew/);
  const bytes = await readFile(entry);
  const at = bytes.indexOf('\0') + 1; // the version word
  await writeFile(entry, Buffer.concat([bytes.subarray(0, at), Buffer.from('9'), bytes.subarray(at + 1)]), { mode: 0o600 });
  await chown(entry, (await userIds()).uid, (await userIds()).gid);
  await refused(/^refused .* \(not a plan cache entry of version 1\); planning anew/);
  const good = await readFile(entry);
  const i = good.indexOf('tamper');
  await writeFile(entry, Buffer.concat([good.subarray(0, i), Buffer.from('TAMPER'), good.subarray(i + 6)]));
  await refused(/^refused .* \(malformed or not whole\); planning anew/);
  const whole = await readFile(entry);
  await writeFile(entry, whole.subarray(0, Math.floor(whole.length / 2))); // cut short
  await refused(/^refused .* \(malformed or not whole\); planning anew/);
  await writeFile(entry, Buffer.concat([await readFile(entry), Buffer.from('more\0')])); // a word past the end
  await refused(/^refused .* \(malformed or not whole\); planning anew/);
});

Cache('bounded :: at most 64 entries are kept', async () => {
  for (let i = 0; i < 70; i++) await fakeEntry(i);
  for (let i = 0; i < 3; i++) assert.match((await run([sif, 'echo', `bound${i}`])).note, STORED);
  assert.ok((await entries()).length <= 64, String((await entries()).length));
});

/** Stand-in entries (old, so pruned first): what many distinct launches would leave. */
async function fakeEntry(i: number): Promise<void> {
  const f = join(runtime, 'ctr/plans', `p-${i.toString(16).padStart(16, 'e')}`);
  await writeFile(f, 'x', { mode: 0o600 });
  const { uid, gid } = await userIds();
  await chown(f, uid, gid);
  await backdate(f);
}

Cache.run();
