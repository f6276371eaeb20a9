// --nv and --rocm planning: the name lists (src/gpu/liblist.ts), the ld.so cache reader
// (src/gpu/ldcache.ts), and the binds and variables a driver gives (src/plan/devices.ts,
// src/plan/compose.ts). Pure, from inputs made here, and the host's real ld.so cache.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { isLibraryFile, mergeNameLists, parseNameList } from '../../src/gpu/liblist.js';
import { entryFits, parseLdCache } from '../../src/gpu/ldcache.js';
import type { GpuDriver } from '../../src/gpu/driver.js';
import { driverEdits, GPU_LIBS } from '../../src/plan/devices.js';
import { composePlan } from '../../src/plan/compose.js';
import type { HostFacts, LaunchOptions } from '../../src/plan/options.js';
import { message } from '../helpers/errors.js';

const Lists = suite('name lists');

Lists('format :: programs, libraries (".so" in the name), absolute files, comments', () => {
  const l = parseNameList('# progs\nnvidia-smi\n\nlibcuda.so  # the driver\nlibnvoptix.so.1\n/run/nvidia-persistenced//socket\n', 'nv.conf');
  assert.equal(l, { programs: ['nvidia-smi'], libraries: ['libcuda.so', 'libnvoptix.so.1'], files: ['/run/nvidia-persistenced/socket'] });
  assert.is(message(() => parseNameList('ok\n../../etc/shadow\n', 'site.conf')), 'name list site.conf: line 2: "../../etc/shadow" is not a file name');
  assert.is(message(() => parseNameList('/etc/../shadow\n', 'site.conf')), 'name list site.conf: line 1: "/etc/../shadow" is not a plain absolute path');
  const m = mergeNameLists([l, parseNameList('libcuda.so\nlibsite.so\n', 's')]);
  assert.equal(m.libraries, ['libcuda.so', 'libnvoptix.so.1', 'libsite.so']);
});

Lists('matching :: NAME and NAME.<version>, not a longer name', () => {
  assert.ok(isLibraryFile('libcuda.so', 'libcuda.so'));
  assert.ok(isLibraryFile('libcuda.so.1', 'libcuda.so'));
  assert.ok(isLibraryFile('libcuda.so.550.54.14', 'libcuda.so'));
  assert.not.ok(isLibraryFile('libcudart.so.12', 'libcuda.so'));
  assert.not.ok(isLibraryFile('libGL.so.1', 'libGLX.so'));
});

const Cache = suite('ld.so cache');

Cache("this host's cache :: what ldconfig -p lists, libc among it", () => {
  const entries = parseLdCache(readFileSync('/etc/ld.so.cache'));
  assert.ok(entries.length > 10, `${entries.length} entries`);
  const libc = entries.find((e) => e.name === 'libc.so.6' && entryFits(e, process.arch));
  assert.ok(libc, 'libc.so.6 in the cache');
  assert.match(libc!.path, /\/libc\.so\.6$/);
});

Cache('not a cache :: no entries, never a throw', () => {
  assert.equal(parseLdCache(Buffer.from('glibc-ld.so.cache1.1')), []);
  assert.equal(parseLdCache(Buffer.alloc(4096, 0xff)), []);
  const lying = Buffer.alloc(64);
  lying.write('glibc-ld.so.cache1.1', 'latin1');
  lying.writeUInt32LE(1 << 30, 20); // a billion entries in 64 bytes
  assert.equal(parseLdCache(lying), []);
});

const driver: GpuDriver = {
  vendor: 'nvidia',
  searched: ['/opt/nv'],
  libraries: [{ name: 'libcuda.so.1', path: '/opt/nv/lib64/libcuda.so.550.54.14' }, { name: 'libcuda.so', path: '/opt/nv/lib64/libcuda.so.550.54.14' }],
  programs: [{ name: 'nvidia-smi', path: '/opt/nv/bin/nvidia-smi' }],
  files: ['/run/nvidia-persistenced/socket'],
  devices: ['/dev/nvidia-caps/nvidia-cap1', '/dev/nvidia-uvm', '/dev/nvidia0', '/dev/nvidia1', '/dev/nvidiactl'],
  version: '550.54.14',
};

const Binds = suite('driver binds');

Binds('--nv :: libraries into the libs directory, programs into /usr/bin, libs first on LD_LIBRARY_PATH', () => {
  const e = driverEdits(driver, false);
  assert.equal(e.binds, [
    { src: '/opt/nv/lib64/libcuda.so.550.54.14', dst: `${GPU_LIBS}/libcuda.so.1`, ro: true },
    { src: '/opt/nv/lib64/libcuda.so.550.54.14', dst: `${GPU_LIBS}/libcuda.so`, ro: true },
    { src: '/opt/nv/bin/nvidia-smi', dst: '/usr/bin/nvidia-smi', ro: true },
    { src: '/run/nvidia-persistenced/socket', dst: '/run/nvidia-persistenced/socket', ro: false },
  ]);
  assert.equal(e.prepend, [{ name: 'LD_LIBRARY_PATH', value: '/.singularity.d/libs' }]);
});

Binds('--contain :: device nodes bound, NVIDIA_VISIBLE_DEVICES picks the GPUs', () => {
  const nodes = (v?: string) => driverEdits(driver, true, v).binds.filter((b) => b.dst.startsWith('/dev/')).map((b) => b.dst);
  assert.equal(nodes(), driver.devices);
  assert.equal(nodes('all'), driver.devices);
  assert.equal(nodes('1'), ['/dev/nvidia-caps/nvidia-cap1', '/dev/nvidia-uvm', '/dev/nvidia1', '/dev/nvidiactl']);
  assert.equal(nodes('none'), ['/dev/nvidia-caps/nvidia-cap1', '/dev/nvidia-uvm', '/dev/nvidiactl']);
  assert.equal(nodes('GPU-8d2c5a1e'), driver.devices);
});

const opts = (over: Partial<LaunchOptions> = {}): LaunchOptions =>
  ({ bind: [], writableTmpfs: false, cleanenv: false, env: [], noHome: false, contain: false, fakeroot: false, debug: false, nv: true, ...over });
const host = (over: Partial<HostFacts> = {}): HostFacts => ({
  uid: 1001, gid: 1002, user: 'u', group: 'g', gecos: '', home: '/home/u', cwd: '/',
  realpaths: new Map(), exists: new Set(), envFileLines: [], gpu: { drivers: [driver] }, ...over,
});

Binds('plan :: binds before -B, --env-prepend after the env words; --cleanenv keeps the GPU variables', () => {
  const args = composePlan('exec', { kind: 'sif', path: '/i.sif', offset: 0 }, opts({ bind: ['/data'], cleanenv: true }), host({ realpaths: new Map([['/data', '/data']]) })).args;
  const bindDsts = args.flatMap((a, i) => (a === '--bind' ? [args[i + 2]] : []));
  assert.ok(bindDsts.indexOf(`${GPU_LIBS}/libcuda.so.1`) < bindDsts.indexOf('/data'), bindDsts.join(' '));
  const i = args.indexOf('--env-prepend');
  assert.equal(args.slice(i, i + 3), ['--env-prepend', 'LD_LIBRARY_PATH', '/.singularity.d/libs']);
  assert.ok(i > args.lastIndexOf('--setenv'));
  for (const v of ['NVIDIA_VISIBLE_DEVICES', 'CUDA_VISIBLE_DEVICES']) assert.ok(args.some((a, k) => a === '--keepenv' && args[k + 1] === v), v);
  const none = composePlan('exec', { kind: 'sif', path: '/i.sif', offset: 0 }, opts({ nv: true }), host({ gpu: { drivers: [] } })).args;
  assert.not.ok(none.includes('--env-prepend'), 'no driver: nothing prepended');
});

Lists.run();
Cache.run();
Binds.run();
