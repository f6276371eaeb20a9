// The plan protocol: native/plan_words.def is the one table of words. Here: the C
// parser's own test (native/test/plan_test.c, golden and malformed plans under ASan and
// UBSan), PlanWriter against the table (every word has a method, every method's words
// parse by the table's arities), both composers' plans, and what a launcher says to a
// plan file of another version. No container is started.
import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePlanFile } from '../../src/launch/plan-file.js';
import { composeBuildPlan } from '../../src/plan/build-plan.js';
import { composePlan } from '../../src/plan/compose.js';
import { PLAN_VERSION, PLAN_WORDS, PlanWriter, type PlanWordId } from '../../src/plan/words.js';
import { REPO } from '../helpers/paths.js';

const LAUNCHER = `${REPO}/native/build/ctr-launch`;
const Words = suite('plan words');

/** Walk WORDS by the table's arities: the ids met, in order; throws at a word not in it. */
function walk(words: readonly string[]): PlanWordId[] {
  const byName = new Map(Object.entries(PLAN_WORDS).map(([id, w]) => [w.name as string, id as PlanWordId]));
  const ids: PlanWordId[] = [];
  for (let i = 0; i < words.length && words[i] !== '--';) {
    const id = byName.get(words[i]);
    if (!id) throw new Error(`word ${i}, ${JSON.stringify(words[i])}, is not in the table: ${JSON.stringify(words)}`);
    if (i + PLAN_WORDS[id].arity >= words.length) throw new Error(`${words[i]} is cut short`);
    ids.push(id);
    i += 1 + PLAN_WORDS[id].arity;
  }
  return ids;
}

Words('C parser :: make -C native test: golden and malformed plans through the real parser, under ASan/UBSan', async () => {
  const r = await execa('make', ['-s', '-C', `${REPO}/native`, 'test'], { reject: false, all: true });
  assert.is(r.exitCode, 0, r.all);
  assert.match(r.all ?? '', /^plan_test: \d+ checks, 0 failed$/m);
});

Words('table :: the generated module is the .def file\'s words, names and arities', async () => {
  const def = await readFile(`${REPO}/native/plan_words.def`, 'utf8');
  const inDef = [...def.matchAll(/^WORD\((\w+), "([^"]+)", (\d+),/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
  assert.equal(Object.entries(PLAN_WORDS).map(([id, w]) => `${id} ${w.name} ${w.arity}`), inDef);
  assert.is(PLAN_VERSION, Number(/^#define PLAN_VERSION (\d+)$/m.exec(def)?.[1]));
});

Words('builder :: every word of the table has a PlanWriter method, and its words parse by the table', () => {
  const w = new PlanWriter()
    .image('/i.sif', 4096).imageDir('/rootfs').writable().squashfuse('/usr/bin/squashfuse_ll').mapRoot()
    .subids({ newuidmap: '/usr/bin/newuidmap', newgidmap: '/usr/bin/newgidmap', uidStart: 100000, uidCount: 65536, gidStart: 100000, gidCount: 65536 })
    .fakeIds().hostRoot().writableTmpfs().writableTmpfsSize(1 << 30).pidNs().pidNsInStep()
    .bind('/a', '/b', 'ro').bind('/c', '/d', 'rw', { optional: true }).tmpfs('/tmp', '1777').file('/etc/x', 'content')
    .passwdLine('u:x:1:1::/h:/bin/sh').groupLine('g:x:1:u').chdir('/').clearenv().keepenv('TERM').unsetenv('PATH')
    .setenv('A', '1').envOverride('B', '2').envPrefix('CTRENV_').action('run').join('on').joinTag('t').joinCount(2).joinKeep('/tmp/ctr.1.2').newKeyring().debug().bindEnv('PMIX_SERVER_TMPDIR', 'rw', { optional: true })
    .envPrepend('LD_LIBRARY_PATH', '/.singularity.d/libs')
    .cgroup('/sys/fs/cgroup/pids/u').cgroupSet('/sys/fs/cgroup/pids/u', 'pids.max', '50').cgroupOom('/sys/fs/cgroup/pids/u', 'memory.events', '1 MiB')
    .dropEnvPrefix('APPTAINER_').noEval().chdirOptional().umask('0022')
    .netNs().hostname('box').slirp4netns('/usr/bin/slirp4netns').overlayDir('/ov').overlayImage('/ov.img', '/usr/bin/fuse2fs', '/usr/bin/fuse-overlayfs')
    .overlayLower('/extra.sqfs', 0).noMountpoints().caps('2000', '1').runscriptTimeout(1500).writableTmpfsFuse('/usr/bin/fuse-overlayfs')
    .checkpointable().criu('/lib64/ld.so', '/lib:/usr/lib', '/usr/sbin/criu')
    .joinInstance().readyFd(3).imageBind('/d.sqfs', 0, '/sub', '/data');
  const words = w.words();
  const ids = walk(words);
  assert.equal([...new Set(ids)].sort(), Object.keys(PLAN_WORDS).sort(), 'every word emitted by some method');
  assert.equal(words.slice(0, 2), ['--plan-version', String(PLAN_VERSION)]);
  assert.equal(words.slice(words.indexOf('--bind'), words.indexOf('--bind') + 8), ['--bind', '/a', '/b', 'ro', '--bind', '/c', '/d', 'rw?']);
  assert.throws(() => new PlanWriter().image('/i', -1), /offset -1/);
  assert.throws(() => new PlanWriter().joinCount(0), /join count 0/);
  assert.equal(words.slice(words.indexOf('--image-bind'), words.indexOf('--image-bind') + 5), ['--image-bind', '/d.sqfs', '0', '/sub', '/data']);
  assert.throws(() => new PlanWriter().imageBind('/d.sqfs', -1, '/', '/d'), /image bind offset -1/);
  assert.throws(() => new PlanWriter().writableTmpfsSize(1.5), /tmpfs size 1.5/);
});

Words('composers :: composePlan and composeBuildPlan start with the version and parse by the table', () => {
  const host = {
    uid: 1001, gid: 1002, user: 'u', group: 'g', gecos: '', home: '/home/u', cwd: '/work', squashfuse: '/usr/bin/squashfuse_ll',
    realpaths: new Map<string, string>(), exists: new Set(['/home/u']), envFileLines: [],
  };
  const opts = { bind: ['/data:/d:ro'], writableTmpfs: true, cleanenv: true, env: ['A=1'], noHome: false, contain: true, fakeroot: true, debug: true, joinCount: 3, joinTag: 'x' };
  const plans = [
    composePlan('exec', { kind: 'sif', path: '/i.sif', offset: 512 }, opts, host).args,
    composePlan('shell', { kind: 'dir', path: '/r', offset: 0 }, { ...opts, fakeroot: false, contain: false }, host).args,
    composeBuildPlan('/rootfs', { writable: true, hostFiles: new Map([['/etc/hosts', '/etc/hosts']]), env: { X: '1' } }),
  ];
  for (const p of plans) {
    assert.equal(walk(p)[0], 'PLAN_VERSION');
    assert.is(p[1], String(PLAN_VERSION));
  }
  assert.ok(plans[0].includes('--map-root'), '--fakeroot is still --map-root');
});

async function launcher(args: string[]) {
  return execa(LAUNCHER, args, { reject: false });
}

Words('launcher :: a plan file of an older or newer version is refused with one line and a hint', async () => {
  const d = await mkdtemp(join(tmpdir(), 'ctr-words-'));
  try {
    const words = new PlanWriter().imageDir('/').words();
    for (const [name, plan, said] of [
      ['old', ['--plan-version', '0', ...words.slice(2)], 'version 0'],
      ['new', ['--plan-version', String(PLAN_VERSION + 1), ...words.slice(2)], `version ${PLAN_VERSION + 1}`],
      // What ctr wrote before plans had versions.
      ['unversioned', words.slice(2), 'version none'],
    ] as const) {
      const file = join(d, `${name}.plan`);
      await writeFile(file, encodePlanFile(LAUNCHER, plan), { mode: 0o755 });
      const r = await launcher(['--plan', file, 'true']);
      assert.is(r.exitCode, 255, name);
      assert.is(r.stdout, '', name);
      assert.is(r.stderr, `ctr: error: launch plan: ${said}, this launcher speaks version ${PLAN_VERSION}\n` +
        `ctr: hint: re-create the plan file ${file} with ctr plan`, name);
    }
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

Words('launcher :: --version, --check-plan and --rewrite-image on a plan PlanWriter wrote', async () => {
  const v = await launcher(['--version']);
  assert.is(v.exitCode, 0);
  assert.match(v.stdout, new RegExp(`^ctr-launch \\S+, plan version ${PLAN_VERSION}, FUSE server: .+$`));
  const d = await mkdtemp(join(tmpdir(), 'ctr-words-'));
  try {
    const file = join(d, 'p.plan');
    await writeFile(file, encodePlanFile(LAUNCHER, new PlanWriter().image('/nonexistent/i.sif', 0).bind('/proc', '/proc', 'rw')
      .bind('/nonexistent/x', '/x', 'ro', { optional: true }).bind('/nonexistent/y', '/y', 'ro')
      .netNs().slirp4netns('/nonexistent/slirp4netns').overlayLower('/nonexistent/l.sqfs', 0)
      .overlayImage('/nonexistent/ov.img', '/nonexistent/fuse2fs', '/nonexistent/fuse-overlayfs').words()), { mode: 0o750 });
    const c = await launcher(['--check-plan', file]);
    assert.is(c.exitCode, 255);
    assert.equal(c.stderr.split('\n'), [
      'ctr: error: image /nonexistent/i.sif: No such file or directory',
      'ctr: error: bind source /nonexistent/y: No such file or directory',
      'ctr: error: slirp4netns /nonexistent/slirp4netns: No such file or directory',
      'ctr: error: overlay /nonexistent/l.sqfs: No such file or directory',
      'ctr: error: overlay image /nonexistent/ov.img: No such file or directory',
      'ctr: error: fuse2fs /nonexistent/fuse2fs: No such file or directory',
      'ctr: error: fuse-overlayfs /nonexistent/fuse-overlayfs: No such file or directory',
    ]);
    const r = await launcher(['--rewrite-image', file, `${d}/staged.sif`, file]);
    assert.is(r.exitCode, 0, r.stderr);
    const after = (await readFile(file)).toString();
    assert.ok(after.startsWith(`#!${LAUNCHER} --plan\n--plan-version\0${PLAN_VERSION}\0--image\0${d}/staged.sif\0--offset\0`), after);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

Words.run();
