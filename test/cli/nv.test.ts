// --nv and --rocm (issue 17), as the unprivileged test user. CI machines have no GPU, so
// the driver here is a LAYOUT FIXTURE: a directory laid out the way NVIDIA's installer
// lays out the driver (shared objects lib*.so.<version> with their soname links, built
// by gcc with that soname, and an nvidia-smi program), which the site-prefix setting
// (CTR_NV_ROOT, or nv-root in the site config) points discovery at. It is not a driver
// and no GPU is used: what is tested is discovery and binding — the files reach the
// container, the libraries first on LD_LIBRARY_PATH, nothing over the image's own —
// and the warning when there is no driver.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif, makeBusyboxTree } from '../helpers/images.js';
import { apptainerBusyboxSif } from '../compat/fixture.js';
import { killUserProcesses, leftovers } from '../helpers/leftovers.js';
import { asUser, ctr, userTmp } from '../helpers/user.js';

const Nv = suite('--nv');
let sif: string, d: string, drv: string, rocm: string, dirImage: string;
const V = '550.54.14';
const LIBS = ['libcuda.so', 'libcuda.so.1', `libcuda.so.${V}`, 'libnvidia-ml.so.1', `libnvidia-ml.so.${V}`];

/** A shared object NAME with soname SONAME, as the driver ships its libraries. */
async function sharedObject(dir: string, name: string, soname: string): Promise<void> {
  const c = join(dir, `${name}.c`);
  await writeFile(c, `const char *ctr_fixture_name(void) { return "${name}"; }\n`);
  await execa('gcc', ['-shared', '-fPIC', `-Wl,-soname,${soname}`, '-o', join(dir, name), c]);
  await rm(c);
}

/** The layout fixture: PREFIX/lib64 and PREFIX/bin, as the driver installs them. */
async function nvidiaLayout(prefix: string): Promise<void> {
  const lib = join(prefix, 'lib64');
  await mkdir(lib, { recursive: true });
  await mkdir(join(prefix, 'bin'));
  await sharedObject(lib, `libcuda.so.${V}`, 'libcuda.so.1');
  await symlink(`libcuda.so.${V}`, join(lib, 'libcuda.so.1'));
  await symlink('libcuda.so.1', join(lib, 'libcuda.so'));
  await sharedObject(lib, `libnvidia-ml.so.${V}`, 'libnvidia-ml.so.1');
  await symlink(`libnvidia-ml.so.${V}`, join(lib, 'libnvidia-ml.so.1'));
  await sharedObject(lib, 'libsitegpu.so.3', 'libsitegpu.so.3');
  await writeFile(join(lib, 'libunlisted.so.1'), 'not in any list\n');
  await writeFile(join(prefix, 'bin/nvidia-smi'), '#!/bin/sh\necho "nvidia-smi (layout fixture): no GPU"\n', { mode: 0o755 });
}

Nv.before(async () => {
  sif = await busyboxSif();
  d = await userTmp('ctr-nv-');
  drv = join(d, 'nvidia');
  await nvidiaLayout(drv);
  rocm = join(d, 'rocm');
  await mkdir(join(rocm, 'lib'), { recursive: true });
  await mkdir(join(rocm, 'bin'));
  await sharedObject(join(rocm, 'lib'), 'libamdhip64.so.6.1.40091', 'libamdhip64.so.6');
  await symlink('libamdhip64.so.6.1.40091', join(rocm, 'lib/libamdhip64.so.6'));
  await writeFile(join(rocm, 'bin/rocm-smi'), '#!/bin/sh\necho "rocm-smi (layout fixture)"\n', { mode: 0o755 });
  // A directory image whose env script is more than assignments (so the image's /bin/sh
  // sources it) and sets LD_LIBRARY_PATH, as CUDA images' do.
  dirImage = join(d, 'image');
  await makeBusyboxTree(dirImage);
  await writeFile(join(dirImage, '.singularity.d/env/80-cuda.sh'), 'if true; then export LD_LIBRARY_PATH=/usr/local/cuda/lib64; fi\n');
  await mkdir(join(d, 'empty'));
  await writeFile(join(d, 'site.list'), '# site additions\nlibsitegpu.so\n');
  await writeFile(join(d, 'ctr.conf'), `nv-root = ${drv}\nnv-list = ${d}/site.list\n`);
  await execa('chmod', ['-R', 'a+rX', d]);
});
Nv.after(async () => {
  await rm(d, { recursive: true, force: true });
});
Nv.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

const SHOW = 'echo "$LD_LIBRARY_PATH"; ls /.singularity.d/libs; nvidia-smi; test -e /lib/libcuda.so.1 || test -e /usr/lib/libcuda.so.1 || echo image libs untouched';

Nv('discovery :: the layout\'s libraries under their names, first on LD_LIBRARY_PATH; nvidia-smi runs', async () => {
  const r = await ctr(['exec', '--nv', sif, 'sh', '-c', SHOW], { cwd: '/', env: { CTR_NV_ROOT: drv } });
  assert.is(r.stderr, '');
  assert.is(r.stdout, ['/.singularity.d/libs', ...LIBS, 'nvidia-smi (layout fixture): no GPU', 'image libs untouched', ''].join('\n'));
  assert.is(r.exitCode, 0);
});

Nv('bound files :: the same bytes as the host\'s, read-only', async () => {
  const r = await ctr(['exec', '--nv', sif, 'sh', '-c', `wc -c < /.singularity.d/libs/libcuda.so.1; touch /.singularity.d/libs/libcuda.so.1 2>/dev/null || echo read-only`],
    { cwd: '/', env: { CTR_NV_ROOT: drv } });
  const size = (await execa('stat', ['-L', '-c', '%s', join(drv, 'lib64/libcuda.so.1')])).stdout;
  assert.is(r.stderr, '');
  assert.is(r.stdout, `${size}\nread-only\n`);
});

Nv('LD_LIBRARY_PATH :: the driver first, before --env\'s and an image env script\'s', async () => {
  const a = await ctr(['exec', '--nv', '--env', 'LD_LIBRARY_PATH=/opt/app/lib', sif, 'sh', '-c', 'echo "$LD_LIBRARY_PATH"'], { cwd: '/', env: { CTR_NV_ROOT: drv } });
  assert.is(a.stderr, '');
  assert.is(a.stdout, '/.singularity.d/libs:/opt/app/lib\n');
  const b = await ctr(['exec', '--nv', dirImage, 'sh', '-c', 'echo "$LD_LIBRARY_PATH"'], { cwd: '/', env: { CTR_NV_ROOT: drv } });
  assert.is(b.stderr, '');
  assert.is(b.stdout, '/.singularity.d/libs:/usr/local/cuda/lib64\n');
});

Nv("LD_LIBRARY_PATH :: an Apptainer image's 99-base.sh appends /.singularity.d/libs; --nv's stays once, first", async () => {
  const app = await apptainerBusyboxSif();
  const show = 'echo "$LD_LIBRARY_PATH"';
  const plain = await ctr(['exec', '--nv', app, 'sh', '-c', show], { cwd: '/', env: { CTR_NV_ROOT: drv } });
  assert.is(plain.stderr, '');
  assert.is(plain.stdout, '/.singularity.d/libs\n');
  for (const [how, args, env] of [
    ['--env', ['--env', 'LD_LIBRARY_PATH=/opt/app/lib'], {}],
    ['APPTAINERENV_', [], { APPTAINERENV_LD_LIBRARY_PATH: '/opt/app/lib' }],
    ['--env and the env-script wrapper ($(...) needs the image\'s shell)', ['--env', 'LD_LIBRARY_PATH=$(echo /opt/app/lib)'], {}],
  ] as const) {
    const r = await ctr(['exec', '--nv', ...args, app, 'sh', '-c', show], { cwd: '/', env: { CTR_NV_ROOT: drv, ...env } });
    assert.is(r.stderr, '', how);
    assert.is(r.stdout, '/.singularity.d/libs:/opt/app/lib\n', how);
  }
});

Nv("--cleanenv :: the job's GPU variables (Slurm's CUDA_VISIBLE_DEVICES) still reach the container", async () => {
  const r = await ctr(['exec', '--nv', '--cleanenv', sif, 'sh', '-c', 'echo "$CUDA_VISIBLE_DEVICES/$NVIDIA_VISIBLE_DEVICES/${OTHER-dropped}"'],
    { cwd: '/', env: { CTR_NV_ROOT: drv, CUDA_VISIBLE_DEVICES: '0,1', NVIDIA_VISIBLE_DEVICES: 'all', OTHER: 'x' } });
  assert.is(r.stderr, '');
  assert.is(r.stdout, '0,1/all/dropped\n');
});

Nv('site config :: nv-root and a site name list (nv-list) extend discovery', async () => {
  const r = await ctr(['exec', '--nv', sif, 'ls', '/.singularity.d/libs'], { cwd: '/', env: { CTR_CONFIG: join(d, 'ctr.conf') } });
  assert.is(r.stderr, '');
  assert.is(r.stdout, [...LIBS, 'libsitegpu.so.3', ''].join('\n'));
});

Nv('APPTAINER_NV=1 / SINGULARITY_NV=1 :: stand for --nv, as in Apptainer', async () => {
  for (const name of ['APPTAINER_NV', 'SINGULARITY_NV']) {
    const r = await ctr(['exec', sif, 'sh', '-c', 'echo "$LD_LIBRARY_PATH"'], { cwd: '/', env: { CTR_NV_ROOT: drv, [name]: '1' } });
    assert.is(r.stderr, '', name);
    assert.is(r.stdout, '/.singularity.d/libs\n', name);
  }
});

Nv('no driver :: a warning line, and the container still runs', async () => {
  const empty = join(d, 'empty');
  const r = await ctr(['exec', '--nv', sif, 'sh', '-c', 'echo ran; echo "[$LD_LIBRARY_PATH]"'], { cwd: '/', env: { CTR_NV_ROOT: empty } });
  assert.is(r.stderr, `ctr: warning: --nv: no NVIDIA driver found on this host (looked in ${empty} (the driver prefix the site names)); the container runs without it\n`);
  assert.is(r.stdout, 'ran\n[]\n');
  assert.is(r.exitCode, 0);
  // This host (CI has no GPU): the default places.
  const h = await ctr(['exec', '--nv', sif, 'echo', 'ran'], { cwd: '/' });
  assert.is(h.stderr, 'ctr: warning: --nv: no NVIDIA driver found on this host (looked in the ld.so cache, /usr/local/nvidia/lib64, /usr/local/nvidia/lib); the container runs without it\n');
  assert.is(h.stdout, 'ran\n');
});

Nv('--nvccli :: without nvidia-container-cli, one error line and a hint', async () => {
  const r = await ctr(['exec', '--nvccli', sif, 'true'], { cwd: '/', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  assert.is(r.stderr, "ctr: error: --nvccli: nvidia-container-cli is not installed here (not in PATH)\nctr: hint: install NVIDIA's libnvidia-container-tools, or use --nv\n");
  assert.is(r.exitCode, 255);
});

Nv('--rocm :: the ROCm layout fixture\'s library and rocm-smi', async () => {
  const r = await ctr(['exec', '--rocm', sif, 'sh', '-c', 'echo "$LD_LIBRARY_PATH"; ls /.singularity.d/libs; rocm-smi'], { cwd: '/', env: { CTR_ROCM_ROOT: rocm } });
  assert.is(r.stderr, '');
  assert.is(r.stdout, '/.singularity.d/libs\nlibamdhip64.so.6\nlibamdhip64.so.6.1.40091\nrocm-smi (layout fixture)\n');
});

Nv('--version :: says whether a driver was found, and its version', async () => {
  const found = await ctr(['--version'], { cwd: '/', env: { CTR_NV_ROOT: drv, CTR_ROCM_ROOT: join(d, 'empty') } });
  const lines = String(found.stdout).split('\n');
  assert.ok(lines.includes(`nvidia driver (--nv): found, version ${V}: 5 library files, 1 program, 0 device nodes (looked in ${drv} (the driver prefix the site names))`), String(found.stdout));
  assert.ok(lines.includes(`rocm driver (--rocm): none found (looked in ${d}/empty (the driver prefix the site names))`), String(found.stdout));
});

Nv('plan file :: the driver is in the plan; it launches without Node', async () => {
  const plan = join(d, 'nv.plan');
  const p = await ctr(['plan', '-o', plan, '--nv', sif, 'sh', '-c', 'echo "$LD_LIBRARY_PATH"; nvidia-smi'], { cwd: '/', env: { CTR_NV_ROOT: drv } });
  assert.is(p.stderr, '');
  const r = await asUser(plan, [], { cwd: '/' });
  assert.is(r.stderr, '');
  assert.is(r.stdout, '/.singularity.d/libs\nnvidia-smi (layout fixture): no GPU\n');
});

Nv('joined ranks :: two ranks share one container, each with the driver first on its path', async () => {
  const tag = `nv${process.pid}`;
  const rank = () => ctr(['exec', '--nv', '--join-tag', tag, '--join-count', '2', sif, 'sh', '-c', 'echo "$LD_LIBRARY_PATH"; ls /.singularity.d/libs | wc -l'],
    { cwd: '/', env: { CTR_NV_ROOT: drv }, timeout: 60_000 });
  const [a, b] = await Promise.all([rank(), rank()]);
  for (const r of [a, b]) {
    assert.is(r.stderr, '');
    assert.is(r.stdout, `/.singularity.d/libs\n${LIBS.length}\n`);
  }
});

Nv.run();
