// Steps across the nodes of the test cluster (test/helpers/cluster.ts), as the
// unprivileged test user: one container per node through the plugin, ctr-srun and plain
// `srun ctr exec`; node-private staging reused by a job's later steps and gone after it;
// a failure on one node named once; a killed rank; sbatch with #SBATCH --ctr-image;
// --multi-prog through the plugin and ctr-srun.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chown, copyFile, mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { CTR_BIN } from '../helpers/paths.js';
import {
  CTR_SRUN, cluster, clusterLeftovers, ctrSrun, jobDirs, onNode, sbatch, sharedTmp, srun, waitNoJobs,
  type Cluster,
} from '../helpers/cluster.js';
import { userIds } from '../helpers/user.js';

const Multi = suite('slurm multinode');
let c: Cluster, sif: string, work: string, uid: number, gid: number;

Multi.before(async () => {
  sif = await busyboxSif();
  ({ uid, gid } = await userIds());
  c = await cluster();
  work = await sharedTmp(c, 'multinode-');
});
Multi.after.each(async () => {
  await waitNoJobs(c);
  assert.equal(await clusterLeftovers(c), [], 'processes left behind');
  assert.equal(await jobDirs(c), [], 'node-local job directories left behind');
  assert.equal(await jobDirs(c, 'ctr-srun.'), [], 'ctr-srun staged copies left behind');
  assert.equal((await readdir(work)).filter((n) => n.startsWith('.ctr-plan')), [], 'ctr-srun plan files left behind');
});
Multi.after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const errLines = (s: unknown) => String(s).split('\n').filter((l) => l && !/queued and waiting|has been allocated/.test(l));

/** "host ns" lines → node → the set of namespaces its ranks saw, and ranks per node. */
function perNode(stdout: unknown): Map<string, { ns: Set<string>; ranks: number }> {
  const m = new Map<string, { ns: Set<string>; ranks: number }>();
  for (const line of String(stdout).trim().split('\n')) {
    const [host, ns] = line.split(' ');
    const e = m.get(host) ?? { ns: new Set<string>(), ranks: 0 };
    e.ns.add(ns);
    e.ranks++;
    m.set(host, e);
  }
  return m;
}

function oneContainerPerNode(stdout: unknown): void {
  const m = perNode(stdout);
  assert.equal([...m.keys()].sort(), c.nodes, String(stdout));
  for (const [host, e] of m) {
    assert.is(e.ranks, 2, `${host}: ${String(stdout)}`);
    assert.is(e.ns.size, 1, `${host}: one container: ${String(stdout)}`);
  }
  const all = new Set([...m.values()].map((e) => [...e.ns][0]));
  assert.is(all.size, c.nodes.length, `three distinct containers: ${String(stdout)}`);
}

const SHOW = 'echo "$(hostname) $(readlink /proc/self/ns/user)"';

Multi('plugin :: srun -N3 -n6 --ctr-image: one container per node, three distinct', async () => {
  const r = await srun(c, ['-N3', '-n6', `--ctr-image=${sif}`, 'sh', '-c', SHOW], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  oneContainerPerNode(r.stdout);
});

Multi('ctr-srun :: -N3 -n6: one container per node, three distinct', async () => {
  const r = await ctrSrun(c, [`--ctr-image=${sif}`, '-N3', '-n6', 'sh', '-c', SHOW], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  oneContainerPerNode(r.stdout);
});

Multi('plain srun :: srun -N3 -n6 ctr exec: a late rank still joins its node\'s container', async () => {
  // The first rank of a node may finish before the second starts: the container must
  // wait for the node's task count (SLURM_STEP_TASKS_PER_NODE), not build a second one.
  for (let round = 0; round < 3; round++) {
    const r = await srun(c, ['-N3', '-n6', CTR_BIN, 'exec', sif, 'sh', '-c', SHOW], { cwd: work });
    assert.is(r.exitCode, 0, String(r.stderr));
    oneContainerPerNode(r.stdout);
  }
});

Multi('staging :: each node gets its own copy, reused by the next step, gone after the job', async () => {
  const out = join(work, 'staging.out');
  // Each task prints its node and the staged copy's device:inode as the node sees it.
  const step = `srun --ntasks-per-node=1 --ctr-image=${sif} sh -c 'echo "$(hostname) $(stat -c %d:%i /tmp/ctr.${uid}.$SLURM_JOB_ID/*.sif)"'`;
  const r = await sbatch(c, ['-N3', '-n3', '-o', out, '--wrap', `${step} && ${step}`], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  const lines = (await readFile(out, 'utf8')).trim().split('\n');
  assert.is(lines.length, 6, lines.join('\n'));
  const byNode = new Map<string, Set<string>>();
  for (const l of lines) {
    const [host, id] = l.split(' ');
    assert.match(id, /^\d+:\d+$/, l);
    byNode.set(host, (byNode.get(host) ?? new Set()).add(id));
  }
  assert.equal([...byNode.keys()].sort(), c.nodes);
  for (const [host, ids] of byNode) assert.is(ids.size, 1, `${host}: the second step reused the first's copy: ${lines.join('\n')}`);
  const devices = new Set([...byNode.values()].map((ids) => [...ids][0].split(':')[0]));
  assert.is(devices.size, c.nodes.length, `each copy on its node's own /tmp: ${lines.join('\n')}`);
});

/** A file or directory at PATH on the submit host and on the nodes ON, not on the others. */
async function onSome(path: string, on: string[], make: (p: string) => Promise<void>): Promise<() => Promise<void>> {
  const places = [path, ...on.map((n) => onNode(c, n, path))];
  for (const p of places) {
    await mkdir(join(p, '..'), { recursive: true });
    await make(p);
  }
  return async () => { for (const p of places) await rm(p, { recursive: true, force: true }); };
}

Multi('failure :: an image missing on one node: one line naming that node and task, the step fails', async () => {
  const img = `/tmp/ctr-multinode-${process.pid}.sif`;
  const undo = await onSome(img, c.nodes.slice(0, 2), async (p) => { await copyFile(sif, p); await chown(p, uid, gid); });
  try {
    const r = await srun(c, ['-N3', '-n3', '--ctr-stage=no', `--ctr-image=${img}`, 'true'], { cwd: work });
    assert.is.not(r.exitCode, 0);
    const lines = errLines(r.stderr).filter((l) => l.includes('ctr: node'));
    assert.equal(lines, [`slurmstepd-ctrn3: error: ctr: node ctrn3 task 2: image ${img}: No such file or directory`], errLines(r.stderr).join('\n'));
  } finally {
    await undo();
  }
});

Multi('failure :: a bind source missing on one node: one line naming that node and task', async () => {
  const dir = `/tmp/ctr-multinode-${process.pid}.d`;
  const undo = await onSome(dir, c.nodes.slice(0, 2), async (p) => { await mkdir(p); });
  try {
    const r = await srun(c, ['-N3', '-n3', `--ctr-image=${sif}`, `--ctr-bind=${dir}:/data`, 'true'], { cwd: work });
    assert.is.not(r.exitCode, 0);
    const lines = errLines(r.stderr).filter((l) => l.includes('ctr: node'));
    assert.equal(lines, [`slurmstepd-ctrn3: error: ctr: node ctrn3 task 2: bind source ${dir}: No such file or directory`], errLines(r.stderr).join('\n'));
  } finally {
    await undo();
  }
});

Multi('on the node :: a bind source only the nodes have is bound, each node its own', async () => {
  const dir = `/tmp/ctr-multinode-${process.pid}.local`;
  for (const n of c.nodes) {
    await mkdir(onNode(c, n, dir));
    await writeFile(onNode(c, n, `${dir}/which`), `${n}\n`);
  }
  try {
    const r = await srun(c, ['-N3', '-n3', `--ctr-image=${sif}`, `--ctr-bind=${dir}:/scratch`, 'sh', '-c', 'echo "$(hostname) $(cat /scratch/which)"'], { cwd: work });
    assert.is(r.exitCode, 0, String(r.stderr));
    assert.equal(String(r.stdout).trim().split('\n').sort(), c.nodes.map((n) => `${n} ${n}`));
  } finally {
    for (const n of c.nodes) await rm(onNode(c, n, dir), { recursive: true, force: true });
  }
});

Multi('on the node :: a working directory one node lacks: there the tasks start in /tmp, as Slurm\'s, and it says so', async () => {
  const dir = `/tmp/ctr-multinode-${process.pid}.cwd`;
  const undo = await onSome(dir, c.nodes.slice(0, 2), async (p) => { await mkdir(p); await chown(p, uid, gid); });
  try {
    const r = await srun(c, ['-N3', '-n3', `--ctr-image=${sif}`, 'sh', '-c', 'echo "$(hostname) $(pwd)"'], { cwd: dir });
    assert.is(r.exitCode, 0, String(r.stderr));
    assert.equal(String(r.stdout).trim().split('\n').sort(), [`ctrn1 ${dir}`, `ctrn2 ${dir}`, 'ctrn3 /tmp']);
    const said = errLines(r.stderr).filter((l) => l.includes('ctr: node'));
    assert.equal(said, [`slurmstepd-ctrn3: error: ctr: node ctrn3: working directory ${dir}: No such file or directory here; the tasks start in /tmp, as Slurm's do`]);
  } finally {
    await undo();
  }
});

Multi('staging :: two images of one name, size and mtime in one job are two copies', async () => {
  const a = join(work, 'a'), b = join(work, 'b');
  for (const d of [a, b]) {
    await mkdir(d);
    await copyFile(sif, join(d, 'img.sif'));
    await utimes(join(d, 'img.sif'), 1700000000, 1700000000);
  }
  const out = join(work, 'two.out');
  const step = (d: string) => `srun -n1 --ctr-image=${d}/img.sif sh -c 'ls /tmp/ctr.${uid}.$SLURM_JOB_ID | sort | tr "\\n" " "; echo'`;
  const r = await sbatch(c, ['-N1', '-n1', '-o', out, '--wrap', `${step(a)} && ${step(b)}`], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  const [first, second] = (await readFile(out, 'utf8')).trim().split('\n').map((l) => l.trim().split(' '));
  assert.equal(first, ['img.sif', 'step0.plan'], String(first));
  assert.is(second.length, 3, String(second));
  assert.ok(second.includes('img.sif') && second.some((f) => /^\d+-\d+-img\.sif$/.test(f)), String(second));
});

Multi('plugin :: srun --export=NONE still carries the plan to every node', async () => {
  const r = await srun(c, ['-N3', '-n3', '--export=NONE', `--ctr-image=${sif}`, 'sh', '-c', 'echo "$(hostname) $(cat /etc/image-release)"'], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  assert.equal(String(r.stdout).trim().split('\n').sort(), c.nodes.map((n) => `${n} busybox test image`));
});

Multi('multi-prog :: ctr-srun --multi-prog: each task its line, every task of a node in one container', async () => {
  const conf = join(work, 'multi.conf');
  await writeFile(conf, `# a comment\n0-5 sh -c 'echo "$(hostname) $(readlink /proc/self/ns/user) $SLURM_PROCID $(cat /etc/image-release)"'\n`);
  await chown(conf, uid, gid);
  const r = await ctrSrun(c, [`--ctr-image=${sif}`, '-N3', '-n6', '--multi-prog', conf], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  const lines = String(r.stdout).trim().split('\n');
  assert.equal(lines.map((l) => l.split(' ')[2]).sort(), ['0', '1', '2', '3', '4', '5']);
  assert.ok(lines.every((l) => l.endsWith(' busybox test image')), lines.join('\n'));
  oneContainerPerNode(lines.map((l) => l.split(' ').slice(0, 2).join(' ')).join('\n'));
});

/** A --multi-prog configuration file of LINES, the test user's. */
/** A batch script of LINES (after #!/bin/sh), the user's, run by sbatch: its output's lines. */
async function batchJob(name: string, lines: string[]): Promise<string[]> {
  const out = join(work, `${name}.out`), script = join(work, `${name}.sh`);
  await writeFile(script, ['#!/bin/sh', ...lines, ''].join('\n'), { mode: 0o755 });
  await chown(script, uid, gid);
  const r = await sbatch(c, ['-o', out, script], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  return (await readFile(out, 'utf8')).trim().split('\n');
}

async function multiConf(name: string, lines: string[]): Promise<string> {
  const conf = join(work, name);
  await writeFile(conf, `${lines.join('\n')}\n`);
  await chown(conf, uid, gid);
  return conf;
}

// Each line: its letter, rank (%t), offset in its range (%o), node, user namespace and a
// file only the image has. Ranks 2 and 3 share a node but not a line. slurmstepd expands
// %t and %o outside quotes only.
const MP_ECHO = `'echo "$0 $1 $2 $(hostname) $(readlink /proc/self/ns/user) $(cat /etc/image-release)"'`;
const MP_SHOW = (letter: string) => `sh -c ${MP_ECHO} ${letter} %t %o`;
const MP_CONF = [
  '# every command runs in the image',
  `0-2 ${MP_SHOW('A')}`,
  '',
  `3,4 ${MP_SHOW('B')}`,
  '5   sh -c\\', // continued (to slurmstepd a space before the backslash would be an empty argument)
  `    ${MP_ECHO} C %t %o`,
];

/** Each rank's line from MP_CONF, then one container per node. */
function multiProgRan(stdout: unknown): void {
  const lines = String(stdout).trim().split('\n').map((l) => l.split(' '));
  const want = ['A 0 0', 'A 1 1', 'A 2 2', 'B 3 0', 'B 4 1', 'C 5 0'];
  assert.equal(lines.map((l) => l.slice(0, 3).join(' ')).sort(), want, String(stdout));
  assert.ok(lines.every((l) => l.slice(5).join(' ') === 'busybox test image'), String(stdout));
  oneContainerPerNode(lines.map((l) => `${l[3]} ${l[4]}`).join('\n'));
}

Multi('multi-prog :: srun --ctr-image --multi-prog: each task its line (%t, %o), in the image, one container per node', async () => {
  const conf = await multiConf('plugin.conf', MP_CONF);
  const r = await srun(c, ['-N3', '-n6', `--ctr-image=${sif}`, '--multi-prog', conf], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  multiProgRan(r.stdout);
});

Multi('multi-prog :: a failing task\'s exit status is the step\'s', async () => {
  // 7 only where the image's file is there: a task run outside would exit 1.
  const conf = await multiConf('fail.conf', ['0-4 true', '5 sh -c \'test -e /etc/image-release && exit 7\'']);
  const r = await srun(c, ['-N3', '-n6', `--ctr-image=${sif}`, '--multi-prog', conf], { cwd: work });
  assert.is(r.exitCode, 7, String(r.stderr));
  assert.ok(errLines(r.stderr).some((l) => /ctrn3: task 5: Exited with exit code 7/.test(l)), errLines(r.stderr).join('\n'));
});

Multi('multi-prog :: #SBATCH --ctr-image: a --multi-prog step beside a plain one', async () => {
  const conf = await multiConf('sbatch.conf', MP_CONF);
  const lines = await batchJob('mp-job', ['#SBATCH -N3', '#SBATCH -n6', `#SBATCH --ctr-image=${sif}`, `srun --multi-prog ${conf}`,
    'srun -n3 --ntasks-per-node=1 sh -c \'echo "plain $(hostname) $(cat /etc/image-release)"\'']);
  multiProgRan(lines.filter((l) => !l.startsWith('plain ')).join('\n'));
  assert.equal(lines.filter((l) => l.startsWith('plain ')).sort(), c.nodes.map((n) => `plain ${n} busybox test image`));
});

Multi('multi-prog :: srun and the nodes with different stage_dirs: no task runs, each says why', async () => {
  // srun reads a plugstack.conf of its own (a slurm.conf naming it); the nodes keep theirs.
  const plugstack = join(work, 'plugstack.conf'), conf = join(work, 'slurm.conf');
  await writeFile(plugstack, (await readFile(join(c.dir, 'plugstack.conf'), 'utf8')).replace('stage_dir=/tmp', 'stage_dir=/var/tmp'));
  await writeFile(conf, (await readFile(c.conf, 'utf8')).replace(/^PlugStackConfig=.*$/m, `PlugStackConfig=${plugstack}`));
  const mp = await multiConf('stage.conf', ['0-1 true']);
  const r = await srun(c, ['-N2', '-n2', `--ctr-image=${sif}`, '--multi-prog', mp], { cwd: work, env: { SLURM_CONF: conf } });
  assert.is(r.exitCode, 1, String(r.stderr));
  const said = errLines(r.stderr).filter((l) => l.includes('ctr: node')).sort();
  const job = /\/var\/tmp\/ctr\.\d+\.(\d+)\//.exec(said[0] ?? '')?.[1];
  assert.equal(said, ['ctrn1 task 0', 'ctrn2 task 1'].map((t) => `slurmstepd-${t.split(' ')[0]}: error: ctr: node ${t}: --multi-prog: ` +
    `srun put the plan file /var/tmp/ctr.${uid}.${job}/step0.plan in front of the commands, this node writes it to ` +
    `/tmp/ctr.${uid}.${job}/step0.plan: give srun and the nodes the same stage_dir in plugstack.conf`), errLines(r.stderr).join('\n'));
});

Multi('failure :: one rank killed on one node: the step ends, nothing left on any node', async () => {
  const r = await srun(c, ['-N3', '-n3', '-K', `--ctr-image=${sif}`, 'sh', '-c',
    'if [ "$SLURM_PROCID" = 1 ]; then sleep 1; kill -9 $$; fi; exec sleep 60'], { cwd: work, timeout: 50000 });
  assert.is.not(r.exitCode, 0);
  assert.not.ok(r.timedOut, 'srun ended');
  assert.ok(errLines(r.stderr).some((l) => /ctrn2: task 1: Killed/.test(l)), errLines(r.stderr).join('\n'));
});

Multi('sbatch :: #SBATCH --ctr-image reaches every step on every node', async () => {
  const lines = await batchJob('job', ['#SBATCH -N3', '#SBATCH -n3', `#SBATCH --ctr-image=${sif}`,
    'test -e /etc/image-release || echo "script on host"',
    'srun sh -c \'echo "step 0 $(hostname): $(cat /etc/image-release)"\'',
    'srun sh -c \'echo "step 1 $(hostname): $(cat /etc/image-release)"\'']);
  assert.is(lines[0], 'script on host');
  assert.equal(lines.slice(1).sort(), [0, 1].flatMap((s) => c.nodes.map((n) => `step ${s} ${n}: busybox test image`)));
});

for (const stage of ['yes', 'sbcast']) {
  Multi(`ctr-srun :: in an sbatch job across nodes, staged on each node (--ctr-stage=${stage}) and removed`, async () => {
    const out = join(work, `wrapper-${stage}.out`);
    const r = await sbatch(c, ['-N3', '-n3', '-o', out, '--wrap',
      `${CTR_SRUN} --ctr-image=${sif} --ctr-stage=${stage} -- sh -c 'echo "$(hostname) $(ls /tmp/ctr-srun.${uid}.*/*.sif)"'`], { cwd: work, env: { CTR: CTR_BIN } });
    assert.is(r.exitCode, 0, String(r.stderr));
    const lines = (await readFile(out, 'utf8')).trim().split('\n').sort();
    assert.is(lines.length, 3, lines.join('\n'));
    lines.forEach((l, i) => assert.match(l, new RegExp(`^${c.nodes[i]} /tmp/ctr-srun\\.${uid}\\.\\d+\\.\\d+/[0-9a-f]{10}-busybox-arch2\\.sif$`)));
  });
}

Multi.run();
