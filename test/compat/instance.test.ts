// Ported from Apptainer's e2e/instance/instance.go (their cases, our tests): instances
// start with the image's startscript, outlive the command that started them, take
// ctr exec instance://NAME, are listed (JSON too) and stopped, one or all; a dead one's
// entry is cleaned on sight. Nothing of an instance is left after it is stopped.
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TEST_USER, userIds, userTmp } from '../helpers/user.js';
import { apptainerBusyboxSif, ctrUser } from './fixture.js';

const ctx = { dir: '', sif: '', data: '' };
const Inst = suite('compat instance');

/** Processes of the test user that belong to instance NAME: its holder and FUSE server (their
 * command lines carry the instance's tag) and whatever runs in the keeper's session. */
async function processesOf(name: string, session?: number): Promise<string[]> {
  const r = await execa('pgrep', ['-u', TEST_USER, '-a', '-f', `instance\\.${name}\\b`], { reject: false });
  const s = session ? await execa('pgrep', ['-u', TEST_USER, '-a', '-s', String(session)], { reject: false }) : { stdout: '' };
  return [...r.stdout.split('\n'), ...s.stdout.split('\n')].filter(Boolean);
}

async function gone(name: string, session?: number): Promise<string[]> {
  for (let i = 0; i < 60; i++) {
    const left = await processesOf(name, session);
    if (left.length === 0) return [];
    await new Promise((r) => setTimeout(r, 100));
  }
  return processesOf(name, session);
}

const pidOf = async (name: string): Promise<number> =>
  JSON.parse((await ctrUser(['instance', 'list', '--json'], {}, ctx.dir)).stdout).instances.find((i: { instance: string }) => i.instance === name).pid;

Inst.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-inst-');
  ctx.data = path.join(ctx.dir, 'data');
  fs.mkdirSync(ctx.data);
  const { uid, gid } = await userIds();
  fs.chownSync(ctx.data, uid, gid);
  const def = path.join(ctx.dir, 'i.def');
  fs.writeFileSync(def, `Bootstrap: localimage\nFrom: ${await apptainerBusyboxSif()}\n\n%startscript\n    echo "started: $*" > /data/started.$APPTAINER_INSTANCE\n`);
  ctx.sif = path.join(ctx.dir, 'i.sif');
  const r = await ctrUser(['build', ctx.sif, def], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
});
Inst.after(async () => {
  await ctrUser(['instance', 'stop', '--all'], {}, ctx.dir);
  fs.rmSync(ctx.dir, { recursive: true, force: true });
});

Inst('e2e/instance/instance.go testBasicOptions :: -H and -e apply; exec instance:// sees the instance\'s files and APPTAINER_INSTANCE', async () => {
  const home = path.join(ctx.dir, 'home');
  fs.mkdirSync(home);
  fs.writeFileSync(path.join(home, 'hello'), 'world');
  const start = await ctrUser(['instance', 'start', '-B', `${ctx.data}:/data`, '-H', `${home}:/home/temp`, '-e', ctx.sif, 'testbasic', 'a', 'b'], {}, ctx.dir);
  assert.is(start.stderr, '');
  assert.is(start.code, 0);
  const cat = await ctrUser(['exec', 'instance://testbasic', 'cat', '/home/temp/hello'], {}, ctx.dir);
  assert.is(cat.stdout, 'world');
  const env = await ctrUser(['exec', 'instance://testbasic', 'sh', '-c', 'echo $APPTAINER_INSTANCE'], {}, ctx.dir);
  assert.is(env.stdout, 'testbasic\n');
  // The startscript ran, with the instance's arguments.
  for (let i = 0; i < 50 && !fs.existsSync(path.join(ctx.data, 'started.testbasic')); i++) await new Promise((r) => setTimeout(r, 100));
  assert.is(fs.readFileSync(path.join(ctx.data, 'started.testbasic'), 'utf8'), 'started: a b\n');
  // One container: the same mount namespace for every exec, and the keeper's.
  const ns1 = await ctrUser(['exec', 'instance://testbasic', 'readlink', '/proc/self/ns/mnt'], {}, ctx.dir);
  const ns2 = await ctrUser(['exec', 'instance://testbasic', 'readlink', '/proc/self/ns/mnt'], {}, ctx.dir);
  assert.is(ns1.stdout, ns2.stdout);
  const pid = await pidOf('testbasic');
  const stop = await ctrUser(['instance', 'stop', 'testbasic'], {}, ctx.dir);
  assert.is(stop.code, 0, stop.stderr);
  assert.equal(await gone('testbasic', pid), [], 'nothing of the instance is left');
});

Inst('e2e/instance/instance.go testContain :: -c -W DIR keeps the instance\'s /tmp in DIR/tmp', async () => {
  const w = path.join(ctx.dir, 'work');
  fs.mkdirSync(w);
  const { uid, gid } = await userIds();
  fs.chownSync(w, uid, gid);
  assert.is((await ctrUser(['instance', 'start', '-c', '-W', w, ctx.sif, 'testcontain'], {}, ctx.dir)).code, 0);
  assert.is((await ctrUser(['exec', 'instance://testcontain', 'touch', '/tmp/thegreattestfile'], {}, ctx.dir)).code, 0);
  assert.ok(fs.existsSync(path.join(w, 'tmp/thegreattestfile')));
  assert.is((await ctrUser(['instance', 'stop', 'testcontain'], {}, ctx.dir)).code, 0);
});

Inst('e2e/instance/instance.go testCreateManyInstances, testStopAll :: three instances listed (JSON too), stop --all', async () => {
  for (const n of ['echo1', 'echo2', 'echo3']) {
    const r = await ctrUser(['instance', 'start', ctx.sif, n], {}, ctx.dir);
    assert.is(r.code, 0, r.stderr);
  }
  const again = await ctrUser(['instance', 'start', ctx.sif, 'echo1'], {}, ctx.dir);
  assert.is(again.code, 255);
  assert.is(again.stderr, 'ctr: error: instance echo1: already running\nctr: hint: ctr instance stop echo1\n');
  const list = await ctrUser(['instance', 'list'], {}, ctx.dir);
  assert.equal(list.stdout.split('\n').slice(1).filter(Boolean).map((l) => l.split(/\s+/)[0]), ['echo1', 'echo2', 'echo3']);
  assert.match(list.stdout, /^INSTANCE NAME\s+PID\s+IMAGE\n/);
  const json = JSON.parse((await ctrUser(['instance', 'list', '--json'], {}, ctx.dir)).stdout);
  assert.equal(json.instances.map((i: { instance: string; img: string }) => [i.instance, i.img]), [['echo1', ctx.sif], ['echo2', ctx.sif], ['echo3', ctx.sif]]);
  const stop = await ctrUser(['instance', 'stop', '--all'], {}, ctx.dir);
  assert.is(stop.code, 0, stop.stderr);
  assert.is((await ctrUser(['instance', 'list'], {}, ctx.dir)).stdout, 'INSTANCE NAME    PID    IMAGE\n');
  for (const n of ['echo1', 'echo2', 'echo3']) assert.equal(await gone(n), [], n);
});

Inst('e2e/instance/instance.go testGhostInstance :: an instance that died is dropped from the list; exec says it is not running', async () => {
  assert.is((await ctrUser(['instance', 'start', ctx.sif, 'ghost'], {}, ctx.dir)).code, 0);
  const pid = await pidOf('ghost');
  process.kill(pid, 'SIGKILL');
  assert.is((await ctrUser(['instance', 'list'], {}, ctx.dir)).stdout, 'INSTANCE NAME    PID    IMAGE\n');
  assert.equal(await gone('ghost', pid), [], 'what the keeper left is ended when the entry is cleaned');
  const exec = await ctrUser(['exec', 'instance://ghost', 'true'], {}, ctx.dir);
  assert.is(exec.code, 255);
  assert.is(exec.stderr, 'ctr: error: instance ghost: not running\nctr: hint: ctr instance list\n');
});

Inst('instances outlive the shell that started them', async () => {
  const r = await execa('runuser', ['-u', TEST_USER, '--', 'sh', '-c', `cd ${ctx.dir} && exec ${process.execPath} ${path.resolve('dist/src/cli/main.js')} instance start ${ctx.sif} survivor`], { reject: false });
  assert.is(r.exitCode, 0, r.stderr);
  await new Promise((res) => setTimeout(res, 300));
  const e = await ctrUser(['exec', 'instance://survivor', 'echo', 'still here'], {}, ctx.dir);
  assert.is(e.stdout, 'still here\n');
  assert.is((await ctrUser(['instance', 'stop', 'survivor'], {}, ctx.dir)).code, 0);
  assert.equal(await gone('survivor'), []);
});

Inst.run();
