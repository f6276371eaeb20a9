// ctr's front: what bin/ctr and the command line say before any container starts. The
// words are a contract (`ctr: error: <what>: <why>`, `ctr: hint: ...`, exit 255, no
// stack trace), so these tests assert them exactly.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { CTR_ROOT, REPO } from '../helpers/paths.js';
import { asUser, ctr, userTmp } from '../helpers/user.js';

const Node = suite('Node never parses ctr\'s arguments');
let sif: string, tmp: string;

Node.before(async () => {
  sif = await busyboxSif();
  tmp = await userTmp('ctr-front-');
});
Node.after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** bin/ctr through the start-up snapshot and the launcher, and with plain Node. */
const WAYS: Array<[string, Record<string, string>]> = [['snapshot', {}], ['plain Node', { CTR_NO_SNAPSHOT: '1' }]];

Node('--env-file missing :: ctr\'s own one-line error, exit 255, whichever way ctr starts', async () => {
  for (const [way, env] of WAYS) {
    for (const args of [['--env-file', '/nonexistent'], ['--env-file=/nonexistent']]) {
      const r = await ctr(['exec', ...args, sif, 'true'], { env });
      assert.is(r.stderr, 'ctr: error: env file /nonexistent: No such file or directory\n', `${way} ${args.join(' ')}`);
      assert.is(r.stdout, '');
      assert.is(r.exitCode, 255);
    }
  }
  const plan = await ctr(['plan', '-o', join(tmp, 'x.plan'), '--env-file', '/nonexistent', sif]);
  assert.is(plan.stderr, 'ctr: error: env file /nonexistent: No such file or directory\n');
  assert.is(plan.exitCode, 255);
});

Node('--env-file with NODE_OPTIONS :: reaches the container, not ctr\'s own Node', async () => {
  const file = join(tmp, 'node.env');
  await writeFile(file, 'NODE_OPTIONS=--require=/nonexistent/preload.js\nA=1\n', { mode: 0o644 });
  for (const [way, env] of WAYS) {
    const r = await ctr(['exec', '--env-file', file, sif, 'sh', '-c', 'echo "$NODE_OPTIONS|$A"'], { env });
    assert.is(r.stderr, '', way);
    assert.is(r.stdout, '--require=/nonexistent/preload.js|1\n', way);
    assert.is(r.exitCode, 0, way);
  }
});

Node('options Node knows :: after the verb they are ctr\'s (unknown to ctr: its own error)', async () => {
  for (const [way, env] of WAYS) {
    const r = await ctr(['exec', '--inspect', sif, 'true'], { env });
    assert.is(r.stderr, 'ctr: error: unknown option --inspect\nctr: hint: see ctr --help\n', way);
    assert.is(r.exitCode, 255, way);
  }
});

Node.run();

const Front = suite('one command front');
let img: string;
Front.before(async () => {
  img = await busyboxSif();
});

/** ctr failed with exactly these lines on stderr, nothing on stdout, status 255. */
function failed(r: Awaited<ReturnType<typeof ctr>>, stderr: string, what: string): void {
  assert.is(r.stderr, stderr, what);
  assert.is(r.stdout, '', what);
  assert.is(r.exitCode, 255, what);
}

Front('unknown command :: ctr\'s words, with the closest command as a hint', async () => {
  failed(await ctr(['exce', 'img.sif', 'ls']), "ctr: error: unknown command 'exce'\nctr: hint: did you mean exec?\n", 'exce');
  failed(await ctr(['shel', img]), "ctr: error: unknown command 'shel'\nctr: hint: did you mean shell?\n", 'shel');
  failed(await ctr(['insp', img]), "ctr: error: unknown command 'insp'\nctr: hint: did you mean inspect?\n", 'insp');
  failed(await ctr(['bulid', 'a', 'b']), "ctr: error: unknown command 'bulid'\nctr: hint: did you mean build?\n", 'bulid');
  failed(await ctr(['frobnicate']), "ctr: error: unknown command 'frobnicate'\nctr: hint: see ctr --help\n", 'frobnicate');
  failed(await ctr(['help', 'exce']), "ctr: error: unknown command 'exce'\nctr: hint: did you mean exec?\n", 'help exce');
  failed(await ctr([]), 'ctr: error: no command given\nctr: hint: see ctr --help\n', 'nothing');
  failed(await ctr(['--frob']), 'ctr: error: unknown option --frob\nctr: hint: see ctr --help\n', '--frob');
});

Front('help :: -h, --help and help VERB say the same, on stdout, status 0', async () => {
  const top = await ctr(['--help']);
  assert.is(top.stderr, '');
  assert.is(top.exitCode, 0);
  assert.match(String(top.stdout), /^ctr: rootless containers for HPC\n\nUsage: ctr COMMAND \[flags\] \.\.\.\n/);
  for (const verb of ['exec', 'run', 'shell', 'plan', 'build', 'inspect', 'pull', 'help', 'version']) {
    assert.match(String(top.stdout), new RegExp(`\\n  ctr ${verb} +\\S`), `${verb} listed`);
  }
  for (const args of [['-h'], ['help']]) assert.is((await ctr(args)).stdout, top.stdout, args.join(' '));
  const usage: Record<string, string> = {
    exec: 'exec [flags] IMAGE COMMAND [ARG...]', build: 'build [flags] OUT SOURCE', pull: 'pull [flags] OUT REF', version: 'version',
  };
  for (const [verb, line] of Object.entries(usage)) {
    const help = await ctr([verb, '--help']);
    assert.is(help.stderr, '', verb);
    assert.is(help.exitCode, 0, verb);
    assert.ok(String(help.stdout).startsWith(`Usage: ctr ${line}\n`), `${verb}: ${help.stdout}`);
    assert.is((await ctr([verb, '-h'])).stdout, help.stdout, `${verb} -h`);
    assert.is((await ctr(['help', verb])).stdout, help.stdout, `help ${verb}`);
  }
  // After the image, --help is the command's.
  const cmd = await ctr(['exec', img, 'echo', '--help']);
  assert.is(cmd.stdout, '--help\n');
  assert.is(cmd.exitCode, 0);
});

Front('usage errors :: what is missing or extra, and the usage line', async () => {
  failed(await ctr(['pull']), 'ctr: error: no output file given\nctr: hint: usage: ctr pull [flags] OUT REF\n', 'pull');
  failed(await ctr(['pull', 'out.sif']), 'ctr: error: no image reference given\nctr: hint: usage: ctr pull [flags] OUT REF\n', 'pull OUT');
  failed(await ctr(['build']), 'ctr: error: no output file given\nctr: hint: usage: ctr build [flags] OUT SOURCE\n', 'build');
  failed(await ctr(['build', 'a.sif', 'dir', 'extra']), "ctr: error: unexpected argument 'extra'\nctr: hint: usage: ctr build [flags] OUT SOURCE\n", 'build +1');
  failed(await ctr(['inspect', '--json']), 'ctr: error: no image given\nctr: hint: usage: ctr inspect [flags] IMAGE\n', 'inspect');
  failed(await ctr(['build', '--frob', 'a', 'b']), 'ctr: error: unknown option --frob\nctr: hint: see ctr --help\n', 'build --frob');
  failed(await ctr(['build', '--force=yes', 'a', 'b']), 'ctr: error: option --force: takes no value\nctr: hint: see ctr --help\n', 'build --force=yes');
  failed(await ctr(['pull', 'out.sif', '--arch']), 'ctr: error: option --arch: needs a value\nctr: hint: see ctr --help\n', 'pull --arch');
  failed(await ctr(['exec', '-B']), 'ctr: error: option --bind: needs a value\nctr: hint: see ctr --help\n', 'exec -B');
  failed(await ctr(['version', 'x']), "ctr: error: unexpected argument 'x'\nctr: hint: usage: ctr version\n", 'version x');
});

Front('unknown option :: the closest of the command\'s own options as a hint, whichever way ctr starts', async () => {
  for (const [way, env] of WAYS) {
    failed(await ctr(['exec', '--bnd', '/tmp', img, 'true'], { env }), 'ctr: error: unknown option --bnd\nctr: hint: did you mean --bind?\n', `${way} --bnd`);
    failed(await ctr(['exec', '--envfile=x', img, 'true'], { env }), 'ctr: error: unknown option --envfile\nctr: hint: did you mean --env-file?\n', `${way} --envfile`);
    failed(await ctr(['plan', '--outptu', 'x', img], { env }), 'ctr: error: unknown option --outptu\nctr: hint: did you mean --output?\n', `${way} --outptu`);
    failed(await ctr(['exec', '--bogus', img, 'true'], { env }), 'ctr: error: unknown option --bogus\nctr: hint: see ctr --help\n', `${way} --bogus`);
  }
  failed(await ctr(['build', '--forse', 'a', 'b']), 'ctr: error: unknown option --forse\nctr: hint: did you mean --force?\n', 'build --forse');
  failed(await ctr(['pull', '--arc', 'x', 'a', 'b']), 'ctr: error: unknown option --arc\nctr: hint: did you mean --arch?\n', 'pull --arc');
});

Front('--version :: ctr, the launcher build, libsquashfs, node, the start-up snapshot and GPU drivers', async () => {
  const r = await ctr(['--version']);
  assert.is(r.stderr, '');
  assert.is(r.exitCode, 0);
  const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
  const lines = String(r.stdout).split('\n');
  assert.is(lines.length, 8, String(r.stdout));
  assert.is(lines[0], `ctr ${version}`);
  assert.is(lines[1], `launcher: ctr-launch ${version}, plan version 1, FUSE server: in process (libsquashfuse; CTR_FUSE=exec runs squashfuse_ll) (${CTR_ROOT}/native/build/ctr-launch)`);
  assert.match(lines[2], /^libsquashfs: \/\S+\/libsquashfs\.so\.1[.\d]*( \(Debian libsquashfs1 \S+\))?$/);
  assert.match(lines[3], /^node: v\d+\.\d+\.\d+ \(\/\S+\)$/);
  assert.is(lines[4], `start-up snapshot: in use: exec, run, shell and plan start from ${CTR_ROOT}/dist/snapshot/ctr.blob`);
  // This host has no GPU (test/cli/nv.test.ts shows a driver found).
  assert.is(lines[5], 'nvidia driver (--nv): none found (looked in the ld.so cache, /usr/local/nvidia/lib64, /usr/local/nvidia/lib)');
  assert.is(lines[6], 'rocm driver (--rocm): none found (looked in the ld.so cache, /opt/rocm/lib, /opt/rocm/lib64)');
  assert.is(lines[7], '');
  assert.is((await ctr(['version'])).stdout, r.stdout, 'ctr version says the same');
  const off = await ctr(['--version'], { env: { CTR_NO_SNAPSHOT: '1', CTR_LAUNCHER: '/nonexistent/ctr-launch' } });
  const offLines = String(off.stdout).split('\n');
  assert.is(offLines[1], `launcher: not found: /nonexistent/ctr-launch (exec, run and shell need it: npm run build, or make -C ${CTR_ROOT}/native)`);
  assert.is(offLines[4], 'start-up snapshot: not in use: CTR_NO_SNAPSHOT is set');
  assert.is(off.exitCode, 0);
});

Front('not built :: bin/ctr without dist/ says so, rather than a Node stack trace', async () => {
  const root = await userTmp('ctr-unbuilt-');
  await mkdir(join(root, 'bin'));
  await copyFile(join(REPO, 'bin/ctr'), join(root, 'bin/ctr'));
  await chmod(join(root, 'bin/ctr'), 0o755);
  for (const args of [['--version'], ['exec', img, 'true']]) {
    const r = await asUser(join(root, 'bin/ctr'), args);
    failed(r, `ctr: error: ctr is not built: ${root}/dist/src/cli/main.js missing\nctr: hint: run npm run build in ${root}\n`, args.join(' '));
  }
  await rm(root, { recursive: true, force: true });
});

Front.run();
