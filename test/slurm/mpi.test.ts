// Open MPI through the SPANK plugin: srun --mpi=pmix starts the ranks, each enters the
// image through the plan file, and every rank of the node shares one container (so
// cross-memory attach works and large messages don't hang). Then both MPIs between two
// nodes of the test cluster (TCP over the nodes' veths), through the plugin and plain srun.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rm } from 'node:fs/promises';
import { PINGPONG_SIZES, mpiImage, parsePingpong } from '../helpers/mpi.js';
import { jobDirs, slurmLeftovers, srun, startSlurm, waitNoJobs, workDir, type Slurm } from '../helpers/slurm.js';
import { CTR_BIN } from '../helpers/paths.js';

const Mpi = suite('slurm mpi');
let slurm: Slurm, img: string, work: string;

Mpi.before(async () => {
  img = await mpiImage();
  slurm = await startSlurm();
  work = await workDir(slurm);
});
Mpi.after.each(async () => {
  await waitNoJobs(slurm);
  assert.equal(await slurmLeftovers(slurm), [], 'processes left behind');
  assert.equal(await jobDirs(slurm), [], 'node-local job directories left behind');
});
Mpi.after(async () => {
  await slurm?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

Mpi('pmix :: srun --mpi=pmix -n2: Open MPI ping-pong, every rank in one container', async () => {
  const r = await srun(slurm, ['--mpi=pmix', '-n2', `--ctr-image=${img}`, '/opt/ctr/pingpong.openmpi', '--quick'], { cwd: work, timeout: 120000 });
  assert.is(r.exitCode, 0, String(r.stderr));
  // PMIx's shared-memory dstore (under the slurmd spool) is bound: no fallback per rank.
  assert.not.match(String(r.stderr), /PMIX ERROR/);
  const pp = parsePingpong(String(r.stdout));
  assert.ok(pp.done, 'every size exchanged and checked');
  assert.equal(Object.keys(pp.ns).sort(), ['mnt', 'user']);
  for (const kind of ['user', 'mnt']) {
    assert.is(pp.ns[kind].inodes.length, 2, kind);
    assert.ok(pp.ns[kind].same, `${kind}: ${pp.ns[kind].inodes.join(' ')}`);
  }
  assert.ok(pp.sizes.length > 0 && pp.sizes.every((s) => s.ok));
});

Mpi('pmi2 :: srun --mpi=pmi2 -n2: MPICH ping-pong, every rank in one container', async () => {
  const r = await srun(slurm, ['--mpi=pmi2', '-n2', `--ctr-image=${img}`, '/opt/ctr/pingpong.mpich', '--quick'], { cwd: work, timeout: 120000 });
  assert.is(r.exitCode, 0, String(r.stderr));
  const pp = parsePingpong(String(r.stdout));
  assert.ok(pp.done, 'every size exchanged and checked');
  for (const kind of ['user', 'mnt']) assert.ok(pp.ns[kind].same, `${kind}: ${pp.ns[kind].inodes.join(' ')}`);
  assert.ok(pp.sizes.length > 0 && pp.sizes.every((s) => s.ok));
});

Mpi('plain srun :: srun --mpi=pmix -n2 ctr exec IMG (no plugin): ranks join one container', async () => {
  const r = await srun(slurm, ['--mpi=pmix', '-n2', CTR_BIN, 'exec', img, '/opt/ctr/pingpong.openmpi', '--quick'], { cwd: work, timeout: 120000 });
  assert.is(r.exitCode, 0, String(r.stderr));
  const pp = parsePingpong(String(r.stdout));
  assert.ok(pp.done, 'every size exchanged and checked');
  for (const kind of ['user', 'mnt']) assert.ok(pp.ns[kind].same, `${kind}: ${pp.ns[kind].inodes.join(' ')}`);
});

for (const [mpi, prog, name] of [['pmix', 'openmpi', 'Open MPI'], ['pmi2', 'mpich', 'MPICH']]) {
  for (const how of ['plugin', 'plain srun']) {
    Mpi(`across nodes :: ${how} srun -N2 -n2 --mpi=${mpi}: ${name} ping-pong between two nodes, every size checked`, async () => {
      const run = how === 'plugin' ? [`--ctr-image=${img}`, `/opt/ctr/pingpong.${prog}`] : [CTR_BIN, 'exec', img, `/opt/ctr/pingpong.${prog}`];
      // Known, and not ctr's: MPICH across nodes under --mpi=pmi2 hangs now and then in
      // MPI_Finalize, bare as well (bench/mpi/pmi2-finalize-loop.sh, 100 rounds: bare 3
      // hangs, ctr 1; slurm/README.md, Known limits). In every hang every size had been
      // exchanged and checked: one rank blocked reading its PMI-2 socket to slurmstepd,
      // the other spinning in UCX progress. A step that hangs is retried once, and says
      // so on the test's stderr; a second hang fails the test.
      let r = await srun(slurm, [`--mpi=${mpi}`, '-N2', '-n2', ...run, '--quick'], { cwd: work, timeout: 45000 });
      if (r.timedOut) {
        process.stderr.write(`note: ${how} ${name} across nodes hung for 45 s; retrying once (MPICH's finalize under PMI-2 hangs bare too: slurm/README.md)\n`);
        await waitNoJobs(slurm);
        r = await srun(slurm, [`--mpi=${mpi}`, '-N2', '-n2', ...run, '--quick'], { cwd: work, timeout: 45000 });
      }
      assert.is(r.exitCode, 0, String(r.stderr));
      assert.not.match(String(r.stderr), /PMIX ERROR/);
      const pp = parsePingpong(String(r.stdout));
      assert.ok(pp.done, 'every size exchanged and checked');
      assert.equal(pp.sizes.map((x) => x.size), PINGPONG_SIZES);
      assert.ok(pp.sizes.every((x) => x.ok));
      for (const kind of ['user', 'mnt']) assert.not.ok(pp.ns[kind].same, `${kind}: one container per node: ${pp.ns[kind].inodes.join(' ')}`);
    });
  }
}

Mpi.run();
