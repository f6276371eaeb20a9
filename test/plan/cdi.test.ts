// CDI specs (src/gpu/cdi-spec.ts) and --device selection (src/gpu/cdi-resolve.ts), then
// their binds and variables (src/plan/devices.ts): pure, from documents written here.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checkCdiSpec } from '../../src/gpu/cdi-spec.js';
import { selectCdiDevices, type FoundSpec } from '../../src/gpu/cdi-resolve.js';
import { cdiEdits } from '../../src/plan/devices.js';
import { ctrError, message } from '../helpers/errors.js';

const F = '/etc/cdi/vendor.yaml';
const doc = (over: Record<string, unknown> = {}) => ({
  cdiVersion: '0.6.0',
  kind: 'vendor.com/gpu',
  devices: [
    { name: '0', containerEdits: { deviceNodes: [{ path: '/dev/vgpu0', hostPath: '/dev/zero', type: 'c', major: 1, minor: 5 }] } },
    { name: '1', containerEdits: { deviceNodes: [{ path: '/dev/null' }], env: ['ONE=1'] } },
  ],
  containerEdits: { env: ['VENDOR=yes'], mounts: [{ hostPath: '/opt/vendor//lib/', containerPath: '/usr/lib/vendor', options: ['ro', 'nosuid', 'bind'] }] },
  ...over,
});
const found = (d: unknown, file = F, priority = 0): FoundSpec => ({ spec: checkCdiSpec(d, file), priority });

const Spec = suite('CDI spec');

Spec('valid :: devices, spec-wide edits, paths normalised, versions 0.5 to 0.8', () => {
  const s = checkCdiSpec(doc(), F);
  assert.is(s.kind, 'vendor.com/gpu');
  assert.equal([...s.devices.keys()], ['0', '1']);
  assert.equal(s.devices.get('0')!.deviceNodes, [{ path: '/dev/vgpu0', hostPath: '/dev/zero', type: 'c', major: 1, minor: 5 }]);
  assert.equal(s.devices.get('1')!.deviceNodes, [{ path: '/dev/null', hostPath: '/dev/null' }]);
  assert.equal(s.edits.mounts, [{ hostPath: '/opt/vendor/lib', containerPath: '/usr/lib/vendor', ro: true }]);
  for (const v of ['0.5.0', '0.6.0', '0.7.0', '0.8.0']) assert.is(checkCdiSpec(doc({ cdiVersion: v }), F).version, v);
});

Spec('malformed :: each mistake names the file and where it is', () => {
  const cases: Array<[unknown, string]> = [
    [[], 'not a mapping (a CDI spec is a JSON or YAML object)'],
    [doc({ cdiVersion: '1.0.0' }), 'cdiVersion: "1.0.0" is not a version ctr reads (0.5.0 to 0.8.x)'],
    [doc({ cdiVersion: '0.4.0' }), 'cdiVersion: "0.4.0" is not a version ctr reads (0.5.0 to 0.8.x)'],
    [doc({ kind: 'gpu' }), 'kind: "gpu" is not VENDOR/CLASS'],
    [doc({ devices: [] }), 'devices: expected a list of at least one device'],
    [doc({ devices: [{ name: null, containerEdits: {} }] }), 'devices[0].name: expected a non-empty string, got null'],
    [doc({ devices: [{ name: 'a b', containerEdits: {} }] }), 'devices[0].name: "a b" is not a device name (letters, digits, _ . : -)'],
    [doc({ devices: [{ name: 'a', containerEdits: {} }, { name: 'a', containerEdits: {} }] }), 'devices[1].name: device "a" is defined twice'],
    [doc({ devices: [{ name: 'a' }] }), 'devices[0].containerEdits: missing'],
    [doc({ devices: [{ name: 'a', containerEdits: { deviceNodes: [{ path: 'dev/x' }] } }] }), 'devices[0].containerEdits.deviceNodes[0].path: "dev/x" is not an absolute path'],
    [doc({ devices: [{ name: 'a', containerEdits: { deviceNodes: [{ path: '/dev/../etc/shadow' }] } }] }), 'devices[0].containerEdits.deviceNodes[0].path: "/dev/../etc/shadow" has a ".." component'],
    [doc({ devices: [{ name: 'a', containerEdits: { deviceNodes: [{ path: '/dev/x', major: -1 }] } }] }), 'devices[0].containerEdits.deviceNodes[0].major: expected a whole number from 0 to 4095'],
    [doc({ devices: [{ name: 'a', containerEdits: { env: ['no equals'] } }] }), 'devices[0].containerEdits.env[0]: "no equals" is not NAME=VALUE'],
    [doc({ containerEdits: { mounts: [{ hostPath: '/a', containerPath: '/b', type: 'tmpfs' }] } }), 'containerEdits.mounts[0].type: a "tmpfs" mount: ctr adds bind mounts only'],
    [doc({ containerEdits: { hooks: [{ hookName: 'later', path: '/bin/true' }] } }), 'containerEdits.hooks[0].hookName: "later" is not one of prestart, createRuntime, createContainer, startContainer, poststart, poststop'],
    [doc({ containerEdits: { env: Array(1025).fill('A=1') } }), 'containerEdits.env: more than 1024 entries'],
    [doc({ containerEdits: { env: [`A=${'x'.repeat(5000)}`] } }), 'containerEdits.env[0]: longer than 4096 characters or holds a NUL'],
  ];
  for (const [d, why] of cases) assert.is(message(() => checkCdiSpec(d, F)), `CDI spec ${F}: ${why}`);
});

const Select = suite('--device');

Select('by name :: the device\'s edits, then its spec\'s own once', () => {
  const s = selectCdiDevices(['vendor.com/gpu=1', 'vendor.com/gpu=0'], [found(doc())], ['/etc/cdi']);
  assert.equal(s.devices, ['vendor.com/gpu=1', 'vendor.com/gpu=0']);
  assert.equal(s.edits.map((e) => e.env), [['ONE=1'], [], ['VENDOR=yes']]);
  assert.ok(s.edits.every((e) => e.file === F));
});

Select('=all :: every device of the kind, unless the spec defines one named all', () => {
  assert.equal(selectCdiDevices(['vendor.com/gpu=all'], [found(doc())], []).devices, ['vendor.com/gpu=0', 'vendor.com/gpu=1']);
  const own = doc({ devices: [{ name: 'all', containerEdits: { env: ['ALL=1'] } }, { name: '0', containerEdits: {} }] });
  assert.equal(selectCdiDevices(['vendor.com/gpu=all'], [found(own)], []).devices, ['vendor.com/gpu=all']);
});

Select('priority :: a later directory overrides; the same device twice in one is an error', () => {
  const late = doc({ devices: [{ name: '0', containerEdits: { env: ['LATE=1'] } }] });
  const s = selectCdiDevices(['vendor.com/gpu=0'], [found(doc()), found(late, '/var/run/cdi/v.json', 1)], []);
  assert.equal(s.edits[0].env, ['LATE=1']);
  assert.is(message(() => selectCdiDevices(['vendor.com/gpu=0'], [found(doc()), found(late, '/etc/cdi/other.json', 0)], [])),
    'CDI device vendor.com/gpu=0: defined both in /etc/cdi/vendor.yaml and in /etc/cdi/other.json');
});

Select('unknown :: one line listing the kinds found, or the directories when there are none', () => {
  const other = found(doc({ kind: 'acme.org/fpga', devices: [{ name: 'f0', containerEdits: {} }] }), '/etc/cdi/acme.json');
  assert.is(message(() => selectCdiDevices(['vendor.com/gpu=7'], [found(doc()), other], ['/etc/cdi'])),
    '--device vendor.com/gpu=7: no CDI spec defines it; kinds found: acme.org/fpga (f0); vendor.com/gpu (0, 1)');
  assert.is(message(() => selectCdiDevices(['nvidia.com/gpu=0'], [], ['/etc/cdi', '/var/run/cdi'])),
    '--device nvidia.com/gpu=0: no CDI spec defines it; no CDI specs found in /etc/cdi, /var/run/cdi');
  assert.is(message(() => selectCdiDevices(['gpu0'], [], [])), '--device gpu0: expected VENDOR/CLASS=NAME (e.g. nvidia.com/gpu=0, or =all)');
});

Select('hooks :: refused with a hint, or skipped when the site says so', () => {
  const hooked = doc({ containerEdits: { hooks: [{ hookName: 'createContainer', path: '/usr/bin/nvidia-ctk', args: ['nvidia-ctk', 'hook', 'update-ldcache'] }] } });
  const e = ctrError(() => selectCdiDevices(['vendor.com/gpu=0'], [found(hooked)], []));
  assert.is(e.message, `CDI device vendor.com/gpu (the spec's own edits): ${F} asks for a createContainer hook (/usr/bin/nvidia-ctk): ctr runs no CDI hooks (they expect a runtime running as root)`);
  assert.is(e.hint, 'set cdi-hooks = skip in the site config to use the device without its hooks');
  const s = selectCdiDevices(['vendor.com/gpu=0'], [found(hooked)], [], 'skip');
  assert.equal(s.skippedHooks, [`createContainer /usr/bin/nvidia-ctk (${F})`]);
  const gids = doc({ devices: [{ name: '0', containerEdits: { additionalGids: [44] } }] });
  assert.is(message(() => selectCdiDevices(['vendor.com/gpu=0'], [found(gids)], [])),
    `CDI device vendor.com/gpu=0: ${F} asks for additionalGids, which a rootless container can't have`);
});

const Edits = suite('CDI edits as binds');

Edits('contain :: every node bound from its host path; mounts keep ro; env in order', () => {
  const s = selectCdiDevices(['vendor.com/gpu=0', 'vendor.com/gpu=1'], [found(doc())], []);
  const e = cdiEdits(s, true, () => false);
  assert.equal(e.binds, [
    { src: '/dev/zero', dst: '/dev/vgpu0', ro: false },
    { src: '/dev/null', dst: '/dev/null', ro: false },
    { src: '/opt/vendor/lib', dst: '/usr/lib/vendor', ro: true },
  ]);
  assert.equal(e.env, ['ONE=1', 'VENDOR=yes']);
});

Edits("host /dev :: a node already at its path is left; a new name there needs --contain", () => {
  const s = selectCdiDevices(['vendor.com/gpu=1'], [found(doc())], []);
  assert.equal(cdiEdits(s, false, () => true).binds.map((b) => b.dst), ['/usr/lib/vendor']);
  const renamed = selectCdiDevices(['vendor.com/gpu=0'], [found(doc())], []);
  assert.equal(cdiEdits(renamed, false, (p) => p === '/dev/vgpu0').binds[0], { src: '/dev/zero', dst: '/dev/vgpu0', ro: false });
  const e = ctrError(() => cdiEdits(renamed, false, () => false));
  assert.is(e.message, `CDI device node /dev/vgpu0 (${F}): the container's /dev is the host's, which has no such file`);
  assert.is(e.hint, 'add --contain: the container then gets a /dev of its own');
});

Spec.run();
Select.run();
Edits.run();
