// What --nv and --device cost a launch: `ctr exec` of /bin/true with no GPU flags, with
// --nv on a host without a driver (the ld.so cache read and searched, a warning), with
// --nv against a driver layout fixture (the test's: lib*.so.<version> + soname links,
// nvidia-smi; 5 library binds and a program), with a CDI device from a JSON and from a
// YAML spec (the YAML parser loaded), and the same as plan files (no Node at launch).
// The fixture is not a driver: this measures discovery and binding, not a GPU.
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { asUser, CTR, CTR_BIN, image, USER, WORK } from './images.js';
import { measure, REPO, save, sh, table, type Contender } from './lib.js';
import { findDriver } from '../src/gpu/driver.js';
import { readCdiSpecs } from '../src/gpu/cdi-read.js';

/** Median ms of FN over N calls, in this process (what planning adds, without the machine's launch noise). */
async function inProcess(fn: () => unknown, n = 200): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return t.sort((a, b) => a - b)[Math.floor(n / 2)];
}

const rounds = Number(process.env.BENCH_ROUNDS ?? (process.argv.includes('--full') ? 100 : 20));

function fixture(): { nv: string; conf: string; confYaml: string } {
  const root = join(WORK, `gpu-fixture-${USER ?? 'self'}`);
  rmSync(root, { recursive: true, force: true });
  const lib = join(root, 'nvidia/lib64');
  mkdirSync(lib, { recursive: true });
  mkdirSync(join(root, 'nvidia/bin'));
  for (const [file, soname] of [['libcuda.so.550.54.14', 'libcuda.so.1'], ['libnvidia-ml.so.550.54.14', 'libnvidia-ml.so.1']]) {
    writeFileSync(join(root, 'x.c'), 'int ctr_fixture(void) { return 0; }\n');
    sh(['gcc', '-shared', '-fPIC', `-Wl,-soname,${soname}`, '-o', join(lib, file), join(root, 'x.c')]);
    symlinkSync(file, join(lib, soname));
  }
  symlinkSync('libcuda.so.1', join(lib, 'libcuda.so'));
  writeFileSync(join(root, 'nvidia/bin/nvidia-smi'), '#!/bin/sh\necho fixture\n', { mode: 0o755 });
  mkdirSync(join(root, 'json'));
  mkdirSync(join(root, 'yaml'));
  const spec = { cdiVersion: '0.6.0', kind: 'example.com/dev', devices: [{ name: 'd', containerEdits: { deviceNodes: [{ path: '/dev/null' }, { path: '/dev/zero' }], env: ['A=1'] } }],
    containerEdits: { mounts: [{ hostPath: root, containerPath: '/opt/fixture', options: ['ro', 'bind'] }] } };
  writeFileSync(join(root, 'json/d.json'), JSON.stringify(spec));
  writeFileSync(join(root, 'yaml/d.yaml'), `cdiVersion: 0.6.0\nkind: example.com/dev\ndevices:\n  - name: d\n    containerEdits:\n      deviceNodes: [{path: /dev/null}, {path: /dev/zero}]\n      env: [A=1]\ncontainerEdits:\n  mounts: [{hostPath: ${root}, containerPath: /opt/fixture, options: [ro, bind]}]\n`);
  writeFileSync(join(root, 'json.conf'), `cdi-spec-dir = ${root}/json\n`);
  writeFileSync(join(root, 'yaml.conf'), `cdi-spec-dir = ${root}/yaml\n`);
  sh(['chmod', '-R', 'a+rX', root]);
  chmodSync(root, 0o755);
  return { nv: join(root, 'nvidia'), conf: join(root, 'json.conf'), confYaml: join(root, 'yaml.conf') };
}

export async function gpu(): Promise<string> {
  const { sif } = image('busybox', join(REPO, 'images/busybox.def'));
  const f = fixture();
  const env: NodeJS.ProcessEnv = { ...process.env, USER: USER ?? process.env.USER ?? 'user' };
  delete env.NODE_EXTRA_CA_CERTS;
  const plan = (name: string, flags: string[], extra: NodeJS.ProcessEnv = {}) => {
    const p = join(WORK, `gpu-${name}-${USER ?? 'self'}.plan`);
    sh(asUser(['env', ...Object.entries(extra).map(([k, v]) => `${k}=${v}`), ...CTR, 'plan', '-o', p, ...flags, sif]), { cwd: WORK });
    return p;
  };
  const plain = plan('plain', []);
  const nvPlan = plan('nv', ['--nv'], { CTR_NV_ROOT: f.nv });
  const contenders: Contender[] = [
    { name: 'ctr exec', cmd: asUser([CTR_BIN, 'exec', sif, '/bin/true']), cwd: WORK, env },
    { name: 'ctr exec --nv, no driver (warning)', cmd: asUser([CTR_BIN, 'exec', '--nv', sif, '/bin/true']), cwd: WORK, env },
    { name: 'ctr exec --nv, layout fixture (6 binds)', cmd: asUser([CTR_BIN, 'exec', '--nv', sif, '/bin/true']), cwd: WORK, env: { ...env, CTR_NV_ROOT: f.nv } },
    { name: 'ctr exec --device, JSON spec', cmd: asUser([CTR_BIN, 'exec', '--device', 'example.com/dev=d', sif, '/bin/true']), cwd: WORK, env: { ...env, CTR_CONFIG: f.conf } },
    { name: 'ctr exec --device, YAML spec', cmd: asUser([CTR_BIN, 'exec', '--device', 'example.com/dev=d', sif, '/bin/true']), cwd: WORK, env: { ...env, CTR_CONFIG: f.confYaml } },
    { name: 'plan file', cmd: asUser([plain, '/bin/true']), cwd: WORK, env },
    { name: 'plan file --nv, layout fixture', cmd: asUser([nvPlan, '/bin/true']), cwd: WORK, env },
  ];
  const data = join(REPO, 'data');
  const t0 = process.hrtime.bigint();
  await readCdiSpecs([join(f.confYaml, '../yaml')]);
  const firstYaml = Number(process.hrtime.bigint() - t0) / 1e6;
  const planning = [
    `in process, median of 200: --nv discovery, default places (ld.so cache parsed and searched): ${(await inProcess(() => findDriver('nvidia', { dataDir: data, lists: [] }))).toFixed(2)} ms; ` +
      `a driver prefix: ${(await inProcess(() => findDriver('nvidia', { dataDir: data, lists: [], roots: [f.nv] }))).toFixed(2)} ms; ` +
      `a JSON CDI spec read and checked: ${(await inProcess(() => readCdiSpecs([join(f.conf, '../json')]))).toFixed(2)} ms; ` +
      `a YAML one: ${(await inProcess(() => readCdiSpecs([join(f.confYaml, '../yaml')]))).toFixed(2)} ms (the first, loading the YAML parser: ${firstYaml.toFixed(1)} ms)`,
  ];
  const rows = measure(contenders, rounds);
  const md = table(`--nv and --device launch cost, /bin/true (${rounds} interleaved rounds, ${hostname()})`, rows);
  const flags = await save({ name: 'gpu', date: new Date().toISOString(), host: hostname(), rows });
  const ms = (n: string) => rows.find((r) => r.name === n)!.medianMs;
  const notes = [
    `--nv discovery + binds: +${(ms('ctr exec --nv, layout fixture (6 binds)') - ms('ctr exec')).toFixed(1)} ms over ctr exec; in a plan file +${(ms('plan file --nv, layout fixture') - ms('plan file')).toFixed(1)} ms (binds only)`,
    `YAML over JSON spec: +${(ms('ctr exec --device, YAML spec') - ms('ctr exec --device, JSON spec')).toFixed(1)} ms`,
    ...planning,
    ...flags,
  ];
  return md + '\n' + notes.map((n) => `- ${n}`).join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(await gpu());
}
