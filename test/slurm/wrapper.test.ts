// slurm/ctr-srun, the wrapper for sites without the plugin: plan once, stage per node,
// `srun PLANFILE CMD`; interactively and in an sbatch job.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chown, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { CTR_BIN } from '../helpers/paths.js';
import { CTR_SRUN, ctrSrun, imagesInUse, jobDirs, sbatch, slurmLeftovers, startSlurm, waitNoJobs, workDir, type Slurm } from '../helpers/slurm.js';
import { userIds } from '../helpers/user.js';

const Wrapper = suite('slurm ctr-srun');
let slurm: Slurm, sif: string, work: string, uid: number;

/** The wrapper's staged copies of the test user, in each node's /tmp. */
function stagedDirs(): Promise<string[]> {
  return jobDirs(slurm, 'ctr-srun.');
}

Wrapper.before(async () => {
  sif = await busyboxSif();
  ({ uid } = await userIds());
  slurm = await startSlurm();
  work = await workDir(slurm);
});
Wrapper.after.each(async () => {
  await waitNoJobs(slurm);
  assert.equal(await slurmLeftovers(slurm), [], 'processes left behind');
  assert.equal(await jobDirs(slurm), [], 'node-local job directories left behind');
  assert.equal(await stagedDirs(), [], 'staged copies left behind');
  assert.equal((await readdir(work)).filter((n) => n.startsWith('.ctr-plan')), [], 'plan files left behind');
});
Wrapper.after(async () => {
  await slurm?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

Wrapper('srun :: -n2 runs both tasks in the image, in one user namespace', async () => {
  const r = await ctrSrun(slurm, [`--ctr-image=${sif}`, '-n2', 'sh', '-c',
    'sleep 0.3; echo "$SLURM_PROCID $(cat /etc/image-release) $(readlink /proc/self/ns/user)"'], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  const rows = String(r.stdout).trim().split('\n').sort().map((l) => l.split(' '));
  assert.equal(rows.map((x) => x.slice(0, 4).join(' ')), ['0 busybox test image', '1 busybox test image']);
  assert.is(rows[0][4], rows[1][4], 'same user namespace');
});

Wrapper('srun :: options after -- belong to the command; exit status passes through', async () => {
  const r = await ctrSrun(slurm, [`--ctr-image=${sif}`, '--ctr-env=X=1', '--ntasks=1', '--', 'sh', '-c', 'echo "x=$X"; exit 5'], { cwd: work });
  assert.is(r.stdout, 'x=1\n');
  assert.is(r.exitCode, 5);
});

Wrapper('errors :: no image, and a missing image, fail before srun', async () => {
  let r = await ctrSrun(slurm, ['-n1', 'true'], { cwd: work });
  assert.is(r.stderr, 'ctr-srun: error: no image given (--ctr-image=IMAGE or CTR_IMAGE)\n');
  assert.is(r.exitCode, 255);
  r = await ctrSrun(slurm, ['--ctr-image=/nonexistent.sif', '-n1', 'true'], { cwd: work });
  assert.is(r.stderr, 'ctr: error: image /nonexistent.sif: No such file or directory\n');
  assert.is(r.exitCode, 255);
});

for (const stage of ['yes', 'no']) {
  Wrapper(`sbatch :: a job script using ctr-srun, staging ${stage}`, async () => {
    const out = join(work, `wrapper-${stage}.out`);
    const script = join(work, `wrapper-${stage}.sh`);
    await writeFile(script, [
      '#!/bin/sh',
      '#SBATCH -n 2',
      `${CTR_SRUN} --ctr-image=${sif} --ctr-stage=${stage} -- sh -c 'echo "task $SLURM_PROCID: $(cat /etc/image-release)"; sleep 1.5'`,
      '',
    ].join('\n'), { mode: 0o755 });
    const { uid: u, gid } = await userIds();
    await chown(script, u, gid);
    const job = sbatch(slurm, ['-o', out, script], { cwd: work, env: { CTR: CTR_BIN } });
    const images = await imagesInUse(slurm);
    const r = await job;
    assert.is(r.exitCode, 0, String(r.stderr));
    const lines = (await readFile(out, 'utf8')).trim().split('\n');
    assert.equal(lines.sort(), ['task 0: busybox test image', 'task 1: busybox test image']);
    if (stage === 'yes') {
      assert.is(images.length, 1, lines.join('\n'));
      assert.match(images[0], new RegExp(`^/tmp/ctr-srun\\.${uid}\\.\\d+\\.\\d+/[0-9a-f]{10}-busybox-arch2\\.sif$`));
    } else assert.equal(images, [sif]);
  });
}

Wrapper.run();
