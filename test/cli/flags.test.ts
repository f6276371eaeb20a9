// Every launch flag, for real: ctr as the unprivileged test user on the siftool-made SIF.
import { LAUNCHER } from '../helpers/paths.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { chown, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { TEST_USER, asUser, ctr, userIds, userTmp } from '../helpers/user.js';
import { DEFAULT_PATH } from '../../src/plan/env.js';

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** A directory outside /tmp and /var/tmp (which are bound anyway), owned by the user. */
async function userDirOutsideTmp(): Promise<string> {
  const dir = await mkdtemp('/ctr-flags-');
  const { uid, gid } = await userIds();
  await chown(dir, uid, gid);
  return dir;
}

const Flags = suite('ctr launch flags');
let sif: string, uid: number, gid: number, home: string;
const cleanup: string[] = [];

Flags.before(async () => {
  sif = await busyboxSif();
  ({ uid, gid, home } = await userIds());
});
Flags.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});
Flags.after(async () => {
  for (const d of cleanup) await rm(d, { recursive: true, force: true });
});

Flags('bind :: -B repeats and takes comma lists; ro is read-only, rw writes land on the host', async () => {
  const [a, b, c] = [await userDirOutsideTmp(), await userDirOutsideTmp(), await userDirOutsideTmp()];
  cleanup.push(a, b, c);
  await writeFile(join(a, 'in.txt'), 'from a\n');
  const r = await ctr(['exec', '-B', `${a}:/mnt/a:ro,${b}:/mnt/b`, '--bind', `${c}`, sif, 'sh', '-c',
    `cat /mnt/a/in.txt; touch /mnt/a/x; echo b > /mnt/b/out; echo c > ${c}/out:rw`], { cwd: '/' });
  assert.is(r.stderr, 'touch: /mnt/a/x: Read-only file system\n');
  assert.is(r.stdout, 'from a\n');
  assert.is(r.exitCode, 0);
  assert.is(await readFile(join(b, 'out'), 'utf8'), 'b\n');
  assert.is(await readFile(join(c, 'out:rw'), 'utf8'), 'c\n');
  assert.is((await stat(join(b, 'out'))).uid, uid, 'written as the user');
});

Flags('bind :: SRC:DST:rw is writable, ro makes even the owner unable to write', async () => {
  const a = await userDirOutsideTmp();
  cleanup.push(a);
  const r = await ctr(['exec', '-B', `${a}:/mnt/rw:rw`, '-B', `${a}:/mnt/ro:ro`, sif, 'sh', '-c',
    'echo w > /mnt/rw/f && cat /mnt/ro/f && echo no > /mnt/ro/f'], { cwd: '/' });
  assert.is(r.stdout, 'w\n');
  assert.is(r.stderr, "sh: can't create /mnt/ro/f: Read-only file system\n");
  assert.is(r.exitCode, 1);
  assert.is(await readFile(join(a, 'f'), 'utf8'), 'w\n');
});

Flags('writable-tmpfs :: with fakeroot /etc is writable inside, gone next run, image bytes unchanged', async () => {
  const before = await sha256(sif);
  const r = await ctr(['exec', '--fakeroot', '--writable-tmpfs', sif, 'sh', '-c',
    'id -u; echo new > /etc/new-file; echo more >> /etc/image-release; cat /etc/new-file /etc/image-release']);
  assert.is(r.stderr, '');
  assert.is(r.stdout, '0\nnew\nbusybox test image\nmore\n');
  const again = await ctr(['exec', sif, 'sh', '-c', 'cat /etc/image-release; test -e /etc/new-file || echo gone']);
  assert.is(again.stdout, 'busybox test image\ngone\n');
  assert.is(await sha256(sif), before);
});

Flags('cleanenv :: -e drops host variables, keeps TERM', async () => {
  const r = await ctr(['exec', '-e', sif, 'sh', '-c', 'echo "${HOST_VAR-unset}|$TERM|$HOME|$IMAGE_VAR"'],
    { env: { HOST_VAR: 'from host', TERM: 'xterm-test' } });
  assert.is(r.stdout, `unset|xterm-test|${home}|from the image\n`);
  const long = await ctr(['exec', '--cleanenv', sif, 'sh', '-c', 'echo "${HOST_VAR-unset}"'], { env: { HOST_VAR: 'x' } });
  assert.is(long.stdout, 'unset\n');
});

Flags('env :: host variables pass through, PATH and LD_LIBRARY_PATH do not', async () => {
  const r = await ctr(['exec', sif, 'sh', '-c', 'echo "$HOST_VAR|$PATH|${LD_LIBRARY_PATH-unset}"'],
    { env: { HOST_VAR: 'from host', PATH: `/host/bin:${process.env.PATH}`, LD_LIBRARY_PATH: '/host/lib' } });
  assert.is(r.stdout, `from host|/bin:${DEFAULT_PATH}|unset\n`);
});

Flags('env :: --env overrides the image env script, repeats and comma lists', async () => {
  const r = await ctr(['exec', '--env', 'OVERRIDDEN=cli,LIST=a,b', '--env', 'SECOND=2', sif, 'sh', '-c',
    'echo "$OVERRIDDEN|$LIST|$SECOND|$IMAGE_VAR"']);
  assert.is(r.stdout, 'cli|a,b|2|from the image\n');
});

Flags('env :: --env-file lines override, read as shell words, evaluated in the container as Apptainer does; --env comes after it', async () => {
  const dir = await userTmp();
  const file = join(dir, 'vars.env');
  await writeFile(file, '# settings\nexport OVERRIDDEN=file\nQUOTED="two words"\nLATER=\'$HOME\'\nBOTH=file\nLITERAL="\\\\\\$HOME"\n');
  const r = await ctr(['exec', '--env-file', file, '--env', 'BOTH=cli', sif, 'sh', '-c',
    'echo "$OVERRIDDEN|$QUOTED|$LATER|$BOTH|$LITERAL"']);
  assert.is(r.stdout, `file|two words|/home/${TEST_USER}|cli|$HOME\n`);
  const noEval = await ctr(['exec', '--no-eval', '--env-file', file, sif, 'sh', '-c', 'echo "$LATER"']);
  assert.is(noEval.stdout, '$HOME\n');
  await rm(dir, { recursive: true });
});

Flags('env :: APPTAINERENV_, SINGULARITYENV_ and CTRENV_ host variables set NAME inside', async () => {
  const r = await ctr(['exec', sif, 'sh', '-c', 'echo "$A|$B|$OVERRIDDEN|${APPTAINERENV_A-unset}|${CTRENV_OVERRIDDEN-unset}"'],
    { env: { APPTAINERENV_A: '1', SINGULARITYENV_B: '2', CTRENV_OVERRIDDEN: 'prefixed' } });
  assert.is(r.stdout, '1|2|prefixed|unset|unset\n');
  const clean = await ctr(['exec', '-e', sif, 'sh', '-c', 'echo "$A"'], { env: { APPTAINERENV_A: 'kept with -e' } });
  assert.is(clean.stdout, 'kept with -e\n');
});

Flags('env :: CTR_ / APPTAINER_ / SINGULARITY_ CONTAINER and NAME, USER, HOME are set', async () => {
  const r = await ctr(['exec', sif, 'sh', '-c',
    'echo "$CTR_CONTAINER|$CTR_NAME|$APPTAINER_CONTAINER|$APPTAINER_NAME|$SINGULARITY_CONTAINER|$SINGULARITY_NAME|$USER|$LOGNAME|$HOME"']);
  const name = sif.split('/').pop();
  assert.is(r.stdout, `${sif}|${name}|${sif}|${name}|${sif}|${name}|ctrtest|ctrtest|${home}\n`);
});

Flags('pwd :: --pwd is the working directory and PWD', async () => {
  const r = await ctr(['exec', '--pwd', '/etc', sif, 'sh', '-c', 'pwd; echo $PWD; cat image-release']);
  assert.is(r.stdout, '/etc\n/etc\nbusybox test image\n');
});

Flags('home :: -H SRC binds SRC at the home; --home SRC:DST elsewhere, HOME follows', async () => {
  const h = await userTmp();
  await writeFile(join(h, 'marker'), 'other home\n');
  const a = await ctr(['exec', '-H', h, sif, 'sh', '-c', 'echo $HOME; cat ~/marker'], { cwd: '/' });
  assert.is(a.stdout, `${home}\nother home\n`);
  const b = await ctr(['exec', '--home', `${h}:/home/alt`, sif, 'sh', '-c', 'echo $HOME; cat /home/alt/marker; grep ^ctrtest: /etc/passwd'], { cwd: '/' });
  assert.is(b.stdout, `/home/alt\nother home\nctrtest:x:${uid}:${gid}::/home/alt:/bin/sh\n`);
  await rm(h, { recursive: true });
});

Flags('no-home :: the home contents are not visible', async () => {
  await writeFile(join(home, 'ctr-marker'), 'secret\n');
  await chown(join(home, 'ctr-marker'), uid, gid);
  try {
    const r = await ctr(['exec', '--no-home', sif, 'sh', '-c', 'echo $HOME; cat ~/ctr-marker'], { cwd: '/' });
    assert.is(r.stdout, `${home}\n`);
    assert.is(r.stderr, `cat: can't open '${home}/ctr-marker': No such file or directory\n`);
    assert.is(r.exitCode, 1);
  } finally {
    await rm(join(home, 'ctr-marker'), { force: true });
  }
});

Flags('contain :: fresh empty /tmp, minimal /dev with a usable /dev/null, empty home, cwd not bound', async () => {
  const work = await userTmp();
  await writeFile(join(work, 'here'), 'x\n');
  const r = await ctr(['exec', '-c', sif, 'sh', '-c',
    `ls -A /tmp; echo --; ls /dev; echo x > /dev/null && echo null-ok; ls -A ~; pwd; test -e ${work}/here || echo no-cwd`], { cwd: work });
  assert.is(r.stderr, '');
  assert.is(r.stdout, `--\nfull\nfuse\nnull\npts\nrandom\nshm\ntty\nurandom\nzero\nnull-ok\n${home}\nno-cwd\n`);
  const long = await ctr(['exec', '--contain', sif, 'sh', '-c', 'ls -A /var/tmp | wc -l'], { cwd: work });
  assert.is(String(long.stdout).trim(), '0');
  await rm(work, { recursive: true });
});

Flags('fakeroot :: uid 0 inside; files the user made show as root inside and as the user outside', async () => {
  const d = await userTmp();
  await asUser('touch', [join(d, 'before')]);
  const r = await ctr(['exec', '--fakeroot', '-B', `${d}:/mnt`, sif, 'sh', '-c',
    'id -u; id -g; stat -c %u:%g /mnt/before; touch /mnt/made; stat -c %u:%g /mnt/made; echo $HOME'], { cwd: '/' });
  assert.is(r.stderr, '');
  assert.is(r.stdout, '0\n0\n0:0\n0:0\n/root\n');
  const s = await stat(join(d, 'made'));
  assert.equal([s.uid, s.gid], [uid, gid]);
  await rm(d, { recursive: true });
});

Flags('debug :: plan and launcher steps on stderr, stdout unaffected', async () => {
  // Node's own lines: planned anew, not taken from the plan cache (test/cli/plancache).
  const r = await ctr(['exec', '--debug', sif, 'echo', 'hi'], { env: { CTR_PLAN_CACHE: '0' } });
  assert.is(r.stdout, 'hi\n');
  assert.is(r.exitCode, 0);
  const lines = String(r.stderr).split('\n');
  assert.match(lines[0], /^ctr: debug: started from the start-up snapshot, planning for the launcher that started it \(--ask\)$/);
  assert.match(lines[1], /^ctr: debug: launch plan: \["--plan-version","1","--image",".*busybox-arch2\.sif","--offset","\d+",/);
  assert.match(String(r.stderr), /^ctr-launch\[\d+\] \+\d+\.\d\dms: user and mount namespaces entered \(uid \d+ -> \d+, single id\)$/m);
  assert.match(String(r.stderr), /^ctr-launch\[\d+\] \+\d+\.\d\dms: FUSE server started \(in process\), pid \d+, offset \d+$/m);
  assert.match(String(r.stderr), /^ctr-launch\[\d+\] \+\d+\.\d\dms: mounted \/proc$/m);
  assert.match(String(r.stderr), /^ctr-launch\[\d+\] \+\d+\.\d\dms: exec echo$/m);
  const quiet = await ctr(['exec', sif, 'echo', 'hi']);
  assert.is(quiet.stderr, '');
});

Flags('plan :: ctr plan -o FILE, then FILE runs commands without Node, status passes through', async () => {
  const d = await userTmp();
  const file = join(d, 'plan.sh');
  const w = await ctr(['plan', '-o', file, sif]);
  assert.is(w.stderr, '');
  assert.is(w.exitCode, 0);
  // The kernel ran the launcher on the plan file itself (#!ctr-launch --plan): no Node.
  // The container's init (PID 1 of its PID namespace) is that launcher.
  const r = await asUser(file, ['sh', '-c', 'echo $$; tr "\\0" " " </proc/1/cmdline; echo; cat /etc/image-release; exit 7'], { cwd: '/' });
  assert.is(r.stderr, '');
  assert.is(String(r.stdout), `2\n${LAUNCHER} --plan ${file} sh -c echo $$; tr "\\0" " " </proc/1/cmdline; echo; cat /etc/image-release; exit 7 \nbusybox test image\n`);
  assert.is(r.exitCode, 7);
  const baked = join(d, 'echo.sh');
  await ctr(['plan', '-o', baked, sif, 'echo', 'baked']);
  const b = await asUser(baked, ['extra', 'args']);
  assert.is(b.stdout, 'baked extra args\n');
  assert.is(b.exitCode, 0);
  await rm(d, { recursive: true });
});

Flags.run();
