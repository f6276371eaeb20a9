// composePlan (src/plan/compose.ts): the launch plan's words for each option, from fixed
// inputs. Pure: no file system, so every host fact comes from hostFacts() below.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { composePlan } from '../../src/plan/compose.js';
import { DEFAULT_PATH } from '../../src/plan/env.js';
import type { ImageRef } from '../../src/image/open.js';
import type { HostFacts, LaunchOptions } from '../../src/plan/options.js';
import { CtrError } from '../../src/errors.js';

const SIF: ImageRef = { kind: 'sif', path: '/img/app.sif', offset: 32768 };
const DIR: ImageRef = { kind: 'dir', path: '/img/rootfs', offset: 0 };

function options(over: Partial<LaunchOptions> = {}): LaunchOptions {
  return { bind: [], writableTmpfs: false, cleanenv: false, env: [], noHome: false, contain: false, fakeroot: false, debug: false, ...over };
}

function hostFacts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    uid: 1001, gid: 1002, user: 'u', group: 'g', gecos: 'A User', home: '/home/u', cwd: '/work/proj',
    squashfuse: '/usr/bin/squashfuse_ll',
    realpaths: new Map([['/etc/localtime', '/usr/share/zoneinfo/UTC'], ['/tmp', '/tmp'], ['/var/tmp', '/var/tmp'], ['/home/u', '/home/u']]),
    exists: new Set(['/etc/hosts', '/etc/localtime', '/tmp', '/var/tmp', '/home/u']),
    envFileLines: [],
    ...over,
  };
}

/** The words of every `--bind SRC DST MODE` in ARGS. */
function binds(args: string[]): string[][] {
  return args.flatMap((a, i) => (a === '--bind' ? [args.slice(i + 1, i + 4)] : []));
}
function tmpfs(args: string[]): string[][] {
  return args.flatMap((a, i) => (a === '--tmpfs' ? [args.slice(i + 1, i + 3)] : []));
}
/** The value after OPT (first occurrence), or undefined. */
function after(args: string[], opt: string): string | undefined {
  const i = args.indexOf(opt);
  return i < 0 ? undefined : args[i + 1];
}
function setenv(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) if (args[i] === '--setenv' && args[i + 1] === name) return args[i + 2];
  return undefined;
}

const Compose = suite('plan compose');

Compose('default :: the whole plan', () => {
  const p = composePlan('exec', SIF, options(), hostFacts());
  assert.equal(p.args, [
    '--plan-version', '1',
    '--image', '/img/app.sif', '--offset', '32768', '--squashfuse', '/usr/bin/squashfuse_ll',
    '--pid-ns',
    '--bind', '/proc', '/proc', 'rw',
    '--bind', '/sys', '/sys', 'rw',
    '--bind', '/dev', '/dev', 'rw',
    '--bind', '/tmp', '/tmp', 'rw?',
    '--bind', '/var/tmp', '/var/tmp', 'rw?',
    '--bind', '/etc/hosts', '/etc/hosts', 'ro?',
    '--bind', '/usr/share/zoneinfo/UTC', '/etc/localtime', 'ro?',
    '--bind', '/home/u', '/home/u', 'rw',
    '--bind', '/work/proj', '/work/proj', 'rw',
    '--bind-env', 'PMIX_SERVER_TMPDIR', 'rw?',
    '--bind-env', 'PMIX_DSTORE_ESH_BASE_PATH', 'rw?',
    '--bind-env', 'PMIX_DSTORE_21_BASE_PATH', 'rw?',
    '--passwd-line', 'u:x:1001:1002:A User:/home/u:/bin/sh',
    '--group-line', 'g:x:1002:u',
    '--chdir', '/work/proj', '--chdir-optional',
    '--env-prefix', 'CTRENV_', '--env-prefix', 'APPTAINERENV_', '--env-prefix', 'SINGULARITYENV_',
    '--drop-env-prefix', 'APPTAINER_', '--drop-env-prefix', 'SINGULARITY_',
    '--unsetenv', 'PATH', '--unsetenv', 'LD_LIBRARY_PATH', '--unsetenv', 'PS1', '--unsetenv', 'PROMPT_COMMAND',
    '--setenv', 'PATH', DEFAULT_PATH,
    '--setenv', 'HOME', '/home/u',
    '--setenv', 'PWD', '/work/proj',
    '--setenv', 'USER', 'u',
    '--setenv', 'LOGNAME', 'u',
    '--setenv', 'CTR_CONTAINER', '/img/app.sif',
    '--setenv', 'CTR_NAME', 'app.sif',
    '--setenv', 'APPTAINER_CONTAINER', '/img/app.sif',
    '--setenv', 'APPTAINER_NAME', 'app.sif',
    '--setenv', 'SINGULARITY_CONTAINER', '/img/app.sif',
    '--setenv', 'SINGULARITY_NAME', 'app.sif',
    '--action', 'exec',
    '--join', 'auto',
  ]);
  assert.is(p.pwd, '/work/proj');
});

Compose('for nodes :: the working directory\'s bind is optional; a site bind missing here is left to the node', () => {
  const p = composePlan('exec', SIF, { ...options(), forNodes: true, siteBind: ['/scratch'] }, hostFacts());
  assert.equal(binds(p.args).filter(([, dst]) => dst === '/work/proj' || dst === '/scratch'),
    [['/work/proj', '/work/proj', 'rw?'], ['/scratch', '/scratch', 'rw?']]);
  assert.is(after(p.args, '--chdir'), '/work/proj');
  const here = composePlan('exec', SIF, { ...options(), siteBind: ['/scratch'] }, hostFacts());
  assert.equal(binds(here.args).filter(([, dst]) => dst === '/scratch'), [], 'planned here: a missing site bind is skipped');
});

Compose('default :: cwd already visible through the home bind is not bound twice', () => {
  const p = composePlan('exec', SIF, options(), hostFacts({ cwd: '/home/u/src' }));
  assert.equal(binds(p.args).filter(([, dst]) => dst.startsWith('/home/u')), [['/home/u', '/home/u', 'rw']]);
  assert.is(after(p.args, '--chdir'), '/home/u/src');
});

Compose('default :: cwd / is not bound', () => {
  const p = composePlan('exec', SIF, options(), hostFacts({ cwd: '/' }));
  assert.not.ok(binds(p.args).some(([src]) => src === '/'));
  assert.is(after(p.args, '--chdir'), '/');
});

Compose('default :: optional host files that are missing are left out', () => {
  const p = composePlan('exec', SIF, options(), hostFacts({ exists: new Set() }));
  assert.not.ok(binds(p.args).some(([, dst]) => dst.startsWith('/etc/')));
});

Compose('binds :: user binds come last, sources resolved through realpaths, mode kept', () => {
  const host = hostFacts({ realpaths: new Map([['data', '/srv/data'], ['/scratch', '/lustre/scratch']]) });
  const p = composePlan('exec', SIF, options({ bind: ['data:/data:ro,/scratch'] }), host);
  assert.equal(binds(p.args).slice(-2), [['/srv/data', '/data', 'ro'], ['/lustre/scratch', '/scratch', 'rw']]);
});

Compose('binds :: a bad spec throws', () => {
  assert.throws(() => composePlan('exec', SIF, options({ bind: ['/a:/b:rx'] }), hostFacts()),
    (e: unknown) => e instanceof CtrError && e.message === 'bind /a:/b:rx: unknown mode "rx" (ro or rw)');
});

Compose('contain :: minimal /dev, fresh /tmp and home, no cwd bind, starts in home', () => {
  const p = composePlan('exec', SIF, options({ contain: true }), hostFacts());
  assert.equal(tmpfs(p.args), [['/dev', '0755'], ['/dev/shm', '1777'], ['/tmp', '1777'], ['/var/tmp', '1777'], ['/home/u', '0755']]);
  assert.equal(binds(p.args).filter(([, dst]) => dst.startsWith('/dev/')).map(([src, dst, mode]) => `${src} ${dst} ${mode}`), [
    '/dev/null /dev/null rw?', '/dev/zero /dev/zero rw?', '/dev/full /dev/full rw?',
    '/dev/random /dev/random rw?', '/dev/urandom /dev/urandom rw?', '/dev/tty /dev/tty rw?', '/dev/fuse /dev/fuse rw?', '/dev/pts /dev/pts rw?',
  ]);
  assert.not.ok(binds(p.args).some(([src]) => src === '/dev' || src === '/tmp' || src === '/home/u' || src === '/work/proj'));
  assert.is(after(p.args, '--chdir'), '/home/u');
  assert.is(p.pwd, '/home/u');
});

Compose('contain :: --pwd wins over home', () => {
  const p = composePlan('exec', SIF, options({ contain: true, pwd: '/opt//app/' }), hostFacts());
  assert.is(after(p.args, '--chdir'), '/opt/app');
  assert.is(setenv(p.args, 'PWD'), '/opt/app');
});

Compose('pwd :: --pwd is entered and the cwd is not bound', () => {
  const p = composePlan('exec', SIF, options({ pwd: '/etc' }), hostFacts());
  assert.is(after(p.args, '--chdir'), '/etc');
  assert.not.ok(binds(p.args).some(([src]) => src === '/work/proj'));
});

Compose('fakeroot :: maps root, home is /root, no passwd or group line, USER root', () => {
  const p = composePlan('exec', SIF, options({ fakeroot: true }), hostFacts());
  assert.ok(p.args.includes('--map-root'));
  assert.not.ok(p.args.includes('--passwd-line'));
  assert.not.ok(p.args.includes('--group-line'));
  assert.ok(binds(p.args).some(([src, dst]) => src === '/home/u' && dst === '/root'));
  assert.is(setenv(p.args, 'HOME'), '/root');
  assert.is(setenv(p.args, 'USER'), 'root');
});

Compose('no-home :: no home bind or tmpfs, HOME still set', () => {
  const p = composePlan('exec', SIF, options({ noHome: true }), hostFacts({ cwd: '/' }));
  assert.not.ok(binds(p.args).some(([, dst]) => dst === '/home/u'));
  assert.not.ok(tmpfs(p.args).some(([dst]) => dst === '/home/u'));
  assert.is(setenv(p.args, 'HOME'), '/home/u');
});

Compose('home spec :: SRC binds to the user home, SRC:DST elsewhere, both through realpaths', () => {
  const host = hostFacts({ realpaths: new Map([['h', '/data/h']]) });
  const a = composePlan('exec', SIF, options({ home: 'h' }), host);
  assert.ok(binds(a.args).some(([src, dst, mode]) => src === '/data/h' && dst === '/home/u' && mode === 'rw'));
  const b = composePlan('exec', SIF, options({ home: 'h:/home/alt' }), host);
  assert.ok(binds(b.args).some(([src, dst]) => src === '/data/h' && dst === '/home/alt'));
  assert.not.ok(binds(b.args).some(([, dst]) => dst === '/home/u'));
  assert.is(setenv(b.args, 'HOME'), '/home/alt');
  assert.ok(b.args.includes('u:x:1001:1002:A User:/home/alt:/bin/sh'));
});

Compose('dir image :: --image-dir, no offset or squashfuse', () => {
  const p = composePlan('exec', DIR, options(), hostFacts({ squashfuse: '' }));
  assert.equal(p.args.slice(0, 4), ['--plan-version', '1', '--image-dir', '/img/rootfs']);
  assert.not.ok(p.args.includes('--offset'));
  assert.not.ok(p.args.includes('--squashfuse'));
  assert.is(setenv(p.args, 'CTR_NAME'), 'rootfs');
});

Compose('flags :: writable-tmpfs, cleanenv, debug, env overrides and the action', () => {
  const host = hostFacts({ envFileLines: ['F=file'] });
  const p = composePlan('shell', SIF, options({ writableTmpfs: true, cleanenv: true, debug: true, env: ['A=1,B=2'] }), host);
  assert.ok(p.args.includes('--writable-tmpfs'));
  assert.ok(p.args.includes('--clearenv'));
  assert.is(after(p.args, '--action'), 'shell');
  assert.is(p.args[p.args.length - 1], '--debug');
  const overrides = p.args.flatMap((a, i) => (a === '--env-override' ? [`${p.args[i + 1]}=${p.args[i + 2]}`] : []));
  assert.equal(overrides, ['F=file', 'A=1', 'B=2']);
  assert.equal(p.args.flatMap((a, i) => (a === '--keepenv' ? [p.args[i + 1]] : [])).slice(0, 3), ['TERM', 'LANG', 'LC_ALL']);
  assert.is(setenv(p.args, 'PS1'), 'ctr> ');
});

Compose('join :: mode, tag and count', () => {
  const p = composePlan('exec', SIF, options({ join: 'on', joinTag: 'step1', joinCount: 4 }), hostFacts());
  assert.equal(p.args.slice(p.args.indexOf('--join')), ['--join', 'on', '--join-tag', 'step1', '--join-count', '4']);
  const off = composePlan('exec', SIF, options({ join: 'off' }), hostFacts());
  assert.is(after(off.args, '--join'), 'off');
  assert.not.ok(off.args.includes('--join-tag'));
});

Compose('join errors :: a count that is not a positive integer', () => {
  for (const n of [0, -1, 1.5]) {
    assert.throws(() => composePlan('exec', SIF, options({ joinCount: n }), hostFacts()),
      (e: unknown) => e instanceof CtrError && e.message === `--join-count: ${n} is not a positive number`, String(n));
  }
});

Compose('determinism :: same inputs give the same plan', () => {
  assert.equal(composePlan('run', SIF, options({ contain: true }), hostFacts()), composePlan('run', SIF, options({ contain: true }), hostFacts()));
});

Compose.run();
