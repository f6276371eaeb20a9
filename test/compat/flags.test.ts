// Ported from Apptainer's e2e suite for the runtime flags of issue 14's remainder (their
// cases, our tests): e2e/actions/actions.go actionCompat (--compat), actionBinds (its
// --underlay and --writable cases on a sandbox), the SIF --writable case of its overlay
// table, e2e/env/env.go apptainerRuntimeTimeoutEnv (--runscript-timeout) and
// e2e/security/security.go testSecurityUnpriv / testSecurityPriv (--drop-caps,
// --keep-privs, --security; Apptainer's root profile is --fakeroot here). Where ctr
// deliberately differs (README "Coming from Apptainer"), the case asserts ctr's behaviour
// and says so in its name.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { userIds, userTmp } from '../helpers/user.js';
import { CTR_MAIN } from '../helpers/paths.js';
import { asUser } from '../helpers/user.js';
import { apptainerBusyboxDir, apptainerBusyboxSif, ctrUser, ownLeftovers } from './fixture.js';

const ctx = { dir: '', bb: '', sandbox: '', rootSandbox: '', canaryDir: '', canaryFile: '' };
const Flags = suite('compat flags');

Flags.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-flags-');
  ctx.bb = await apptainerBusyboxSif();
  ctx.rootSandbox = await apptainerBusyboxDir();
  const { uid, gid } = await userIds();
  // The user's own sandbox (apptainer build --sandbox as the user): a copy, the user's.
  ctx.sandbox = path.join(ctx.dir, 'sandbox');
  await execa('cp', ['-a', ctx.rootSandbox, ctx.sandbox]);
  await execa('chown', ['-R', `${uid}:${gid}`, ctx.sandbox]);
  ctx.canaryDir = path.join(ctx.dir, 'canary');
  ctx.canaryFile = path.join(ctx.canaryDir, 'file');
  fs.mkdirSync(ctx.canaryDir);
  fs.writeFileSync(ctx.canaryFile, 'canary\n');
  fs.chmodSync(ctx.canaryFile, 0o777);
  fs.chownSync(ctx.canaryDir, uid, gid);
});
Flags.after.each(async () => assert.equal(await ownLeftovers(), [], 'processes left behind'));
Flags.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

const exec = (args: string[], env: Record<string, string> = {}) => ctrUser(['exec', ...args], env, ctx.dir);

// --- e2e/actions/actions.go actionCompat ---------------------------------------------

Flags('e2e/actions/actions.go actionCompat :: containall', async () => {
  const r = await exec(['--compat', ctx.bb, 'sh', '-c', 'ls -lah $HOME']);
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes('total 0'), r.stdout);
});

Flags('e2e/actions/actions.go actionCompat :: writable-tmpfs', async () => {
  const r = await exec(['--compat', ctx.bb, 'sh', '-c', 'touch /test']);
  assert.is(r.stderr, '');
  assert.is(r.code, 0);
});

Flags('e2e/actions/actions.go actionCompat :: no-init (no sinit; ctr keeps its own init as PID 1, documented difference)', async () => {
  const r = await exec(['--compat', ctx.bb, 'sh', '-c', 'ps']);
  assert.is(r.code, 0, r.stderr);
  assert.not.ok(r.stdout.includes('sinit'), r.stdout);
  assert.match(r.stdout, /^\s*1 \S+\s+\{ctr-init\}/m);
});

Flags('e2e/actions/actions.go actionCompat :: no-umask', async () => {
  const r = await ctrUser(['exec', '--compat', ctx.bb, 'sh', '-c', 'umask'], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes('0022'), r.stdout);
  // The caller's umask is what is left out: a stricter one around ctr.
  const strict = await asUser('sh', ['-c', `umask 077; exec "$0" "$@"`, process.execPath, CTR_MAIN, 'exec', '--compat', ctx.bb, 'sh', '-c', 'umask'], { cwd: ctx.dir });
  assert.is(String(strict.stdout).trim(), '0022', String(strict.stderr));
});

Flags('cmd/internal/cli/actions.go isCompat :: --compat implies --no-eval and --cleanenv', async () => {
  const r = await exec(['--compat', '--env', 'X=$(echo evaluated)', ctx.bb, 'sh', '-c', 'echo "[$X] [${OUTSIDE:-}]"'], { OUTSIDE: 'host' });
  assert.is(r.stderr, '');
  assert.is(r.stdout, '[$(echo evaluated)] []\n');
  const both = await exec(['--compat', '--writable', ctx.sandbox, 'true']);
  assert.is(both.code, 255);
  assert.is(both.stderr, 'ctr: error: --writable and --writable-tmpfs: one writable layer at most\n' +
    'ctr: hint: leave out one of them (--compat implies --writable-tmpfs)\n');
});

// --- e2e/actions/actions.go actionBinds: --underlay and --writable on a sandbox -------

const contDir = '/canary';
const contFile = '/canary/file';
for (const [name, extra, cmd] of [
  ['SimpleFileUnderlay', ['--bind', () => `${ctx.canaryFile}:${contFile}`], ['test', '-f', contFile]],
  ['SimpleFilePwdUnderlay', ['--bind', () => `${ctx.canaryFile}:${contFile}`, '--pwd', contDir], ['test', '-f', 'file']],
  ['SimpleDirUnderlay', ['--bind', () => `${ctx.canaryDir}:${contDir}`], ['test', '-f', contFile]],
  ['SimpleDirPwdUnderlay', ['--bind', () => `${ctx.canaryDir}:${contDir}`, '--pwd', contDir], ['test', '-f', 'file']],
] as const) {
  Flags(`e2e/actions/actions.go actionBinds :: ${name}`, async () => {
    const args = extra.map((a) => (typeof a === 'function' ? a() : a));
    const r = await exec(['--underlay', ...args, ctx.sandbox, ...cmd]);
    assert.is(r.stderr, '');
    assert.is(r.code, 0);
    assert.not.ok(fs.existsSync(path.join(ctx.sandbox, 'canary')), 'the image is left as it is');
  });
}

Flags('e2e/actions/actions.go actionBinds :: --underlay on a SIF: a bind to a missing, deep destination', async () => {
  const r = await exec(['--underlay', '--bind', `${ctx.canaryFile}:/not/in/image/file`, ctx.bb, 'cat', '/not/in/image/file']);
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'canary\n');
});

for (const [name, underlay] of [['SimpleFileWritableOK', false], ['SimpleFileWritableUnderlayOK', true]] as const) {
  Flags(`e2e/actions/actions.go actionBinds :: ${name}`, async () => {
    // The destination is the host path, under the host's /tmp bound in: it exists.
    const r = await exec([...(underlay ? ['--underlay'] : []), '--writable', '--bind', ctx.canaryFile, ctx.sandbox, 'test', '-f', ctx.canaryFile]);
    assert.is(r.code, 0, r.stderr);
  });
}

Flags('e2e/actions/actions.go actionBinds :: SimpleDirWritableOK', async () => {
  const r = await exec(['--writable', '--bind', ctx.canaryDir, ctx.sandbox, 'test', '-f', ctx.canaryFile]);
  assert.is(r.code, 0, r.stderr);
});

for (const [name, bind] of [['SimpleFileWritableKO', () => `${ctx.canaryFile}:${contFile}`], ['SimpleDirWritableKO', () => `${ctx.canaryDir}:${contDir}`]] as const) {
  Flags(`e2e/actions/actions.go actionBinds :: ${name}`, async () => {
    const r = await exec(['--writable', '--bind', bind(), ctx.sandbox, 'test', '-f', contFile]);
    assert.is(r.code, 255);
    const dst = name.includes('File') ? contFile : contDir;
    assert.ok(r.stderr.endsWith(`ctr: error: cannot mount on ${dst} (${dst} in the image): it does not exist in the image, and --writable makes no mount point in it\n` +
      'ctr: hint: create it in the image first, or leave out --writable\n'), r.stderr);
    assert.not.ok(fs.existsSync(path.join(ctx.sandbox, 'canary')), 'no mount point made in the image');
  });
}

Flags('e2e/actions/actions.go actionBinds :: CustomHomeBindWritableKO', async () => {
  const r = await exec(['--home', `${ctx.canaryDir}:${contDir}`, '--writable', ctx.sandbox, 'true']);
  assert.is(r.code, 255);
  assert.ok(r.stderr.endsWith(`ctr: error: cannot mount on ${contDir} (${contDir} in the image): it does not exist in the image, and --writable makes no mount point in it\n` +
    'ctr: hint: create it in the image first, or leave out --writable\n'), r.stderr);
});

for (const [name, args, dst] of [
  ['CustomHomeBindWritableOK', () => ['--home', `${ctx.dir}/e2e-home:/home/e2e`, '--bind', `${ctx.canaryDir}:/home/e2e/canaryRW`], '/home/e2e/canaryRW'],
  ['WorkdirTmpBindWritable', () => ['--workdir', `${ctx.dir}/e2e-work`, '--contain', '--bind', `${ctx.canaryDir}:/tmp/canary/dir`], '/tmp/canary/dir'],
] as const) {
  Flags(`e2e/actions/actions.go actionBinds :: ${name} (ctr makes no mount point in a host directory bound in: documented difference)`, async () => {
    const { uid, gid } = await userIds();
    for (const d of ['e2e-home', 'e2e-work']) {
      fs.mkdirSync(path.join(ctx.dir, d), { recursive: true });
      fs.chownSync(path.join(ctx.dir, d), uid, gid);
    }
    // The sandbox has the home's place, as Apptainer's e2e image has its user's.
    fs.mkdirSync(path.join(ctx.sandbox, 'home/e2e'), { recursive: true });
    fs.chownSync(path.join(ctx.sandbox, 'home/e2e'), uid, gid);
    try {
      const r = await exec([...args(), '--writable', ctx.sandbox, 'true']);
      assert.is(r.code, 255);
      assert.ok(r.stderr.endsWith(`ctr: error: cannot mount on ${dst} (${dst} in the image): a mount point would have to be made in a host directory bound into the container\n` +
        'ctr: hint: bind it somewhere else, or create it there first\n'), r.stderr);
      assert.is(fs.readdirSync(path.join(ctx.dir, name.startsWith('Custom') ? 'e2e-home' : 'e2e-work')).length, name.startsWith('Custom') ? 0 : 2, 'nothing made in the host directory');
    } finally {
      fs.rmSync(path.join(ctx.sandbox, 'home/e2e'), { recursive: true, force: true });
    }
  });
}

Flags('e2e/actions/actions.go (overlay table) :: SIF_writable_without_overlay_partition_issue_4329', async () => {
  const r = await exec(['--writable', ctx.bb, 'true']);
  assert.is(r.code, 255);
  assert.is(r.stderr, `ctr: error: --writable ${ctx.bb}: a SIF image is read-only (ctr writes into no SIF overlay partition)\n` +
    'ctr: hint: keep changes in an overlay (ctr overlay create ov.img; --overlay ov.img), or throw them away: --writable-tmpfs\n');
});

Flags('e2e/actions/actions.go (overlay table) :: overlay_find_with_writable_fail', async () => {
  const ov = path.join(ctx.dir, 'ovdir');
  fs.mkdirSync(ov);
  const { uid, gid } = await userIds();
  fs.chownSync(ov, uid, gid);
  const r = await exec(['--overlay', ov, '--writable', ctx.sandbox, 'true']);
  assert.is(r.code, 255);
  assert.is(r.stderr, 'ctr: error: --writable and --overlay: cannot be used together\nctr: hint: the overlay holds the changes: leave out --writable\n');
});

Flags('--writable :: changes land in the user\'s sandbox, as the user (and as root inside with --fakeroot)', async () => {
  const r = await exec(['-w', ctx.sandbox, 'sh', '-c', 'echo kept > /written-by-ctr; id -u']);
  assert.is(r.code, 0, r.stderr);
  const { uid } = await userIds();
  assert.is(r.stdout, `${uid}\n`);
  const file = path.join(ctx.sandbox, 'written-by-ctr');
  assert.is(fs.readFileSync(file, 'utf8'), 'kept\n');
  assert.is(fs.statSync(file).uid, uid);
  const f = await exec(['-w', '-f', ctx.sandbox, 'sh', '-c', 'rm /written-by-ctr && mkdir /made-as-root && stat -c %u /made-as-root']);
  assert.is(f.stdout, '0\n', f.stderr);
  assert.is(fs.statSync(path.join(ctx.sandbox, 'made-as-root')).uid, uid, 'root inside is the user outside');
  assert.not.ok(fs.existsSync(file));
});

Flags('--writable :: default mounts the sandbox has no place for are skipped with a warning', async () => {
  const { home } = await userIds();
  const r = await exec(['-w', ctx.sandbox, 'sh', '-c', `test -d ${home} || echo no home`]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'no home\n');
  assert.ok(r.stderr.includes(`ctr: warning: skipping ${home}: its place in the image (${home}) can't be used: it does not exist in the image, and --writable makes no mount point in it\n`), r.stderr);
  assert.not.ok(fs.existsSync(path.join(ctx.sandbox, home)), 'nothing made in the image');
});

Flags('--writable --contain :: --contain\'s tmpfs mounts, the home too, are defaults: skipped where the sandbox has no place', async () => {
  const { home } = await userIds();
  const r = await exec(['-w', '-c', ctx.sandbox, 'sh', '-c', 'pwd; touch /tmp/t && ls /tmp']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '/\nt\n');
  assert.ok(r.stderr.includes(`ctr: warning: skipping ${home}: `), r.stderr);
  assert.not.ok(fs.existsSync(path.join(ctx.sandbox, 'tmp/t')), "/tmp is --contain's tmpfs, not the image's");
});

Flags('--writable :: a root-owned sandbox is refused in one line (as Apptainer: no write permission)', async () => {
  for (const extra of [[], ['--fakeroot']]) {
    const r = await exec(['--writable', ...extra, ctx.rootSandbox, 'true']);
    assert.is(r.code, 255);
    assert.is(r.stderr, `ctr: error: --writable ${ctx.rootSandbox}: you have no write permission there (it is root's)\n` +
      'ctr: hint: copy it to a directory of your own (cp -a), or keep changes in --writable-tmpfs or --overlay\n');
  }
});

// --- issue 14: --writable-tmpfs on a root-owned directory image ----------------------

Flags('--writable-tmpfs :: a root-owned sandbox takes writes (no EOVERFLOW: fuse-overlayfs, files shown as the user\'s)', async () => {
  const file = path.join(ctx.rootSandbox, '.singularity.d/runscript');
  const before = fs.readFileSync(file, 'utf8');
  const { uid } = await userIds();
  for (const [extra, owner] of [[[], String(uid)], [['--fakeroot'], '0']] as const) {
    const r = await exec([...extra, '--writable-tmpfs', ctx.rootSandbox, 'sh', '-c',
      'echo "# appended" >> /.singularity.d/runscript && mkdir /bin/made && touch /newfile && stat -c %u /.singularity.d/runscript && tail -1 /.singularity.d/runscript']);
    assert.is(r.stderr, '', extra.join(' '));
    assert.is(r.stdout, `${owner}\n# appended\n`, extra.join(' '));
  }
  assert.is(fs.readFileSync(file, 'utf8'), before, 'the image is left as it was');
  assert.not.ok(fs.existsSync(path.join(ctx.rootSandbox, 'bin/made')));
});

// --- e2e/env/env.go apptainerRuntimeTimeoutEnv ----------------------------------------

Flags('e2e/env/env.go apptainerRuntimeTimeoutEnv :: runscript timeout (ctr\'s words for Apptainer\'s FATAL)', async () => {
  const slow = path.join(ctx.dir, 'sleep.sh');
  fs.writeFileSync(slow, 'sleep 2s\n', { mode: 0o755 });
  const r = await ctrUser(['run', '-B', `${slow}:/.singularity.d/env/91-slow_env.sh`, '--runscript-timeout', '1s', ctx.bb, 'true'], {}, ctx.dir);
  assert.is(r.code, 255);
  assert.is(r.stderr, "ctr: error: the image's environment scripts did not finish within 1s: stopped\nctr: hint: give them longer with --runscript-timeout\n");
  const enough = await ctrUser(['run', '-B', `${slow}:/.singularity.d/env/91-slow_env.sh`, '--runscript-timeout', '1m', ctx.bb, 'echo', 'ran'], {}, ctx.dir);
  assert.is(enough.stderr, '');
  assert.is(enough.stdout, 'ran\n');
});

Flags('--runscript-timeout :: the command itself has no limit; a bad duration is one line', async () => {
  const r = await exec(['--runscript-timeout', '200ms', ctx.bb, 'sh', '-c', 'sleep 1; echo done']);
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'done\n');
  const bad = await exec(['--runscript-timeout', '10', ctx.bb, 'true']);
  assert.is(bad.code, 255);
  assert.is(bad.stderr, 'ctr: error: --runscript-timeout "10": not a duration (a number and a unit: ms, s, m or h; e.g. 30s, 1m30s)\n');
});

// --- e2e/security/security.go testSecurityUnpriv / testSecurityPriv --------------------

const caps = (out: string) => Object.fromEntries(out.trim().split('\n').map((l) => l.split(/:\s+/)).map(([k, v]) => [k, BigInt(`0x${v}`)]));
const NET_RAW = 1n << 13n;
const CHOWN = 1n;

for (const [name, spec] of [['Set_uid', 'uid:99'], ['Set_gid', 'gid:99']] as const) {
  Flags(`e2e/security/security.go testSecurityUnpriv :: ${name} (refused, also where Apptainer's user namespace mode runs it: documented difference)`, async () => {
    const r = await exec(['--security', spec, ctx.bb, 'id']);
    assert.is(r.code, 255);
    assert.is(r.stderr, `ctr: error: --security ${spec}: the container runs as you (or as root with --fakeroot); other ids need a real root\n`);
  });
}

for (const [name, argv] of [['SecComp_BlackList', ['mkdir', '/tmp/foo']], ['SecComp_true', ['true']]] as const) {
  Flags(`e2e/security/security.go testSecurityUnpriv :: ${name} (a seccomp profile is refused: documented difference)`, async () => {
    const r = await exec(['--security', 'seccomp:./security/testdata/seccomp-profile.json', ctx.bb, ...argv]);
    assert.is(r.code, 255);
    assert.is(r.stderr, 'ctr: error: --security seccomp:./security/testdata/seccomp-profile.json: a seccomp profile of your own is not supported: ctr installs its own filter (TIOCSTI refused)\n');
  });
}

Flags('e2e/security/security.go testSecurityUnpriv :: capabilities_keep_true', async () => {
  const r = await exec(['--keep-privs', ctx.bb, 'grep', '^CapEff:', '/proc/self/status']);
  assert.is(r.code, 255);
  assert.is(r.stderr, "ctr: error: --keep-privs: there is no host root privilege to keep: ctr runs as you\n" +
    "ctr: hint: under --fakeroot root in the container has every capability already (its user namespace's)\n");
});

Flags('e2e/security/security.go testSecurityUnpriv :: capabilities_keep-false', async () => {
  const r = await exec([ctx.bb, 'grep', '^CapEff:', '/proc/self/status']);
  assert.match(r.stdout, /^CapEff:\s+0+\n$/);
});

Flags('e2e/security/security.go testSecurityUnpriv :: capabilities_drop (and gone from the bounding set)', async () => {
  const r = await exec(['--drop-caps', 'CAP_NET_RAW', ctx.bb, 'grep', '^Cap.*:', '/proc/self/status']);
  assert.match(r.stdout, /CapEff:\s+0+\n/);
  const c = caps(r.stdout);
  assert.is(c.CapBnd & NET_RAW, 0n, r.stdout);
  assert.is.not(c.CapBnd & CHOWN, 0n, 'only what was named is dropped');
});

Flags('e2e/security/security.go testSecurityPriv :: capabilities_drop (root: --fakeroot)', async () => {
  const full = caps((await exec(['-f', ctx.bb, 'grep', '^Cap.*:', '/proc/self/status'])).stdout);
  assert.is(full.CapEff, full.CapBnd, 'root has every capability of its namespace');
  const r = await exec(['-f', '--drop-caps', 'net_raw', ctx.bb, 'grep', '^Cap.*:', '/proc/self/status']);
  const c = caps(r.stdout);
  assert.is(c.CapEff, full.CapEff - NET_RAW, r.stdout);
  assert.is(c.CapBnd, full.CapBnd - NET_RAW);
});

Flags('--add-caps :: a command that is not root holds them (ambient, in its user namespace); --drop-caps wins', async () => {
  const r = await exec(['--add-caps', 'CAP_CHOWN,net_raw', ctx.bb, 'grep', '^Cap.*:', '/proc/self/status']);
  const c = caps(r.stdout);
  assert.is(c.CapEff, CHOWN | NET_RAW, r.stdout);
  assert.is(c.CapAmb, CHOWN | NET_RAW);
  const both = caps((await exec(['--add-caps', 'CAP_CHOWN,CAP_NET_RAW', '--drop-caps', 'CAP_NET_RAW', ctx.bb, 'grep', '^Cap.*:', '/proc/self/status'])).stdout);
  assert.is(both.CapEff, CHOWN);
});

Flags('--no-privs :: root under --fakeroot has nothing, or only what --add-caps names', async () => {
  const none = caps((await exec(['-f', '--no-privs', ctx.bb, 'grep', '^Cap.*:', '/proc/self/status'])).stdout);
  assert.equal([none.CapEff, none.CapPrm, none.CapBnd, none.CapInh, none.CapAmb], [0n, 0n, 0n, 0n, 0n]);
  const one = caps((await exec(['-f', '--no-privs', '--add-caps', 'CHOWN', ctx.bb, 'grep', '^Cap.*:', '/proc/self/status'])).stdout);
  assert.equal([one.CapEff, one.CapBnd], [CHOWN, CHOWN]);
  const denied = await exec(['-f', '--no-privs', ctx.bb, 'chown', '1', '/tmp']);
  assert.is.not(denied.code, 0, 'root without CAP_CHOWN');
});

Flags('--drop-caps :: an unknown capability is one line (Apptainer warns and goes on: documented difference)', async () => {
  const r = await exec(['--drop-caps', 'CAP_FLY', ctx.bb, 'true']);
  assert.is(r.code, 255);
  assert.is(r.stderr, 'ctr: error: --drop-caps CAP_FLY: not a capability\nctr: hint: names as in capabilities(7), e.g. CAP_NET_RAW (or ALL)\n');
});

Flags.run();
