// Ranks and the plan cache: under mpirun the ranks of a node run the same `ctr exec`, so
// the first to miss plans (starts Node) and the others wait for its plan on the
// rendezvous (native/launch_plancache.c) instead of each starting Node; the next job's
// ranks all start from the kept plan. Each rank still gets its own variables.
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { busyboxSif } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { CTR_BIN } from '../helpers/paths.js';
import { asUser, userIds, userTmp } from '../helpers/user.js';

const Ranks = suite('plan cache under mpirun');
let sif: string, work: string;

Ranks.before(async () => {
  sif = await busyboxSif();
  work = await userTmp('ctr-plancache-mpi-');
});
Ranks.after(async () => {
  await rm(work, { recursive: true, force: true });
});
Ranks.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

const MPIS = [
  { name: 'Open MPI', mpirun: ['mpirun.openmpi', '-n', '8', '--oversubscribe'], rankVar: 'OMPI_COMM_WORLD_RANK' },
  { name: 'MPICH', mpirun: ['mpirun.mpich', '-n', '8'], rankVar: 'PMI_RANK' },
];

for (const m of MPIS) {
  Ranks(`${m.name} :: 8 ranks start Node once; the next job's ranks none`, async () => {
    // A cache of this test's own, empty.
    const runtime = join(work, m.name.replace(/\W/g, ''));
    await mkdir(runtime, { mode: 0o700 });
    const { uid, gid } = await userIds();
    await chown(runtime, uid, gid);
    await chmod(runtime, 0o700);
    const job = () => asUser('timeout', ['-s', 'KILL', '120', ...m.mpirun, CTR_BIN, 'exec', '--debug', sif, 'sh', '-c', `echo "rank \${${m.rankVar}}"`], {
      cwd: work, env: { XDG_RUNTIME_DIR: runtime },
    });
    const notes = (r: { stderr: unknown }) => [...String(r.stderr).matchAll(/plan cache: (.*)$/gm)].map((x) => x[1]);
    const ranks = (r: { stdout: unknown }) => String(r.stdout).split('\n').filter(Boolean).sort();
    const want = Array.from({ length: 8 }, (_, i) => `rank ${i}`).sort();

    const first = await job();
    assert.is(first.exitCode, 0, String(first.stderr));
    assert.equal(ranks(first), want);
    const n1 = notes(first);
    assert.is(n1.length, 8, n1.join('\n'));
    assert.is(n1.filter((n) => /planned and stored/.test(n)).length, 1, n1.join('\n'));
    assert.is(n1.filter((n) => /^hit \(/.test(n)).length, 7, n1.join('\n'));
    assert.is([...String(first.stderr).matchAll(/started from the start-up snapshot/g)].length, 1);

    const second = await job();
    assert.is(second.exitCode, 0, String(second.stderr));
    assert.equal(ranks(second), want);
    const n2 = notes(second);
    assert.is(n2.filter((n) => /^hit \(.*inputs unchanged\): Node not started$/.test(n)).length, 8, n2.join('\n'));
    assert.not.match(String(second.stderr), /started from the start-up snapshot/);
  });
}

Ranks.run();
