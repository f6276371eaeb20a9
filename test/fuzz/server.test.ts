// The FUSE server's own hygiene, seen from the host while a container runs: it has left
// the directory ctr was started in (forked before the pivots, it would otherwise keep
// it, reachable as /proc/PID/cwd), is not dumpable (its /proc entries are root's), and
// holds no capability at all, for both the built-in server and squashfuse_ll.
import { execa } from 'execa';
import { chmod, lstat, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { busyboxSqfs, cached } from '../helpers/images.js';
import { killUserProcesses, leftovers } from '../helpers/leftovers.js';
import { ctr, userTmp } from '../helpers/user.js';

/** The processes below PID (children, grandchildren...), as [pid, comm]. */
async function descendants(pid: number): Promise<Array<[number, string]>> {
  const r = await execa('ps', ['-e', '-o', 'pid=,ppid=,comm=']);
  const rows = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/)).map(([p, pp, c]) => [Number(p), Number(pp), c] as const);
  const out: Array<[number, string]> = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    for (const [c, pp, comm] of rows) if (pp === p) { out.push([c, comm]); todo.push(c); }
  }
  return out;
}

const Server = suite('FUSE server hygiene');
Server.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

for (const [server, comm, env] of [['built in', 'ctr-fuse', {}], ['squashfuse_ll', 'squashfuse_ll', { CTR_FUSE: 'exec' }]] as const) {
  Server(`${server} :: not in the host's cwd, not dumpable, no capabilities`, async () => {
    const cwd = await userTmp('ctr-cwd-');
    const run = ctr(['exec', await busyboxSqfs(), 'sh', '-c', 'echo up; read x'], { cwd, env, stdin: 'pipe', timeout: 20000 });
    await new Promise<void>((resolve, reject) => {
      run.stdout!.on('data', (d: Buffer) => { if (String(d).includes('up')) resolve(); });
      run.catch(reject);
    });
    try {
      const servers = (await descendants(run.pid!)).filter(([, c]) => c === comm);
      assert.is(servers.length, 1, `one ${comm} below ctr`);
      const pid = servers[0][0];
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) {
        assert.match(status, new RegExp(`^${cap}:\\s+0+$`, 'm'), `${cap} empty`);
      }
      const where = await stat(`/proc/${pid}/cwd`);
      const host = await stat(cwd);
      assert.ok(where.ino !== host.ino || where.dev !== host.dev, `cwd is ${await readlink(`/proc/${pid}/cwd`)}`);
      // Not dumpable: the kernel gives the entries under /proc/PID to root.
      if (server === 'built in') assert.is((await lstat(`/proc/${pid}/cwd`)).uid, 0, 'not dumpable');
    } finally {
      run.stdin!.end('\n');
      await run;
    }
  });
}

/** A valid image whose files have xattr names longer than the ones the kernel asks for. */
function longXattrs(): Promise<string> {
  return cached('long-xattrs.sqfs', async (tmp) => {
    const tree = `${tmp}.tree`;
    await mkdir(join(tree, 'd'), { recursive: true });
    // Mount points for the host's /usr (merged /usr: lib and lib64 are links), for Python.
    await mkdir(join(tree, 'usr'));
    for (const l of ['lib', 'lib64']) await symlink(`usr/${l}`, join(tree, l));
    await writeFile(join(tree, 'd/f'), 'data\n');
    await execa('setfattr', ['-n', 'user.xdg.referrer.url', '-v', 'https://example.com/', join(tree, 'd/f')]);
    await execa('mksquashfs', [tree, tmp, '-noappend', '-all-root', '-xattrs', '-quiet', '-no-progress']);
    await rm(tree, { recursive: true });
    await chmod(tmp, 0o644);
  });
}

// squashfuse_ll 0.1.105 overflows its heap when the overlay looks up user.overlay.* on a
// file with a longer user.* name (SIGSEGV at the first lookup): refused before it starts.
Server('squashfuse_ll :: an image with long xattr names is refused, the built-in server serves it', async () => {
  const img = await longXattrs();
  const sq = await ctr(['exec', img, '/d/f'], { env: { CTR_FUSE: 'exec' } });
  assert.is(sq.exitCode, 255);
  assert.match(String(sq.stderr), /^ctr: error: image .*: squashfuse_ll can't serve its xattr user\.xdg\.referrer\.url safely .*\nctr: hint: .*\n$/);
  const py = 'import os; print(open("/d/f").read(), os.getxattr("/d/f", "user.xdg.referrer.url").decode())';
  const bi = await ctr(['exec', '-B', '/usr', img, '/usr/bin/python3', '-c', py]);
  assert.is(bi.stderr, '');
  assert.is(bi.stdout, 'data\n https://example.com/\n');
});

Server.run();
