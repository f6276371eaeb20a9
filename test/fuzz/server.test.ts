// The FUSE server's own hygiene, seen from the host while a container runs: it has left
// the directory ctr was started in (forked before the pivots, it would otherwise keep
// it, reachable as /proc/PID/cwd), is not dumpable (its /proc entries are root's), and
// holds no capability at all, for both the built-in server and squashfuse_ll.
import { execa } from 'execa';
import { lstat, readFile, readlink, stat } from 'node:fs/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { busyboxSqfs } from '../helpers/images.js';
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

Server.run();
