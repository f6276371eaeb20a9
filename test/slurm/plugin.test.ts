// The SPANK plugin against a live one-node Slurm, as the unprivileged test user:
// srun --ctr-image, sbatch, image staging on and off, and failures that must stop the
// step early and clearly (Open MPI: mpi.test.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { imagesInUse, jobDirs, sbatch, slurmLeftovers, srun, startSlurm, waitNoJobs, workDir, type Slurm } from '../helpers/slurm.js';
import { TEST_USER, userIds } from '../helpers/user.js';

const Plugin = suite('slurm plugin');
let slurm: Slurm, sif: string, work: string, uid: number;

Plugin.before(async () => {
  sif = await busyboxSif();
  ({ uid } = await userIds());
  slurm = await startSlurm();
  work = await workDir(slurm);
});
Plugin.after.each(async () => {
  await waitNoJobs(slurm);
  assert.equal(await slurmLeftovers(slurm), [], 'processes left behind');
  assert.equal(await jobDirs(slurm), [], 'node-local job directories left behind');
});
Plugin.after(async () => {
  await slurm?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** srun's stderr without the lines Slurm adds about queueing. */
const errLines = (s: unknown) => String(s).split('\n').filter((l) => l && !/queued and waiting|has been allocated/.test(l));

Plugin('srun :: -n2 runs both tasks in the image, in one user namespace', async () => {
  const r = await srun(slurm, ['-n2', `--ctr-image=${sif}`, 'sh', '-c',
    'cat /etc/image-release; echo "task $SLURM_PROCID $(id -un) $(readlink /proc/self/ns/user)"'], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  const lines = String(r.stdout).trim().split('\n').sort();
  assert.equal(lines.slice(0, 2), ['busybox test image', 'busybox test image']);
  const tasks = lines.slice(2).map((l) => l.split(' '));
  assert.equal(tasks.map((t) => t.slice(0, 3).join(' ')), [`task 0 ${TEST_USER}`, `task 1 ${TEST_USER}`]);
  assert.is(tasks[0][3], tasks[1][3], 'same user namespace');
  assert.not.equal(tasks[0][3], (await execa('readlink', ['/proc/self/ns/user'])).stdout, 'not the host user namespace');
});

Plugin('srun :: the command is looked up in the image; arguments, exit status and plan variable', async () => {
  const r = await srun(slurm, [`--ctr-image=${sif}`, '--ctr-env=GREETING=hi', 'sh', '-c',
    'echo "$GREETING $IMAGE_VAR"; env | grep -c _CTR_SPANK_PLAN; exit 3'], { cwd: work });
  assert.is(r.stdout, 'hi from the image\n0\n');
  assert.is(r.exitCode, 3);
});

Plugin('srun :: CTR_IMAGE and CTR_BIND stand in for the options', async () => {
  await writeFile(join(work, 'note'), 'bound\n');
  const r = await srun(slurm, ['cat', '/data/note'], { cwd: '/', env: { CTR_IMAGE: sif, CTR_BIND: `${work}:/data:ro` } });
  assert.is(r.stdout, 'bound\n');
  assert.is(r.exitCode, 0);
});

Plugin('options :: --ctr-remap-root is uid 0 inside; --ctr-entrypoint runs the runscript with the command as arguments', async () => {
  let r = await srun(slurm, ['-n2', `--ctr-image=${sif}`, '--ctr-remap-root', 'id', '-u'], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  assert.is(r.stdout, '0\n0\n');
  r = await srun(slurm, ['-n1', `--ctr-image=${sif}`, '--ctr-entrypoint', 'a', 'b'], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  assert.is(r.stdout, 'runscript: a b\n');
});

Plugin('staging :: on by default: the tasks run from a node-local copy', async () => {
  const run = srun(slurm, ['-n2', `--ctr-image=${sif}`, 'sleep', '1.5'], { cwd: work });
  const images = await imagesInUse(slurm);
  const r = await run;
  assert.is(r.exitCode, 0, String(r.stderr));
  assert.is(images.length, 1, images.join(' '));
  assert.match(images[0], new RegExp(`^/tmp/ctr\\.${uid}\\.\\d+/[0-9a-f]{10}-busybox-arch2\\.sif$`));
});

Plugin('staging :: --ctr-stage=no and CTR_STAGE=0 run the image where it is', async () => {
  for (const [args, env] of [[['--ctr-stage=no'], {}], [[], { CTR_STAGE: '0' }]] as const) {
    const run = srun(slurm, [...args, `--ctr-image=${sif}`, 'sleep', '1.5'], { cwd: work, env });
    const images = await imagesInUse(slurm);
    const r = await run;
    assert.is(r.exitCode, 0, String(r.stderr));
    assert.equal(images, [sif]);
  }
});

Plugin('sbatch :: --ctr-image on sbatch reaches the job\'s srun steps; the script runs on the host', async () => {
  const out = join(work, 'sbatch-plugin.out');
  const r = await sbatch(slurm, ['-n2', `--ctr-image=${sif}`, '-o', out, '--wrap',
    'test -e /etc/image-release || echo "script on host"; srun sh -c "echo task \\$SLURM_PROCID: \\$(cat /etc/image-release)"'], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  const lines = (await readFile(out, 'utf8')).trim().split('\n');
  assert.is(lines[0], 'script on host');
  assert.equal(lines.slice(1).sort(), ['task 0: busybox test image', 'task 1: busybox test image']);
});

Plugin('failure :: a missing image fails in srun before any task starts', async () => {
  const r = await srun(slurm, ['-n2', '--ctr-image=/nonexistent/image.sif', 'true'], { cwd: work });
  assert.is(r.exitCode, 1);
  assert.equal(errLines(r.stderr), [
    'ctr: error: image /nonexistent/image.sif: No such file or directory',
    'srun: error: ctr: could not plan the container for this step (ctr plan exited 255); no task was started',
    'srun: error: spank: required plugin ctr_spank.so: init_post_opt() failed with rc=-1',
    'srun: error: Plugin stack post-option processing failed.',
  ]);
});

Plugin('failure :: a bind source missing everywhere fails on the node before the task starts', async () => {
  // Bind sources are resolved on the node (node-local storage need not exist on the
  // submit host): each task names its node.
  const r = await srun(slurm, ['-n2', `--ctr-image=${sif}`, '--ctr-bind=/nonexistent:/data', 'true'], { cwd: work });
  assert.is(r.exitCode, 1);
  const lines = errLines(r.stderr);
  for (const t of [0, 1]) assert.ok(lines.includes(`slurmstepd-${slurm.node}: error: ctr: node ${slurm.node} task ${t}: bind source /nonexistent: No such file or directory`), lines.join('\n'));
});

/** Run srun where PRIVATE (a tmpfs) exists for srun but not on the node: a path that is not shared. */
function srunWithPrivate(args: string[], setup: string) {
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return execa('unshare', ['-m', 'sh', '-c',
    `mount -t tmpfs -o mode=755 none /mnt && ${setup} && ${slurm.head.join(' ')} runuser -u ${TEST_USER} -- env SLURM_CONF=${slurm.conf} srun ${quoted}`],
  { reject: false, cwd: work });
}

Plugin('failure :: an image missing on the node names node and task, fails every task', async () => {
  const r = await srunWithPrivate(['-n2', '--ctr-stage=no', '--ctr-image=/mnt/img.sif', 'true'], `cp ${sif} /mnt/img.sif`);
  assert.is(r.exitCode, 1);
  const lines = errLines(r.stderr);
  for (const t of [0, 1]) assert.ok(lines.includes(`slurmstepd-${slurm.node}: error: ctr: node ${slurm.node} task ${t}: image /mnt/img.sif: No such file or directory`), lines.join('\n'));
  assert.is(lines[lines.length - 1], `srun: error: ${slurm.node}: tasks 0-1: Exited with exit code 1`);
});

Plugin('failure :: staging an image missing on the node names node and task, fails every task', async () => {
  const r = await srunWithPrivate(['-n2', '--ctr-image=/mnt/img.sif', 'true'], `cp ${sif} /mnt/img.sif`);
  assert.is(r.exitCode, 1);
  const lines = errLines(r.stderr);
  for (const t of [0, 1]) {
    assert.ok(lines.some((l) => new RegExp(`^slurmstepd-${slurm.node}: error: ctr: node ${slurm.node} task ${t}: cannot stage image /mnt/img\\.sif into /tmp/ctr\\.${uid}\\.\\d+: No such file or directory$`).test(l)), lines.join('\n'));
  }
  assert.is(lines[lines.length - 1], `srun: error: ${slurm.node}: tasks 0-1: Exited with exit code 1`);
});

Plugin('failure :: a bind source missing on the node names node and task', async () => {
  const r = await srunWithPrivate(['-n2', `--ctr-image=${sif}`, '--ctr-bind=/mnt/data', 'true'], 'mkdir /mnt/data');
  assert.is(r.exitCode, 1);
  const lines = errLines(r.stderr);
  for (const t of [0, 1]) assert.ok(lines.includes(`slurmstepd-${slurm.node}: error: ctr: node ${slurm.node} task ${t}: bind source /mnt/data: No such file or directory`), lines.join('\n'));
});

Plugin.run();
