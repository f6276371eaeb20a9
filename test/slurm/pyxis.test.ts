// pyxis parity and node-side work of the plugin, across the test cluster's three nodes,
// as the unprivileged test user: --ctr-name (a job's later steps join each node's kept
// container, gone at job end), --ctr-mount-home / --no-ctr-mount-home, --ctr-stage=sbcast
// (srun broadcasts, each node takes its copy), and --ctr-nv looked up on each node.
//
// The NVIDIA driver here is a LAYOUT FIXTURE, not a driver (no GPU is used): gcc-built
// lib*.so.<version> files with their soname links and an nvidia-smi script, laid out the
// way the driver installs them, in ONE node's private /var/tmp only (absent on the
// submit host and the other nodes), which CTR_NV_ROOT points discovery at.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { chown, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { CTR_BIN } from '../helpers/paths.js';
import { CTR_SRUN, cluster, clusterLeftovers, jobDirs, onNode, sbatch, sharedTmp, srun, waitNoJobs, type Cluster } from '../helpers/cluster.js';
import { TEST_USER, userIds } from '../helpers/user.js';

const P = suite('slurm pyxis parity');
let c: Cluster, sif: string, work: string, uid: number, gid: number;

P.before(async () => {
  sif = await busyboxSif();
  ({ uid, gid } = await userIds());
  c = await cluster();
  work = await sharedTmp(c, 'pyxis-');
});
P.after.each(async () => {
  await waitNoJobs(c).catch((e) => { console.error('after.each:', e); throw e; });
  const procs = await clusterLeftovers(c);
  if (procs.length) console.error('after.each: processes left behind:', procs);
  assert.equal(procs, [], 'processes left behind');
  const dirs = await jobDirs(c);
  if (dirs.length) console.error('after.each: job directories left behind:', dirs);
  assert.equal(dirs, [], 'node-local job directories or broadcasts left behind');
  const left = await jobDirs(c, 'ctr-srun.');
  if (left.length) console.error('after.each: ctr-srun directories left behind:', left);
  assert.equal(left, [], 'ctr-srun directories left behind');
});
P.after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const errLines = (s: unknown) => String(s).split('\n').filter((l) => l && !/queued and waiting|has been allocated/.test(l));

async function script(name: string, lines: string[]): Promise<string> {
  const f = join(work, name);
  await writeFile(f, ['#!/bin/sh', ...lines, ''].join('\n'), { mode: 0o755 });
  await chown(f, uid, gid);
  return f;
}

/** OUT's "TAG NODE MNT-NS" lines: on every node, the "second" step joined the "first"'s
 * kept container, and the "plain" (unnamed) step has one of its own. Returns what it read. */
async function assertNamedJoined(out: string): Promise<{ text: string; lines: string[]; first: Map<string, string> }> {
  const text = await readFile(out, 'utf8');
  const lines = text.trim().split('\n');
  const ns = (tag: string) => new Map(lines.filter((l) => l.startsWith(`${tag} `)).map((l) => [l.split(' ')[1], l.split(' ')[2]]));
  const first = ns('first'), second = ns('second'), plain = ns('plain');
  assert.equal([...first.keys()].sort(), c.nodes, text);
  for (const n of c.nodes) {
    assert.is(second.get(n), first.get(n), `${n}: the second step joined the first's container\n${text}`);
    assert.is.not(plain.get(n), first.get(n), `${n}: an unnamed step has its own\n${text}`);
  }
  return { text, lines, first };
}

P('--ctr-name :: a later step of the job joins each node\'s kept container; an unnamed step does not; gone at job end', async () => {
  const out = join(work, 'name.out');
  const show = (tag: string) => `srun sh -c 'echo "${tag} $(hostname) $(readlink /proc/self/ns/mnt)"'`;
  const job = await script('name.sh', [
    '#SBATCH -N3', '#SBATCH -n3', `#SBATCH --ctr-image=${sif}`,
    `${show('first').replace('srun', 'srun --ctr-name=warm')}`,
    `${show('second').replace('srun', 'srun --ctr-name=warm')}`,
    `${show('plain')}`,
    `srun -N1 -n1 --ctr-name=warm sh -c 'ls /tmp/ctr.${uid}.$SLURM_JOB_ID | grep name.'`,
  ]);
  const r = await sbatch(c, ['-o', out, job], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  const { text, lines, first } = await assertNamedJoined(out);
  assert.is(new Set(first.values()).size, 3, text);
  assert.ok(lines.includes('name.warm'), text);
});

P('--ctr-name :: a bad name is one error line in srun, before any task starts', async () => {
  const r = await srun(c, ['-n1', `--ctr-image=${sif}`, '--ctr-name=a:exec', 'true'], { cwd: work });
  assert.is.not(r.exitCode, 0);
  assert.match(errLines(r.stderr)[0], /^srun: error: ctr: --ctr-name takes a name of 1 to 64 letters, digits, '\.', '_' or '-', not "a:exec" \(pyxis's NAME:FLAG forms are not supported\)$/);
});

P('--ctr-mount-home :: home bound by default and with it; --no-ctr-mount-home (and the old --no-ctr-home) leave it out', async () => {
  const home = `/home/${TEST_USER}`;
  const mark = join(home, `.ctr-pyxis-home-${process.pid}`);
  await writeFile(mark, 'home\n');
  await chown(mark, uid, gid);
  try {
    const see = `cat ${mark} 2>/dev/null || echo none`;
    const run = async (flags: string[], env: Record<string, string> = {}) => {
      const r = await srun(c, ['-N2', '-n2', `--ctr-image=${sif}`, ...flags, 'sh', '-c', see], { cwd: work, env });
      assert.is(r.exitCode, 0, String(r.stderr));
      return [...new Set(String(r.stdout).trim().split('\n'))];
    };
    assert.equal(await run([]), ['home']);
    assert.equal(await run(['--ctr-mount-home']), ['home']);
    assert.equal(await run(['--no-ctr-mount-home']), ['none']);
    assert.equal(await run(['--no-ctr-home']), ['none']);
    assert.equal(await run([], { CTR_MOUNT_HOME: '0' }), ['none']);
    assert.equal(await run(['--ctr-mount-home'], { CTR_NO_HOME: '1' }), ['home'], 'the option wins over the variable');
  } finally {
    await rm(mark, { force: true });
  }
});

P('--ctr-stage=sbcast :: srun broadcasts the image to the job\'s nodes, each node\'s step takes its copy, the rest go at job end', async () => {
  const out = join(work, 'sbcast.out');
  const job = await script('sbcast.sh', [
    '#SBATCH -N3', '#SBATCH -n3',
    `srun -N1 -n1 -w ctrn1 --ctr-image=${sif} --ctr-stage=sbcast sh -c 'echo "step $(hostname) $(ls /tmp/ctr.${uid}.$SLURM_JOB_ID | tr "\\n" " ")"'`,
    `srun -N3 -n3 sh -c 'echo "node $(hostname) $(ls /tmp | grep "^ctr\\.${uid}\\.$SLURM_JOB_ID" | tr "\\n" " ")"'`,
    `srun -N3 -n3 --ctr-image=${sif} --ctr-stage=sbcast sh -c 'echo "again $(hostname) $(cat /etc/image-release)"'`,
    `srun -N3 -n3 sh -c 'echo "after $(hostname) $(ls /tmp | grep -c "^ctr\\.${uid}\\.$SLURM_JOB_ID\\.bcast")"'`,
  ]);
  const r = await sbatch(c, ['-o', out, job], { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr));
  const lines = (await readFile(out, 'utf8')).trim().split('\n').map((l) => l.trim());
  const base = sif.split('/').pop() ?? '';
  assert.ok(lines.includes(`step ctrn1 .${base}.src ${base} step0.plan`) || lines.includes(`step ctrn1 ${base} step0.plan`), lines.join('\n'));
  const job0 = (n: string) => lines.find((l) => l.startsWith(`node ${n} `)) ?? '';
  assert.match(job0('ctrn1'), new RegExp(`^node ctrn1 ctr\\.${uid}\\.\\d+$`), 'ctrn1 took its broadcast copy');
  for (const n of ['ctrn2', 'ctrn3']) {
    assert.match(job0(n), new RegExp(`^node ${n} ctr\\.${uid}\\.\\d+\\.bcast\\.\\d+-\\d+-${base.replace(/\./g, '\\.')}$`), `${n} got the broadcast: ${lines.join('\n')}`);
  }
  assert.equal(lines.filter((l) => l.startsWith('again ')).sort(), c.nodes.map((n) => `again ${n} busybox test image`));
  assert.equal(lines.filter((l) => l.startsWith('after ')).sort(), c.nodes.map((n) => `after ${n} 0`), 'every broadcast taken or removed');
});

/** A shared object NAME with soname SONAME, as the driver ships its libraries (gcc). */
async function sharedObject(dir: string, name: string, soname: string): Promise<void> {
  const src = join(dir, `${name}.c`);
  await writeFile(src, `const char *ctr_fixture_name(void) { return "${name}"; }\n`);
  await execa('gcc', ['-shared', '-fPIC', `-Wl,-soname,${soname}`, '-o', join(dir, name), src]);
  await rm(src);
}

const V = '550.54.14';

/** The layout fixture at PREFIX (PREFIX/lib64, PREFIX/bin), as the driver installs itself. */
async function nvLayout(prefix: string): Promise<void> {
  await mkdir(join(prefix, 'lib64'), { recursive: true });
  await mkdir(join(prefix, 'bin'));
  await sharedObject(join(prefix, 'lib64'), `libcuda.so.${V}`, 'libcuda.so.1');
  await symlink(`libcuda.so.${V}`, join(prefix, 'lib64/libcuda.so.1'));
  await symlink('libcuda.so.1', join(prefix, 'lib64/libcuda.so'));
  await sharedObject(join(prefix, 'lib64'), `libnvidia-ml.so.${V}`, 'libnvidia-ml.so.1');
  await symlink(`libnvidia-ml.so.${V}`, join(prefix, 'lib64/libnvidia-ml.so.1'));
  await writeFile(join(prefix, 'bin/nvidia-smi'), '#!/bin/sh\necho "nvidia-smi (layout fixture)"\n', { mode: 0o755 });
  await execa('chmod', ['-R', 'a+rX', prefix]);
}

P('--ctr-nv :: each node looks up its own driver: the node with the layout fixture binds it first on the path, the others warn and run', async () => {
  const rel = `/var/tmp/ctr-nvfix-${process.pid}`;
  assert.not.ok(existsSync(rel), 'the fixture must not exist on the submit host');
  const prefix = onNode(c, 'ctrn2', rel);
  await nvLayout(prefix);
  try {
    const r = await srun(c, ['-N3', '-n3', `--ctr-image=${sif}`, '--ctr-nv', 'sh', '-c',
      'echo "$(hostname)|$LD_LIBRARY_PATH|$(ls /.singularity.d/libs 2>/dev/null | tr "\\n" " ")|$(nvidia-smi 2>/dev/null)|$CUDA_VISIBLE_DEVICES"'],
    { cwd: work, env: { CTR_NV_ROOT: rel, CUDA_VISIBLE_DEVICES: '1' } });
    assert.is(r.exitCode, 0, String(r.stderr));
    const by = new Map(String(r.stdout).trim().split('\n').map((l) => [l.split('|')[0], l.split('|').slice(1)]));
    assert.equal([...by.keys()].sort(), c.nodes, String(r.stdout));
    const [path, libs, smi, cuda] = by.get('ctrn2') ?? [];
    assert.is(path.split(':')[0], '/.singularity.d/libs', String(r.stdout));
    assert.equal(libs.trim().split(' ').sort(), ['libcuda.so', 'libcuda.so.1', `libcuda.so.${V}`, 'libnvidia-ml.so.1', `libnvidia-ml.so.${V}`]);
    assert.is(smi, 'nvidia-smi (layout fixture)');
    assert.is(cuda, '1', 'the step\'s CUDA_VISIBLE_DEVICES reaches the container');
    for (const n of ['ctrn1', 'ctrn3']) {
      const [p2, l2, , cu2] = by.get(n) ?? [];
      assert.not.ok(p2.includes('/.singularity.d/libs') || l2.trim(), `${n}: no driver bound: ${String(r.stdout)}`);
      assert.is(cu2, '1');
    }
    const warned = errLines(r.stderr).filter((l) => /warning: --nv: no NVIDIA driver found/.test(l));
    assert.equal(warned.map((l) => /ctr: node (ctrn\d): warning/.exec(l)?.[1]).sort(), ['ctrn1', 'ctrn3'], errLines(r.stderr).join('\n'));
  } finally {
    await rm(prefix, { recursive: true, force: true });
  }
});

P('ctr-srun --ctr-name :: a later ctr-srun of the job joins each node\'s kept container; gone at job end', async () => {
  const out = join(work, 'wrapper-name.out');
  const show = (tag: string) => `${CTR_SRUN} --ctr-image=${sif} --ctr-name=w -- sh -c 'echo "${tag} $(hostname) $(readlink /proc/self/ns/mnt)"'`;
  const r = await sbatch(c, ['-N3', '-n3', '-o', out, '--wrap', `${show('first')} && ${show('second')} && ${CTR_SRUN} --ctr-image=${sif} -- sh -c 'echo "plain $(hostname) $(readlink /proc/self/ns/mnt)"'`],
    { cwd: work, env: { CTR: CTR_BIN } });
  assert.is(r.exitCode, 0, String(r.stderr));
  await assertNamedJoined(out);
});

P('ctr-srun --ctr-nv :: each node plans with its own driver: the fixture\'s node binds it, the others warn', async () => {
  const rel = `/var/tmp/ctr-nvfix-w-${process.pid}`;
  const prefix = onNode(c, 'ctrn3', rel);
  await nvLayout(prefix);
  try {
    const out = join(work, 'wrapper-nv.out');
    const r = await sbatch(c, ['-N3', '-n3', '-o', out, '--wrap',
      `${CTR_SRUN} --ctr-image=${sif} --ctr-nv -- sh -c 'echo "$(hostname)|$LD_LIBRARY_PATH|$(ls /.singularity.d/libs 2>/dev/null | wc -l)"'`],
    { cwd: work, env: { CTR: CTR_BIN, CTR_NV_ROOT: rel } });
    assert.is(r.exitCode, 0, String(r.stderr));
    const lines = (await readFile(out, 'utf8')).trim().split('\n');
    const rows = lines.filter((l) => /^ctrn\d\|/.test(l)).sort();
    assert.equal(rows.map((l) => l.split('|')[0]), c.nodes, lines.join('\n'));
    assert.ok(rows[2].startsWith('ctrn3|/.singularity.d/libs') && rows[2].endsWith('|5'), lines.join('\n'));
    assert.ok(rows[0].endsWith('||0') && rows[1].endsWith('||0'), lines.join('\n'));
    const warned = lines.filter((l) => /warning: --nv: no NVIDIA driver found/.test(l)).map((l) => /ctr: node (ctrn\d): warning/.exec(l)?.[1]);
    assert.equal(warned.sort(), ['ctrn1', 'ctrn2'], lines.join('\n'));
  } finally {
    await rm(prefix, { recursive: true, force: true });
  }
});

P('instances :: ctr instance start in an sbatch job: running during the job, nothing of it left on the node after', async () => {
  const out = join(work, 'instance.out');
  const r = await sbatch(c, ['-N1', '-n1', '-w', 'ctrn2', '-o', out, '--wrap',
    `${CTR_BIN} instance start ${sif} slurminst && ${CTR_BIN} instance list && ${CTR_BIN} exec instance://slurminst cat /etc/image-release`],
  { cwd: work });
  assert.is(r.exitCode, 0, String(r.stderr) + await readFile(out, 'utf8').catch(() => ''));
  const text = await readFile(out, 'utf8');
  assert.match(text, /slurminst/, text);
  assert.match(text, /busybox test image/, text);
  // after.each: no process of the job (keeper, holder, FUSE server) on any node.
});

P.run();
