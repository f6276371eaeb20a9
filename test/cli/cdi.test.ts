// CDI devices through --device (issue 17), as the unprivileged test user: specs written
// here (JSON and YAML) name real host device nodes (/dev/null, /dev/zero, a loop device
// attached to a file made here), real mounts and variables, and reach the container;
// malformed specs, unknown devices and hooks fail with one line.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { chown, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { killUserProcesses, leftovers } from '../helpers/leftovers.js';
import { asUser, ctr, userIds, userTmp } from '../helpers/user.js';

const Cdi = suite('cdi --device');
let sif: string, d: string, conf: string, loop: string, loopOwner: { uid: number; gid: number } | undefined;
const LOOP_TEXT = 'loop device contents, written by the test\n';

Cdi.before(async () => {
  sif = await busyboxSif();
  d = await userTmp('ctr-cdi-');
  // A loop device over a file of ours, given to the test user: a block device that only
  // this test's bytes are behind.
  await writeFile(join(d, 'disk.img'), Buffer.concat([Buffer.from(LOOP_TEXT), Buffer.alloc(1 << 20)]));
  loop = (await execa('losetup', ['--find', '--show', join(d, 'disk.img')])).stdout.trim();
  const st = await stat(loop);
  loopOwner = { uid: st.uid, gid: st.gid };
  const { uid, gid } = await userIds();
  await chown(loop, uid, gid);
  await mkdir(join(d, 'cdi'));
  await mkdir(join(d, 'share'));
  await writeFile(join(d, 'share/readme'), 'from a CDI mount\n');
  await writeFile(join(d, 'cdi/example.yaml'), [
    'cdiVersion: 0.6.0',
    'kind: example.com/dev',
    'devices:',
    '  - name: nulls',
    '    containerEdits:',
    '      deviceNodes:',
    '        - {path: /dev/cdi-null, hostPath: /dev/null, type: c, major: 1, minor: 3}',
    '        - {path: /dev/cdi-zero, hostPath: /dev/zero}',
    '      env: [NULLS=two]',
    '  - name: disk',
    '    containerEdits:',
    `      deviceNodes: [{path: /dev/cdi-disk, hostPath: ${loop}, type: b}]`,
    'containerEdits:',
    '  env: ["EXAMPLE_VAR=set by the spec"]',
    '  mounts:',
    `    - {hostPath: ${d}/share, containerPath: /opt/example, options: [ro, nosuid, nodev, bind]}`,
    '',
  ].join('\n'));
  await writeFile(join(d, 'cdi/same.json'), JSON.stringify({
    cdiVersion: '0.8.0',
    kind: 'example.com/host',
    devices: [{ name: 'null', containerEdits: { deviceNodes: [{ path: '/dev/null' }], env: ['HOST_NULL=1'] } }],
    containerEdits: { mounts: [{ hostPath: `${d}/share`, containerPath: '/mnt/rw' }] },
  }));
  conf = join(d, 'ctr.conf');
  await writeFile(conf, `cdi-spec-dir = ${d}/cdi\n`);
  await execa('chmod', ['-R', 'a+rX', d]);
});
Cdi.after(async () => {
  if (loop) {
    await execa('losetup', ['-d', loop], { reject: false });
    if (loopOwner) await chown(loop, loopOwner.uid, loopOwner.gid);
  }
  await rm(d, { recursive: true, force: true });
});
Cdi.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

const env = () => ({ CTR_CONFIG: conf });

Cdi('--contain :: /dev/null, /dev/zero and a loop device under new names; a mount and the variables', async () => {
  const r = await ctr(['exec', '--contain', '--device', 'example.com/dev=nulls', '--device', 'example.com/dev=disk', sif, 'sh', '-c',
    'stat -c "%n %F %t:%T" /dev/cdi-null /dev/cdi-zero /dev/cdi-disk; echo gone > /dev/cdi-null && echo wrote null;' +
    ' head -c 4 /dev/cdi-zero | wc -c; head -n 1 /dev/cdi-disk; cat /opt/example/readme; echo "$NULLS / $EXAMPLE_VAR";' +
    ' touch /opt/example/x 2>/dev/null || echo read-only'], { cwd: '/', env: env() });
  assert.is(r.stderr, '');
  assert.is(r.stdout, [
    '/dev/cdi-null character special file 1:3',
    '/dev/cdi-zero character special file 1:5',
    '/dev/cdi-disk block special file 7:' + Number(/\d+$/.exec(loop)![0]).toString(16),
    'wrote null', '4', LOOP_TEXT.trim(), 'from a CDI mount', 'two / set by the spec', 'read-only', ''].join('\n'));
  assert.is(r.exitCode, 0);
});

Cdi("host /dev :: a node at its own path is the host's; =all; a JSON spec's read-write mount", async () => {
  const r = await ctr(['exec', '--device', 'example.com/host=all', sif, 'sh', '-c',
    'stat -c "%F %t:%T" /dev/null; echo "$HOST_NULL"; cat /mnt/rw/readme'], { cwd: '/', env: env() });
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'character special file 1:3\n1\nfrom a CDI mount\n');
});

Cdi('plan file :: the devices are in the plan; it launches without Node', async () => {
  const plan = join(d, 'dev.plan');
  const p = await ctr(['plan', '-o', plan, '--contain', '--device', 'example.com/dev=disk', sif, 'head', '-n', '1', '/dev/cdi-disk'], { cwd: '/', env: env() });
  assert.is(p.stderr, '');
  const r = await asUser(plan, [], { cwd: '/' });
  assert.is(r.stderr, '');
  assert.is(r.stdout, LOOP_TEXT);
});

Cdi('unknown device :: one line listing the kinds found', async () => {
  const r = await ctr(['exec', '--device', 'nvidia.com/gpu=0', sif, 'true'], { cwd: '/', env: env() });
  assert.is(r.stderr, 'ctr: error: --device nvidia.com/gpu=0: no CDI spec defines it; kinds found: example.com/dev (disk, nulls); example.com/host (null)\n');
  assert.is(r.exitCode, 255);
});

Cdi('malformed specs :: the file and the problem, one line', async () => {
  const bad = join(d, 'bad');
  await mkdir(bad);
  const cases: Array<[string, string, string]> = [
    ['broken.yaml', 'cdiVersion: 0.6.0\nkind: [unclosed\n', 'not valid YAML: '],
    ['old.json', JSON.stringify({ cdiVersion: '0.3.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: {} }] }), 'cdiVersion: "0.3.0" is not a version ctr reads (0.5.0 to 0.8.x)'],
    ['rel.json', JSON.stringify({ cdiVersion: '0.5.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: { deviceNodes: [{ path: 'dev/x' }] } }] }), 'devices[0].containerEdits.deviceNodes[0].path: "dev/x" is not an absolute path'],
    ['laughs.yaml', ['cdiVersion: 0.6.0', 'kind: a.com/b', 'a: &a [l, l, l, l, l, l, l, l, l]',
      ...'bcdefg'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefg'[i]}`).join(', ')}]`),
      'devices: [{name: x, containerEdits: {}}]', ''].join('\n'), 'not valid YAML: Excessive alias count indicates a resource exhaustion attack'],
    ['trunc.json', '{"cdiVersion": "0.5.0", "kind": ', 'not valid JSON: '],
    ['notdev.json', JSON.stringify({ cdiVersion: '0.5.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: { deviceNodes: [{ path: '/dev/x', hostPath: '/etc/passwd' }] } }] }), 'device node /etc/passwd: not a device node on this host'],
    ['wrongnum.json', JSON.stringify({ cdiVersion: '0.5.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: { deviceNodes: [{ path: '/dev/null', major: 1, minor: 5 }] } }] }), 'device node /dev/null: the spec says 1:5, the host\'s is 1:3'],
  ];
  for (const [name, text, why] of cases) {
    await rm(bad, { recursive: true, force: true });
    await mkdir(bad);
    await writeFile(join(bad, name), text);
    await writeFile(join(bad, 'ctr.conf'), `cdi-spec-dir = ${bad}\n`);
    await execa('chmod', ['-R', 'a+rX', bad]);
    const r = await ctr(['exec', '--device', 'a.com/b=x', sif, 'true'], { cwd: '/', env: { CTR_CONFIG: join(bad, 'ctr.conf') } });
    const line = String(r.stderr);
    assert.ok(line.startsWith(`ctr: error: CDI spec ${bad}/${name}: ${why}`), `${name}: ${line}`);
    assert.is(line.split('\n').length, 2, `${name}: one line: ${line}`);
    assert.is(r.exitCode, 255, name);
  }
  // A spec anyone could have written decides nothing.
  await writeFile(join(bad, 'open.json'), JSON.stringify({ cdiVersion: '0.5.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: {} }] }));
  await execa('chmod', ['666', join(bad, 'open.json')]);
  const r = await ctr(['exec', '--device', 'a.com/b=x', sif, 'true'], { cwd: '/', env: { CTR_CONFIG: join(bad, 'ctr.conf') } });
  assert.ok(String(r.stderr).startsWith(`ctr: error: CDI spec ${bad}/open.json: writable by every user\nctr: hint: `), String(r.stderr));
});

Cdi('hooks :: refused with a hint; cdi-hooks = skip runs the device without them', async () => {
  const hooked = join(d, 'hooked');
  await mkdir(hooked);
  await writeFile(join(hooked, 'h.json'), JSON.stringify({
    cdiVersion: '0.5.0', kind: 'a.com/b',
    devices: [{ name: 'x', containerEdits: { deviceNodes: [{ path: '/dev/zero' }], hooks: [{ hookName: 'createContainer', path: '/usr/bin/nvidia-ctk', args: ['nvidia-ctk', 'hook', 'update-ldcache'] }] } }],
  }));
  await writeFile(join(hooked, 'ctr.conf'), `cdi-spec-dir = ${hooked}\n`);
  await writeFile(join(hooked, 'skip.conf'), `cdi-spec-dir = ${hooked}\ncdi-hooks = skip\n`);
  await execa('chmod', ['-R', 'a+rX', hooked]);
  const r = await ctr(['exec', '--device', 'a.com/b=x', sif, 'true'], { cwd: '/', env: { CTR_CONFIG: join(hooked, 'ctr.conf') } });
  assert.is(r.stderr, `ctr: error: CDI device a.com/b=x: ${hooked}/h.json asks for a createContainer hook (/usr/bin/nvidia-ctk): ctr runs no CDI hooks (they expect a runtime running as root)\n` +
    'ctr: hint: set cdi-hooks = skip in the site config to use the device without its hooks\n');
  assert.is(r.exitCode, 255);
  const s = await ctr(['exec', '--device', 'a.com/b=x', sif, 'stat', '-c', '%t:%T', '/dev/zero'], { cwd: '/', env: { CTR_CONFIG: join(hooked, 'skip.conf') } });
  assert.is(s.stderr, '');
  assert.is(s.stdout, '1:5\n');
});

Cdi.run();
