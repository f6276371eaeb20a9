// The runtime flags' planning (src/plan/caps.ts, duration.ts, compose.ts, cli/launch-flags.ts):
// capability names to masks, durations, --compat's implied flags, and the words that
// --writable, --drop-caps/--add-caps/--no-privs and --runscript-timeout put in a plan.
// Pure: no container is started (test/compat/flags runs them).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { capabilityOptions, capMask, CAPABILITIES, securityOptions } from '../../src/plan/caps.js';
import { parseDuration } from '../../src/plan/duration.js';
import { composePlan } from '../../src/plan/compose.js';
import { toLaunchOptions } from '../../src/cli/launch-flags.js';
import type { ImageRef } from '../../src/image/open.js';
import type { HostFacts, LaunchOptions } from '../../src/plan/options.js';
import { CtrError } from '../../src/errors.js';

const Caps = suite('runtime flags');
const DIR: ImageRef = { kind: 'dir', path: '/img/rootfs', offset: 0 };
const SIF: ImageRef = { kind: 'sif', path: '/img/app.sif', offset: 4096 };
const ALL = (1n << BigInt(CAPABILITIES.length)) - 1n;

function options(over: Partial<LaunchOptions> = {}): LaunchOptions {
  return { bind: [], writableTmpfs: false, cleanenv: false, env: [], noHome: false, contain: false, fakeroot: false, debug: false, ...over };
}
function host(over: Partial<HostFacts> = {}): HostFacts {
  return { uid: 1001, gid: 1002, user: 'u', group: 'g', gecos: '', home: '/home/u', cwd: '/work', realpaths: new Map([['/home/u', '/home/u']]),
    exists: new Set(['/home/u']), envFileLines: [], ...over };
}
function refused(f: () => unknown, message: string): void {
  try {
    f();
  } catch (err) {
    assert.instance(err, CtrError);
    assert.is((err as CtrError).message, message);
    return;
  }
  assert.unreachable(`not refused: ${message}`);
}
const after = (args: string[], word: string, n = 1) => { const i = args.indexOf(word); return i < 0 ? undefined : args.slice(i + 1, i + 1 + n); };

Caps('capMask :: Apptainer\'s spellings: any case, CAP_ optional, ALL', () => {
  assert.is(capMask(['CAP_NET_RAW'], '--drop-caps'), 1n << 13n);
  assert.is(capMask(['net_raw', ' chown '], '--drop-caps'), (1n << 13n) | 1n);
  assert.is(capMask(['all'], '--drop-caps'), ALL);
  assert.is(CAPABILITIES[40], 'CAP_CHECKPOINT_RESTORE');
  refused(() => capMask(['CAP_FLY'], '--add-caps'), '--add-caps CAP_FLY: not a capability');
});

Caps('capabilityOptions :: --drop-caps wins over --add-caps; --no-privs drops all but what is added', () => {
  assert.equal(capabilityOptions([], [], false, false), {});
  assert.equal(capabilityOptions(['NET_RAW'], ['NET_RAW', 'CHOWN'], false, false), { caps: { drop: 1n << 13n, add: 1n } });
  assert.equal(capabilityOptions([], ['CHOWN'], true, false), { caps: { drop: ALL & ~1n, add: 1n } });
  assert.equal(capabilityOptions([], [], true, false), { caps: { drop: ALL, add: 0n } });
  refused(() => capabilityOptions([], [], false, true), '--keep-privs: there is no host root privilege to keep: ctr runs as you');
  refused(() => securityOptions(['apparmor:/usr/bin/man']), '--security apparmor:/usr/bin/man: changing the apparmor profile needs privileges ctr does not have');
  refused(() => securityOptions(['frob']), '--security frob: not a security option (seccomp:, apparmor:, selinux:, uid:, gid:)');
});

Caps('parseDuration :: Go\'s forms, in whole milliseconds', () => {
  assert.is(parseDuration('1s', 'f'), 1000);
  assert.is(parseDuration('1m30s', 'f'), 90_000);
  assert.is(parseDuration('1.5h', 'f'), 5_400_000);
  assert.is(parseDuration('250ms', 'f'), 250);
  assert.is(parseDuration('1500us', 'f'), 2);
  for (const bad of ['', '10', '1x', 's', '1s ', '-1s']) refused(() => parseDuration(bad, '--runscript-timeout'), `--runscript-timeout ${JSON.stringify(bad)}: not a duration (a number and a unit: ms, s, m or h; e.g. 30s, 1m30s)`);
  refused(() => parseDuration('0s', 'f'), 'f 0s: out of range (1ms to about 24 days)');
});

Caps('toLaunchOptions :: --compat is --containall --no-init --no-umask --no-eval --writable-tmpfs', () => {
  const o = toLaunchOptions({ compat: true, bind: [], env: [] });
  assert.equal([o.contain, o.cleanenv, o.writableTmpfs, o.noUmask, o.noEval], [true, true, true, true, true]);
  const plain = toLaunchOptions({ bind: [], env: [] });
  assert.equal([plain.contain, plain.writableTmpfs, plain.noEval], [false, false, false]);
});

Caps('composePlan :: --writable on a directory: --writable --no-mountpoints, default mounts optional, -B not', () => {
  const args = composePlan('exec', DIR, options({ writable: true, bind: ['/data:/d'] }), host({ realpaths: new Map([['/data', '/data'], ['/home/u', '/home/u']]), imageWritable: { ok: true, uid: 1001 } })).args;
  assert.ok(args.includes('--writable') && args.includes('--no-mountpoints'));
  const bindWords = args.flatMap((a, i) => (a === '--bind' ? [args.slice(i + 1, i + 4)] : []));
  assert.equal(bindWords.find((b) => b[1] === '/d'), ['/data', '/d', 'rw']);
  assert.equal(bindWords.find((b) => b[1] === '/home/u'), ['/home/u', '/home/u', 'rw?']);
  assert.equal(bindWords.find((b) => b[1] === '/work'), ['/work', '/work', 'rw?']);
});

Caps('composePlan :: --writable refused on a SIF, a directory not the user\'s to write, and with another writable layer', () => {
  refused(() => composePlan('exec', SIF, options({ writable: true }), host()), '--writable /img/app.sif: a SIF image is read-only (ctr writes into no SIF overlay partition)');
  refused(() => composePlan('exec', DIR, options({ writable: true }), host({ imageWritable: { ok: false, uid: 0 } })), "--writable /img/rootfs: you have no write permission there (it is root's)");
  refused(() => composePlan('exec', DIR, options({ writable: true }), host({ imageWritable: { ok: false, uid: 2000 } })), "--writable /img/rootfs: you have no write permission there (it is uid 2000's)");
  refused(() => composePlan('exec', DIR, options({ writable: true, writableTmpfs: true }), host()), '--writable and --writable-tmpfs: one writable layer at most');
  refused(() => composePlan('exec', DIR, options({ writable: true }), host({ overlays: [{ kind: 'dir', path: '/ov' }] })), '--writable and --overlay: cannot be used together');
});

Caps('composePlan :: --caps in hex and --runscript-timeout in ms; neither by default', () => {
  const args = composePlan('run', SIF, options({ caps: { drop: ALL & ~1n, add: 1n }, runscriptTimeoutMs: 1500 }), host()).args;
  assert.equal(after(args, '--caps', 2), ['1fffffffffe', '1']);
  assert.equal(after(args, '--runscript-timeout'), ['1500']);
  const plain = composePlan('run', SIF, options(), host()).args;
  assert.not.ok(plain.includes('--caps') || plain.includes('--runscript-timeout') || plain.includes('--no-mountpoints'));
});

Caps('composePlan :: --writable-tmpfs on someone else\'s directory image goes through fuse-overlayfs, where installed', () => {
  const tmpfs = options({ writableTmpfs: true });
  const fuse = (h: Partial<HostFacts>) => after(composePlan('exec', DIR, tmpfs, host(h)).args, '--writable-tmpfs-fuse');
  assert.equal(fuse({ imageUid: 0, fuseOverlayfs: '/usr/bin/fuse-overlayfs' }), ['/usr/bin/fuse-overlayfs']);
  assert.is(fuse({ imageUid: 1001, fuseOverlayfs: '/usr/bin/fuse-overlayfs' }), undefined, "the user's own: kernel overlayfs");
  assert.is(fuse({ imageUid: 0 }), undefined, 'no fuse-overlayfs: kernel overlayfs, as before');
  assert.is(after(composePlan('exec', SIF, tmpfs, host({ imageUid: 0, fuseOverlayfs: '/usr/bin/fuse-overlayfs' })).args, '--writable-tmpfs-fuse'), undefined, 'a SIF: its FUSE server shows ids it can map');
});

Caps.run();
