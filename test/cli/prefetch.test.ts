// Read-ahead of the command's file (fuse_prefetch, native/launch_fuse.c): once the image
// answers, the launcher queues the reads of the file the command will exec, so the FUSE
// server decompresses it while the container is still being built. It is image content
// the launcher opens, so: found as the command would be (an absolute path, or on the
// plan's PATH), symlinks resolved inside the image only, regular files only (a FIFO
// would block an open for reading), at most 32 MiB of one file, nothing under a bind
// destination (that is the host's file), and CTR_PREFETCH=0 turns it off.
import { execa } from 'execa';
import { chmod, cp, mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { busyboxDir, cached } from '../helpers/images.js';
import { killUserProcesses, leftovers } from '../helpers/leftovers.js';
import { ctr, userTmp } from '../helpers/user.js';

const TARGET_SIZE = 12345;
const BIG = 40 << 20;
const LIMIT = 32 << 20;

const script = (says: string, size?: number) => {
  const body = `#!/bin/sh\necho ${says}\n`;
  return size ? `${body}#${'x'.repeat(size - body.length - 2)}\n` : body;
};

function image(): Promise<string> {
  return cached('prefetch.sqfs', async (tmp) => {
    const src = `${tmp}.src`;
    await cp(await busyboxDir(), src, { recursive: true, verbatimSymlinks: true });
    await mkdir(join(src, 'opt'));
    await mkdir(join(src, 'data'));
    await mkdir(join(src, 'usr/local/bin'), { recursive: true });
    await writeFile(join(src, 'usr/local/bin/on-path'), script('on-path ran'), { mode: 0o755 });
    await writeFile(join(src, 'data/target'), script('target ran', TARGET_SIZE), { mode: 0o755 });
    // Out of the image, if they were resolved on the host: "../" past the root, and absolute.
    await symlink('../../../../../../../data/target', join(src, 'opt/up'));
    await symlink('/data/target', join(src, 'opt/abs'));
    await execa('mkfifo', [join(src, 'opt/fifo')]);
    await chmod(join(src, 'opt/fifo'), 0o755);
    await writeFile(join(src, 'opt/big'), '');
    await truncate(join(src, 'opt/big'), BIG); /* all holes: the image stays small */
    await chmod(join(src, 'opt/big'), 0o755);
    await execa('mksquashfs', [src, tmp, '-noappend', '-all-root', '-comp', 'zstd', '-quiet', '-no-progress']);
    await chmod(tmp, 0o644);
    await execa('rm', ['-rf', src]);
  });
}

const readAhead = (stderr: unknown) => [...String(stderr).matchAll(/read-ahead of (\S+) \((\d+) of (\d+) bytes\) started/g)]
  .map((m) => ({ path: m[1], queued: Number(m[2]), size: Number(m[3]) }));

const Prefetch = suite('read-ahead of the command');
Prefetch.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

Prefetch('found as the command is :: a name on the plan PATH, its whole file queued, then it runs', async () => {
  const r = await ctr(['exec', '--debug', await image(), 'on-path'], { cwd: '/' });
  assert.is(r.exitCode, 0, String(r.stderr));
  assert.is(String(r.stdout).trim(), 'on-path ran');
  const ra = readAhead(r.stderr);
  assert.equal(ra.map((x) => x.path), ['/usr/local/bin/on-path']);
  assert.is(ra[0].queued, ra[0].size);
});

Prefetch('symlinks :: "../" past the root and absolute targets both resolve inside the image', async () => {
  for (const link of ['/opt/up', '/opt/abs']) {
    const r = await ctr(['exec', '--debug', await image(), link], { cwd: '/' });
    assert.is(r.exitCode, 0, String(r.stderr));
    assert.is(String(r.stdout).trim(), 'target ran', link);
    assert.equal(readAhead(r.stderr), [{ path: link, queued: TARGET_SIZE, size: TARGET_SIZE }], link);
  }
});

Prefetch('not a regular file :: a FIFO is not read, and the launch goes on to exec it', async () => {
  const r = await ctr(['exec', '--debug', await image(), '/opt/fifo'], { cwd: '/', timeout: 60_000 });
  assert.equal(readAhead(r.stderr), []);
  assert.is(r.exitCode, 126, String(r.stderr));
  assert.match(String(r.stderr), /^ctr: error: .*\/opt\/fifo/m);
});

Prefetch('bounded :: at most 32 MiB of a 40 MiB file', async () => {
  const r = await ctr(['exec', '--debug', await image(), '/opt/big'], { cwd: '/' });
  assert.equal(readAhead(r.stderr), [{ path: '/opt/big', queued: LIMIT, size: BIG }]);
  assert.is(r.exitCode, 0, String(r.stderr)); /* no ELF, no #!: execvp hands it to sh, which reads NULs */
});

Prefetch('the host\'s file :: a command under a bind destination is not read from the image', async () => {
  const host = await userTmp('ctr-prefetch-');
  await writeFile(join(host, 'up'), script('host file ran'), { mode: 0o755 });
  const r = await ctr(['exec', '--debug', '-B', `${host}:/opt`, await image(), '/opt/up'], { cwd: '/' });
  assert.is(r.exitCode, 0, String(r.stderr));
  assert.is(String(r.stdout).trim(), 'host file ran');
  assert.equal(readAhead(r.stderr), []);
});

Prefetch('CTR_PREFETCH=0 :: no read-ahead, same result', async () => {
  const r = await ctr(['exec', '--debug', await image(), '/opt/abs'], { cwd: '/', env: { CTR_PREFETCH: '0' } });
  assert.is(r.exitCode, 0, String(r.stderr));
  assert.is(String(r.stdout).trim(), 'target ran');
  assert.equal(readAhead(r.stderr), []);
});

Prefetch('run and shell :: the runscript and the shell the action starts', async () => {
  const run = await ctr(['run', '--debug', await image(), 'x'], { cwd: '/' });
  assert.is(String(run.stdout).trim(), 'runscript: x');
  assert.equal(readAhead(run.stderr).map((x) => x.path), ['/.singularity.d/runscript', '/bin/sh']);
  const shell = await ctr(['shell', '--debug', await image(), '-c', 'echo in shell'], { cwd: '/' });
  assert.is(String(shell.stdout).trim(), 'in shell');
  assert.equal(readAhead(shell.stderr).map((x) => x.path), ['/bin/sh']);
});

Prefetch.run();
