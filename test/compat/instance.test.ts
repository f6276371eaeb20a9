// Ported from Apptainer's e2e/instance/instance.go and e2e/cgroups/cgroups.go (their cases,
// our tests): instances start with the image's startscript (instance run: the runscript),
// outlive the command that started them, have a PID namespace of their own with an init
// as PID 1, take exec/run/shell instance://NAME with the exec's own environment and
// working directory, are listed (JSON too), give stats, keep their output in logs, and are
// stopped, one or all. Nothing of an instance is left running after it is stopped or its
// init or holder is killed.
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { delegateCgroups, leftoverCgroups, type Delegation } from '../helpers/cgroups.js';
import { TEST_USER, userIds, userTmp } from '../helpers/user.js';
import { apptainerBusyboxSif, ctrUser } from './fixture.js';

const ctx = { dir: '', sif: '', data: '' };
/** e2e/cgroups/cgroups.go instanceStats needs a cgroup delegated to the user, as a site makes it. */
let site: Delegation | undefined;
const Inst = suite('compat instance');

/** The test user's processes that are running (zombies, which the node's init reaps in its
 * own time, hold nothing). Only this suite runs as the test user at a time. */
async function userProcesses(): Promise<string[]> {
  const r = await execa('ps', ['-u', TEST_USER, '-o', 'stat=,pid=,args='], { reject: false });
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('Z'));
}

async function nothingLeft(): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const left = await userProcesses();
    if (left.length === 0) return [];
    await new Promise((r) => setTimeout(r, 50));
  }
  return userProcesses();
}

interface Listed { instance: string; pid: number; img: string; logOutPath: string; logErrPath: string }
const listed = async (): Promise<Listed[]> => JSON.parse((await ctrUser(['instance', 'list', '--json'], {}, ctx.dir)).stdout).instances;
const pidOf = async (name: string): Promise<number> => (await listed()).find((i) => i.instance === name)!.pid;

async function waitFor(file: string): Promise<void> {
  for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
}

async function stop(name: string): Promise<void> {
  const r = await ctrUser(['instance', 'stop', name], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stderr, '');
}

Inst.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-inst-');
  ctx.data = path.join(ctx.dir, 'data');
  fs.mkdirSync(ctx.data);
  const { uid, gid } = await userIds();
  fs.chownSync(ctx.data, uid, gid);
  const def = path.join(ctx.dir, 'i.def');
  fs.writeFileSync(def, `Bootstrap: localimage\nFrom: ${await apptainerBusyboxSif()}\n\n%startscript\n    echo "started: $*" > /data/started.$APPTAINER_INSTANCE\n    echo "to the log: $*"\n    echo "to the error log" >&2\n`);
  ctx.sif = path.join(ctx.dir, 'i.sif');
  const r = await ctrUser(['build', ctx.sif, def], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  assert.equal(await nothingLeft(), [], 'the test user runs nothing before the suite');
  site = await delegateCgroups(ctx.dir);
});
Inst.after(async () => {
  await ctrUser(['instance', 'stop', '--all'], {}, ctx.dir);
  await site?.undo();
  fs.rmSync(ctx.dir, { recursive: true, force: true });
});
// uvu does not report a hook's failure: what a case leaves running is noted here (and
// stopped), and the last case fails if anything was.
const leftBehind: string[] = [];
Inst.after.each(async () => {
  const left = await nothingLeft();
  if (left.length) {
    leftBehind.push(...left);
    await ctrUser(['instance', 'stop', '-F', '--all'], {}, ctx.dir);
  }
});

for (const verb of ['start', 'run']) {
  Inst(`e2e/instance/instance.go testBasicOptions :: instance ${verb} -H --hostname -e; exec instance:// sees the home, host name, APPTAINER_INSTANCE`, async () => {
    const home = path.join(ctx.dir, `home-${verb}`);
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, 'hello'), 'world');
    const args = verb === 'start' ? ['a', 'b'] : ['sleep', '1000'];
    const start = await ctrUser(['instance', verb, '-B', `${ctx.data}:/data`, '-H', `${home}:/home/temp`, '--hostname', 'echoserver99', '-e', ctx.sif, 'testbasic', ...args], {}, ctx.dir);
    assert.is(start.stderr, '');
    assert.is(start.code, 0);
    assert.is((await ctrUser(['exec', 'instance://testbasic', 'cat', '/home/temp/hello'], {}, ctx.dir)).stdout, 'world');
    assert.is((await ctrUser(['exec', 'instance://testbasic', 'hostname'], {}, ctx.dir)).stdout, 'echoserver99\n');
    assert.is((await ctrUser(['exec', 'instance://testbasic', 'sh', '-c', 'echo $APPTAINER_INSTANCE'], {}, ctx.dir)).stdout, 'testbasic\n');
    if (verb === 'start') {
      // The startscript ran, with the instance's arguments.
      await waitFor(path.join(ctx.data, 'started.testbasic'));
      assert.is(fs.readFileSync(path.join(ctx.data, 'started.testbasic'), 'utf8'), 'started: a b\n');
      fs.rmSync(path.join(ctx.data, 'started.testbasic'));
    } else {
      // The runscript ran the arguments, and not the startscript.
      const ps = await ctrUser(['exec', 'instance://testbasic', 'ps', '-o', 'args'], {}, ctx.dir);
      assert.match(ps.stdout, /sleep 1000/);
      assert.not.ok(fs.existsSync(path.join(ctx.data, 'started.testbasic')));
    }
    // One container: the same mount namespace for every exec.
    const ns1 = await ctrUser(['exec', 'instance://testbasic', 'readlink', '/proc/self/ns/mnt'], {}, ctx.dir);
    const ns2 = await ctrUser(['exec', 'instance://testbasic', 'readlink', '/proc/self/ns/mnt'], {}, ctx.dir);
    assert.is(ns1.stdout, ns2.stdout);
    await stop('testbasic');
  });

  Inst(`e2e/instance/instance.go testContain :: instance ${verb} -c -W DIR keeps the instance's /tmp in DIR/tmp`, async () => {
    const w = path.join(ctx.dir, `work-${verb}`);
    fs.mkdirSync(w);
    const { uid, gid } = await userIds();
    fs.chownSync(w, uid, gid);
    assert.is((await ctrUser(['instance', verb, '-c', '-W', w, ctx.sif, 'testcontain', ...(verb === 'run' ? ['true'] : [])], {}, ctx.dir)).code, 0);
    assert.is((await ctrUser(['exec', 'instance://testcontain', 'touch', '/tmp/thegreattestfile'], {}, ctx.dir)).code, 0);
    assert.ok(fs.existsSync(path.join(w, 'tmp/thegreattestfile')));
    await stop('testcontain');
  });
}

Inst('e2e/instance/instance.go testInstanceRun :: instance run executes the runscript, its output in the instance\'s .out log, and the instance stays', async () => {
  const r = await ctrUser(['instance', 'run', ctx.sif, 'testtrue', 'sh', '-c', 'echo "Running command: true"'], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  const [i] = await listed();
  assert.is(i.instance, 'testtrue');
  const { home } = await userIds();
  const host = (await execa('hostname')).stdout.trim();
  assert.is(i.logOutPath, path.join(home, '.local/state/ctr/instances/logs', host, TEST_USER, 'testtrue.out'));
  assert.is(i.logErrPath, i.logOutPath.replace(/\.out$/, '.err'));
  for (let n = 0; n < 100 && !fs.readFileSync(i.logOutPath, 'utf8'); n++) await new Promise((res) => setTimeout(res, 50));
  assert.is(fs.readFileSync(i.logOutPath, 'utf8'), 'Running command: true\n');
  assert.is((await ctrUser(['exec', 'instance://testtrue', 'true'], {}, ctx.dir)).code, 0, 'the runscript ended; the instance did not');
  await stop('testtrue');
});

Inst('e2e/instance/instance.go testCreateManyInstances, testStopAll :: three instances listed (JSON too), stop --all', async () => {
  for (const n of ['echo1', 'echo2', 'echo3']) {
    const r = await ctrUser(['instance', 'start', ctx.sif, n], {}, ctx.dir);
    assert.is(r.code, 0, r.stderr);
  }
  const list = await ctrUser(['instance', 'list'], {}, ctx.dir);
  assert.equal(list.stdout.split('\n').slice(1).filter(Boolean).map((l) => l.split(/\s+/)[0]), ['echo1', 'echo2', 'echo3']);
  assert.match(list.stdout, /^INSTANCE NAME\s+PID\s+IMAGE\n/);
  assert.equal((await listed()).map((i) => [i.instance, i.img]), [['echo1', ctx.sif], ['echo2', ctx.sif], ['echo3', ctx.sif]]);
  const stopAll = await ctrUser(['instance', 'stop', '--all'], {}, ctx.dir);
  assert.is(stopAll.code, 0, stopAll.stderr);
  assert.is((await ctrUser(['instance', 'list'], {}, ctx.dir)).stdout, 'INSTANCE NAME    PID    IMAGE\n');
});

Inst('e2e/instance/instance.go testGhostInstance :: a second start of a name fails; its holder (the "master process") killed with -9, the name starts again', async () => {
  assert.is((await ctrUser(['instance', 'start', ctx.sif, 'ghost'], {}, ctx.dir)).code, 0);
  const again = await ctrUser(['instance', 'start', ctx.sif, 'ghost'], {}, ctx.dir);
  assert.is(again.code, 255);
  assert.is(again.stderr, 'ctr: error: instance ghost: already running\nctr: hint: ctr instance stop ghost\n');
  const init = await pidOf('ghost');
  const ppid = Number(fs.readFileSync(`/proc/${init}/stat`, 'latin1').split(') ')[1].split(' ')[1]);
  assert.match(fs.readFileSync(`/proc/${ppid}/comm`, 'utf8'), /^ctr-holder/);
  process.kill(ppid, 'SIGKILL');
  assert.equal(await nothingLeft(), [], 'the holder killed: the init and everything in the instance go with it');
  const exec = await ctrUser(['exec', 'instance://ghost', 'true'], {}, ctx.dir);
  assert.is(exec.code, 255);
  assert.is(exec.stderr, 'ctr: error: instance ghost: not running\nctr: hint: ctr instance list\n');
  const restart = await ctrUser(['instance', 'start', ctx.sif, 'ghost'], {}, ctx.dir);
  assert.is(restart.code, 0, restart.stderr);
  await stop('ghost');
});

Inst('two starts of one name at once :: one starts it, the other says it is already running', async () => {
  const both = await Promise.all([0, 1].map(() => ctrUser(['instance', 'start', ctx.sif, 'race'], {}, ctx.dir)));
  assert.equal(both.map((r) => r.code).sort(), [0, 255], both.map((r) => r.stderr).join(''));
  assert.is(both.find((r) => r.code === 255)!.stderr, 'ctr: error: instance race: already running\nctr: hint: ctr instance stop race\n');
  assert.equal((await listed()).map((i) => i.instance), ['race']);
  await stop('race');
  // At once again after the stop: the holder that is leaving is not taken for a running one.
  assert.is((await ctrUser(['instance', 'start', ctx.sif, 'race'], {}, ctx.dir)).code, 0);
  await stop('race');
});

Inst('kill -9 of the instance\'s init :: everything in it ends, and the entry is dropped', async () => {
  assert.is((await ctrUser(['instance', 'start', '--fakeroot', ctx.sif, 'killed'], {}, ctx.dir)).code, 0);
  assert.is((await ctrUser(['exec', 'instance://killed', 'sh', '-c', 'sleep 1000 >/dev/null 2>&1 & sleep 1000 >/dev/null 2>&1 & id -u'], {}, ctx.dir)).stdout, '0\n');
  process.kill(await pidOf('killed'), 'SIGKILL');
  assert.equal(await nothingLeft(), []);
  assert.is((await ctrUser(['instance', 'list'], {}, ctx.dir)).stdout, 'INSTANCE NAME    PID    IMAGE\n');
});

Inst('apptainer docs "instance start" example :: ps in the instance shows its init as PID 1 and only the instance\'s processes', async () => {
  assert.is((await ctrUser(['instance', 'start', ctx.sif, 'pidns'], {}, ctx.dir)).code, 0);
  assert.is((await ctrUser(['exec', 'instance://pidns', 'sh', '-c', 'sleep 1000 >/dev/null 2>&1 & echo ok'], {}, ctx.dir)).stdout, 'ok\n');
  const ps = await ctrUser(['exec', 'instance://pidns', 'ps', '-o', 'pid,comm'], {}, ctx.dir);
  const rows = ps.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
  assert.equal(rows[0], ['1', 'ctr-init']);
  // init, the sleep another exec left, and this ps: nothing of the host, no launcher.
  assert.equal(rows.map((r) => r[1]).sort(), ['ctr-init', 'ps', 'sleep']);
  assert.is((await ctrUser(['exec', 'instance://pidns', 'sh', '-c', 'echo $PPID'], {}, ctx.dir)).stdout, '0\n', 'its parent, the launcher, is outside');
  // The instance's init is the one the host lists.
  const init = await pidOf('pidns');
  assert.match(fs.readFileSync(`/proc/${init}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m);
  await stop('pidns');
});

Inst('exec instance:// flags :: --env, --cwd, --cleanenv apply to the exec; run and shell instance:// work; flags that change the container are refused naming the flag', async () => {
  assert.is((await ctrUser(['instance', 'start', '--env', 'FROM_START=1', ctx.sif, 'flags'], {}, ctx.dir)).code, 0);
  const plain = await ctrUser(['exec', 'instance://flags', 'sh', '-c', 'echo "$FROM_START $FOO $(pwd)"'], {}, ctx.dir);
  assert.is(plain.stdout, `  ${ctx.dir}\n`, 'the exec\'s environment and working directory, not the start\'s');
  const withFlags = await ctrUser(['exec', '--env', 'FOO=bar', '--cwd', '/tmp', 'instance://flags', 'sh', '-c', 'echo "$FOO $(pwd) $APPTAINER_INSTANCE"'], {}, ctx.dir);
  assert.is(withFlags.stdout, 'bar /tmp flags\n', withFlags.stderr);
  const clean = await ctrUser(['exec', '--cleanenv', 'instance://flags', 'sh', '-c', 'echo ${TEST_HOST_VAR:-unset}'], { TEST_HOST_VAR: 'x' }, ctx.dir);
  assert.is(clean.stdout, 'unset\n');
  const kept = await ctrUser(['exec', 'instance://flags', 'sh', '-c', 'echo ${TEST_HOST_VAR:-unset}'], { TEST_HOST_VAR: 'x' }, ctx.dir);
  assert.is(kept.stdout, 'x\n');
  assert.is((await ctrUser(['run', 'instance://flags', 'echo', 'from the runscript'], {}, ctx.dir)).stdout, 'from the runscript\n');
  const shell = await execa('runuser', ['-u', TEST_USER, '--', process.execPath, path.resolve('dist/src/cli/main.js'), 'shell', 'instance://flags'],
    { input: 'echo in the shell $APPTAINER_INSTANCE\n', cwd: ctx.dir, reject: false });
  assert.is(shell.stdout, 'in the shell flags');
  for (const [flag, name] of [['-B', 'bind'], ['--fakeroot', 'fakeroot'], ['--memory', 'memory'], ['-c', 'contain']]) {
    const r = await ctrUser(['exec', flag, ...(flag === '-B' ? ['/tmp:/x'] : flag === '--memory' ? ['1G'] : []), 'instance://flags', 'true'], {}, ctx.dir);
    assert.is(r.code, 255);
    assert.is(r.stderr.split('\n')[0], `ctr: error: --${name} with instance://flags: it would change the container, which the instance already has`);
  }
  await stop('flags');
});

Inst('instance logs :: the start\'s stdout and stderr go to NAME.out and NAME.err, kept after stop, new at the next start', async () => {
  assert.is((await ctrUser(['instance', 'start', '-B', `${ctx.data}:/data`, ctx.sif, 'logged', 'x'], {}, ctx.dir)).code, 0);
  const [i] = await listed();
  for (let n = 0; n < 100 && !fs.readFileSync(i.logErrPath, 'utf8'); n++) await new Promise((r) => setTimeout(r, 50));
  const withLogs = await ctrUser(['instance', 'list', '--logs'], {}, ctx.dir);
  assert.is(withLogs.stdout.split('\n')[1].split(/\s+/)[2], i.logErrPath);
  assert.is(withLogs.stdout.split('\n')[2].trim(), i.logOutPath);
  await stop('logged');
  assert.is(fs.readFileSync(i.logOutPath, 'utf8'), 'to the log: x\n');
  assert.is(fs.readFileSync(i.logErrPath, 'utf8'), 'to the error log\n');
  assert.is((fs.statSync(i.logOutPath).mode & 0o777), 0o600);
});

Inst('instance stop -s, -t, -F :: the signal reaches the instance\'s processes; one that ignores it is killed after the timeout', async () => {
  assert.is((await ctrUser(['instance', 'start', '-B', `${ctx.data}:/data`, ctx.sif, 'sig'], {}, ctx.dir)).code, 0);
  await ctrUser(['exec', 'instance://sig', 'sh', '-c', "sh -c \"trap 'echo got USR1 > /data/usr1; exit 0' USR1; while :; do sleep 0.1; done\" </dev/null >/dev/null 2>&1 &"], {}, ctx.dir);
  await new Promise((r) => setTimeout(r, 300));
  assert.is((await ctrUser(['instance', 'stop', '-s', 'USR1', 'sig'], {}, ctx.dir)).code, 0);
  await waitFor(path.join(ctx.data, 'usr1'));
  assert.is(fs.readFileSync(path.join(ctx.data, 'usr1'), 'utf8'), 'got USR1\n');
  assert.is((await ctrUser(['instance', 'start', ctx.sif, 'stubborn'], {}, ctx.dir)).code, 0);
  await ctrUser(['exec', 'instance://stubborn', 'sh', '-c', "sh -c \"trap '' TERM; while :; do sleep 0.1; done\" </dev/null >/dev/null 2>&1 &"], {}, ctx.dir);
  await new Promise((r) => setTimeout(r, 300));
  const t = await ctrUser(['instance', 'stop', '-t', '1', 'stubborn'], {}, ctx.dir);
  assert.is(t.code, 0);
  assert.is(t.stderr, 'ctr: note: instance stubborn still running 1 s after the signal: killed\n');
  assert.is((await ctrUser(['instance', 'start', ctx.sif, 'forced'], {}, ctx.dir)).code, 0);
  assert.is((await ctrUser(['instance', 'stop', '-F', 'forced'], {}, ctx.dir)).code, 0);
});

Inst('instance stats :: the instance\'s own processes (PID namespace), table and JSON', async () => {
  assert.is((await ctrUser(['instance', 'start', ctx.sif, 'stats'], {}, ctx.dir)).code, 0);
  await ctrUser(['exec', 'instance://stats', 'sh', '-c', 'sleep 1000 >/dev/null 2>&1 & sleep 1000 >/dev/null 2>&1 &'], {}, ctx.dir);
  const table = await ctrUser(['instance', 'stats', 'stats'], {}, ctx.dir);
  assert.is(table.code, 0, table.stderr);
  const [head, row] = table.stdout.trim().split('\n');
  assert.match(head, /^INSTANCE NAME\s+CPU USAGE\s+MEM USAGE \/ LIMIT\s+MEM %\s+BLOCK I\/O\s+PIDS$/);
  assert.match(row, /^stats\s+\d+\.\d\d%\s+[\d.]+(B|KiB|MiB) \/ [\d.]+GiB\s+\d+\.\d\d%\s+[\d.]+\w+ \/ [\d.]+\w+\s+3$/, 'init and two sleeps');
  const json = JSON.parse((await ctrUser(['instance', 'stats', '--json', 'stats'], {}, ctx.dir)).stdout);
  assert.is(json.pids_stats.current, 3);
  assert.ok(json.memory_stats.usage.usage > 0);
  const missing = await ctrUser(['instance', 'stats', 'nosuch'], {}, ctx.dir);
  assert.is(missing.stderr, 'ctr: error: instance nosuch: not running\nctr: hint: ctr instance list\n');
  await stop('stats');
});

Inst('instances outlive the shell that started them', async () => {
  const r = await execa('runuser', ['-u', TEST_USER, '--', 'sh', '-c', `cd ${ctx.dir} && exec ${process.execPath} ${path.resolve('dist/src/cli/main.js')} instance start ${ctx.sif} survivor`], { reject: false });
  assert.is(r.exitCode, 0, r.stderr);
  await new Promise((res) => setTimeout(res, 300));
  assert.is((await ctrUser(['exec', 'instance://survivor', 'echo', 'still here'], {}, ctx.dir)).stdout, 'still here\n');
  await stop('survivor');
});

Inst('e2e/cgroups/cgroups.go instanceStats :: basic stats create: --memory 250M, the limit shown; the cgroups go with the instance', async () => {
  const env = { CTR_CONFIG: site!.config };
  const r = await ctrUser(['instance', 'start', '--memory', '250M', ctx.sif, 'cgstats'], env, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  assert.is((await leftoverCgroups(site!)).length, 1, 'the instance\'s memory cgroup');
  const stats = await ctrUser(['instance', 'stats', 'cgstats'], env, ctx.dir);
  for (const h of ['INSTANCE NAME', 'CPU USAGE', 'MEM USAGE / LIMIT', 'MEM %', 'BLOCK I/O', 'PIDS', 'cgstats', '/ 250MiB']) assert.ok(stats.stdout.includes(h), `${h} in ${stats.stdout}`);
  await stop('cgstats');
  assert.equal(await nothingLeft(), []);
  for (let i = 0; i < 50 && (await leftoverCgroups(site!)).length; i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal(await leftoverCgroups(site!), [], 'the instance\'s cgroups go with it');
});

Inst('nothing of any instance was left running after any case (stop, kill -9 of init or holder)', () => {
  assert.equal(leftBehind, []);
});

Inst.run();
