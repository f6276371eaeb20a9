// Bad input: one clear `ctr: error: ...` line (and a hint where one helps), the exit code
// of the contract (255 ctr's own failure, 127 command not found, 126 not executable), and
// nothing left running. Broken images are made here from the cached siftool SIF.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { appendFile, chmod, copyFile, cp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxDir, busyboxSif, busyboxSqfs } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { SIFTOOL, CTR_MAIN } from '../helpers/paths.js';
import { asUser, ctr, userTmp } from '../helpers/user.js';

/** The SIF layout siftool gives the cached image: 48 descriptors of 585 bytes at 4096. */
const DESCRIPTORS_AT = 4096;
const DESCRIPTOR_SIZE = 585;
const TABLE_END = DESCRIPTORS_AT + 48 * DESCRIPTOR_SIZE;
const PARTITION_AT = 32768;
const USERNS_HINT = 'ctr: hint: unprivileged user namespaces look disabled on this host; an administrator can enable ' +
  'them with: sysctl -w user.max_user_namespaces=15000 kernel.unprivileged_userns_clone=1 ' +
  '(and, on Ubuntu, kernel.apparmor_restrict_unprivileged_userns=0)\n';

async function siftool(...args: string[]): Promise<void> {
  await execa(SIFTOOL, args);
}

/** Assert a failed ctr call: exactly STDERR, exit CODE, nothing on stdout. */
function failed(r: { stdout?: unknown; stderr?: unknown; exitCode?: number }, stderr: string, code = 255): void {
  assert.is(r.stderr, stderr);
  assert.is(r.stdout, '');
  assert.is(r.exitCode, code);
}

const Errors = suite('ctr errors');
let sif: string, sifSize: number, work: string;

Errors.before(async () => {
  sif = await busyboxSif();
  sifSize = (await stat(sif)).size;
  work = await userTmp('ctr-errors-');
});
Errors.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});
Errors.after(async () => {
  await rm(work, { recursive: true, force: true });
});

Errors('image :: missing', async () => {
  const p = join(work, 'missing.sif');
  failed(await ctr(['exec', p, 'true']), `ctr: error: image ${p}: No such file or directory\n`);
});

Errors('image :: unreadable (mode 000, owned by root)', async () => {
  const p = join(work, 'unreadable.sif');
  await copyFile(sif, p);
  await chmod(p, 0o000);
  failed(await ctr(['exec', p, 'true']), `ctr: error: image ${p}: Permission denied\n`);
});

Errors('image :: neither SIF nor SquashFS', async () => {
  const p = join(work, 'junk.img');
  await writeFile(p, 'this is not an image\n'.repeat(100));
  failed(await ctr(['exec', p, 'true']), `ctr: error: image ${p}: not a SIF, SquashFS image or directory\n`);
});

Errors('image :: truncated SIF, cut in the middle of the SquashFS partition', async () => {
  const p = join(work, 'cut-data.sif');
  const cut = Math.floor((PARTITION_AT + sifSize) / 2);
  await copyFile(sif, p);
  await truncate(p, cut);
  failed(await ctr(['exec', p, 'true']),
    `ctr: error: image ${p}: truncated SIF: object 1 (Partition) at ${PARTITION_AT}-${sifSize} ends past end of file (${cut} bytes)\n`);
});

Errors('image :: truncated SIF, cut inside the descriptor table', async () => {
  const p = join(work, 'cut-table.sif');
  const cut = DESCRIPTORS_AT + DESCRIPTOR_SIZE / 2 | 0;
  await copyFile(sif, p);
  await truncate(p, cut);
  failed(await ctr(['exec', p, 'true']),
    `ctr: error: image ${p}: truncated SIF: descriptor table ends at ${TABLE_END}, past end of file (${cut} bytes)\n`);
});

Errors('image :: truncated bare SquashFS', async () => {
  const p = join(work, 'cut.sqfs');
  const sqfs = await busyboxSqfs();
  await copyFile(sqfs, p);
  await truncate(p, 200000);
  const { bytes_used } = { bytes_used: (await readFile(sqfs)).readBigUInt64LE(40) };
  failed(await ctr(['exec', p, 'true']),
    `ctr: error: image ${p}: truncated SquashFS: it needs ${bytes_used} bytes but only 200000 are there\n`);
});

Errors('image :: corrupt SIF, overlapping descriptors', async () => {
  const p = join(work, 'overlap.sif');
  const def = join(work, 'def');
  await writeFile(def, 'hi\n');
  await copyFile(sif, p);
  await siftool('add', p, def, '--datatype', '1');
  // Point object 2 (the 3-byte definition file) into the middle of the partition.
  const buf = await readFile(p);
  buf.writeBigInt64LE(40000n, DESCRIPTORS_AT + DESCRIPTOR_SIZE + 17);
  await writeFile(p, buf);
  failed(await ctr(['exec', p, 'true']),
    `ctr: error: image ${p}: corrupt SIF: object 1 (${PARTITION_AT}-${sifSize}) and object 2 (40000-40003) overlap\n`);
});

Errors('image :: SIF with no primary partition', async () => {
  const p = join(work, 'noprim.sif');
  const def = join(work, 'def2');
  await writeFile(def, 'Bootstrap: scratch\n');
  await siftool('new', p);
  await siftool('add', p, def, '--datatype', '1');
  failed(await ctr(['exec', p, 'true']), `ctr: error: image ${p}: no primary partition: the SIF holds no partition at all\n`);
});

Errors('image :: ext3 partition', async () => {
  const p = join(work, 'ext3.sif');
  await siftool('new', p);
  await siftool('add', p, await busyboxSqfs(), '--datatype', '4', '--parttype', '2', '--partfs', '2', '--partarch', '2');
  failed(await ctr(['exec', p, 'true']), `ctr: error: image ${p}: partition type Ext3 cannot be mounted (object 1): ` +
    'ext3 images need a kernel mount, which rootless ctr cannot do\n');
});

Errors('image :: SIF for another architecture', async () => {
  assert.is(process.arch, 'x64', 'this test expects an amd64 machine');
  const p = join(work, 'arm64.sif');
  await siftool('new', p);
  await siftool('add', p, await busyboxSqfs(), '--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', '4');
  failed(await ctr(['exec', p, 'true']), `ctr: error: image ${p}: image is for arm64, this machine is amd64\n`);
});

Errors('bind :: missing source', async () => {
  failed(await ctr(['exec', '-B', '/nonexistent-ctr-src:/data', sif, 'true']),
    'ctr: error: bind source /nonexistent-ctr-src: No such file or directory\n');
});

Errors('bind :: bad mode', async () => {
  failed(await ctr(['exec', '-B', '/tmp:/data:rx', sif, 'true']), 'ctr: error: bind /tmp:/data:rx: unknown mode "rx" (ro or rw)\n');
});

Errors('command :: not in the image gives 127', async () => {
  failed(await ctr(['exec', sif, 'no-such-command', 'arg']), 'ctr: error: command not found in image: no-such-command\n', 127);
  failed(await ctr(['exec', sif, '/no/such/path']), 'ctr: error: command not found in image: /no/such/path\n', 127);
});

Errors('command :: not executable gives 126', async () => {
  failed(await ctr(['exec', sif, '/etc/passwd']), 'ctr: error: cannot execute /etc/passwd: Permission denied\n', 126);
  failed(await ctr(['exec', sif, '/etc']), 'ctr: error: cannot execute /etc: Permission denied\n', 126);
});

Errors('command :: same messages when the env scripts need the image shell', async () => {
  const img = join(work, 'shell-env.dir');
  await cp(await busyboxDir(), img, { recursive: true, verbatimSymlinks: true });
  await appendFile(join(img, '.singularity.d/env/90-environment.sh'), 'if true; then export VIA_SHELL=yes; fi\n');
  const ok = await ctr(['exec', img, 'sh', '-c', 'echo $VIA_SHELL']);
  assert.is(ok.stdout, 'yes\n');
  failed(await ctr(['exec', img, 'no-such-command']), 'ctr: error: command not found in image: no-such-command\n', 127);
  failed(await ctr(['exec', img, '/etc/passwd']), 'ctr: error: cannot execute /etc/passwd: Permission denied\n', 126);
});

Errors('usage :: unknown flag', async () => {
  failed(await ctr(['exec', '--bogus', sif, 'true']), 'ctr: error: unknown option --bogus\nctr: hint: see ctr --help\n');
});

Errors('usage :: no command given', async () => {
  failed(await ctr(['exec', sif]), 'ctr: error: no command given\nctr: hint: usage: ctr exec [flags] IMAGE COMMAND [ARG...]\n');
});

Errors('usage :: no image given', async () => {
  failed(await ctr(['exec']), 'ctr: error: no image given\nctr: hint: usage: ctr exec [flags] IMAGE COMMAND [ARG...]\n');
});

Errors('host :: a removed working directory is named; with --pwd it does not matter', async () => {
  const gone = await userTmp();
  const script = `cd ${gone} && rmdir ${gone} && ${process.execPath} ${CTR_MAIN} exec`;
  const r = await asUser('sh', ['-c', `${script} ${sif} true`], { cwd: '/' });
  assert.is(r.stderr, 'ctr: error: current directory: No such file or directory (was it removed?)\n' +
    'ctr: hint: cd somewhere that exists, or give --pwd\n');
  assert.is(r.exitCode, 255);
  const gone2 = await userTmp();
  const p = await asUser('sh', ['-c', `cd ${gone2} && rmdir ${gone2} && ${process.execPath} ${CTR_MAIN} exec --pwd /etc ${sif} pwd`], { cwd: '/' });
  assert.is(p.stdout, '/etc\n');
  assert.is(p.exitCode, 0);
});

Errors('host :: a home directory missing on the host is skipped, not fatal', async () => {
  const r = await execa('runuser', ['-u', 'nobody', '--', process.execPath, CTR_MAIN, 'exec', sif, 'sh', '-c', 'echo $HOME; id -un'], { cwd: '/', reject: false, stripFinalNewline: false });
  assert.is(r.stderr, '');
  assert.is(r.stdout, '/nonexistent\nnobody\n');
});

Errors('host :: /dev/fuse not accessible', async () => {
  const mode = (await stat('/dev/fuse')).mode & 0o7777;
  await chmod('/dev/fuse', 0o600);
  try {
    failed(await ctr(['exec', sif, 'true']), 'ctr: error: cannot open /dev/fuse: Permission denied\n' +
      'ctr: hint: /dev/fuse must be usable by users (mode 0666, as most distributions ship it)\n');
  } finally {
    await chmod('/dev/fuse', mode);
  }
});

Errors('host :: user namespaces disabled', async () => {
  // The host-wide switch where root may set it; where it can't (a container without
  // CAP_SYS_RESOURCE over the initial namespace, as here), the same per-namespace limit
  // set inside an outer user namespace that ctr then runs in.
  const old = (await readFile('/proc/sys/user/max_user_namespaces', 'utf8')).trim();
  const set = await execa('sysctl', ['-w', 'user.max_user_namespaces=0'], { reject: false });
  let r;
  try {
    r = set.exitCode === 0
      ? await ctr(['exec', sif, 'true'])
      : await asUser('unshare', ['--user', '--map-root-user', 'sh', '-c',
        'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', 'sh', process.execPath, CTR_MAIN, 'exec', sif, 'true']);
  } finally {
    if (set.exitCode === 0) await execa('sysctl', ['-w', `user.max_user_namespaces=${old}`]);
  }
  assert.is((await readFile('/proc/sys/user/max_user_namespaces', 'utf8')).trim(), old, 'sysctl restored');
  failed(r, `ctr: error: cannot create a user namespace: No space left on device\n${USERNS_HINT}`);
});

// In a job, every line says where it comes from (issue 12): the planner's lines and the
// launcher's alike, from the rank variables a job launcher sets.
const RANK_ENV = { PMI_RANK: '5', SLURMD_NODENAME: 'n7' };

Errors('in a job :: the planner\'s line names the node, the rank and its pid', async () => {
  const r = await ctr(['exec', '/nonexistent.sif', 'true'], { env: RANK_ENV });
  assert.match(String(r.stderr), /^ctr: error: node n7 rank 5 pid \d+: image \/nonexistent\.sif: No such file or directory\n$/);
  assert.is(r.exitCode, 255);
});

Errors('in a job :: the launcher\'s line names the node, the rank (SLURM_PROCID first) and its pid', async () => {
  const r = await ctr(['exec', '--no-join', '--pwd', '/no/such/dir', sif, 'true'], { env: { ...RANK_ENV, SLURM_PROCID: '2' } });
  assert.match(String(r.stderr), /^ctr: error: node n7 rank 2 pid \d+: cannot change to directory \/no\/such\/dir inside the container: No such file or directory\n$/);
  assert.is(r.exitCode, 255);
});

Errors('child failure :: a FUSE server that cannot start says why, in the parent\'s one line', async () => {
  // A plan whose squashfuse_ll is missing: the server's exec fails in the child. Before,
  // the child's line came first and the parent then blamed the image.
  const plan = join(work, 'nofuse.plan');
  const made = await ctr(['plan', '-o', plan, sif, 'true'], { env: { CTR_FUSE: 'exec' } });
  assert.is(made.exitCode, 0, String(made.stderr));
  const words = (await readFile(plan, 'latin1')).split('\0').map((w) => (w.endsWith('/squashfuse_ll') ? '/nonexistent/squashfuse_ll' : w));
  await writeFile(plan, words.join('\0'), 'latin1');
  failed(await asUser(plan, [], { env: { CTR_FUSE: 'exec' } }),
    `ctr: error: cannot mount image ${sif}: the FUSE server failed: cannot run /nonexistent/squashfuse_ll: No such file or directory\n`);
});

Errors.run();
