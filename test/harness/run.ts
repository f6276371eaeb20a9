// `npm test`: the whole suite, as CI runs it. Needs root, because rootless behaviour is
// tested as a real unprivileged user that this harness creates (and /dev/fuse must be
// usable by users, mode 0666, as real systems ship it). Refuses loudly otherwise.
//
// `npm test` runs every test file, `npm test cli` one directory's, `npm test cli/fuse`
// one file's. Each file runs in its own uvu process, one after another (they share the
// test user, its mounts and its processes): a file that throws outside a test, at import
// or in a hook, or that kills its process, is counted as a failure of that file and the
// others still run. The last line sums them all: `N passed, N failed`.
import { execa } from 'execa';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ensureTestUser, stageForUser } from '../helpers/user.js';
import { REPO } from '../helpers/paths.js';

const TESTS = join(REPO, 'dist/test');
/** scripts/cluster.sh's state directory. */
const CLUSTER_DIR = process.env.CTR_CLUSTER_DIR ?? '/var/lib/ctr-cluster';

/** Built test files under DIR (dist/test/...), sorted, that still have a source in test/. */
function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith('.test.js') && existsSync(join(REPO, 'test', relative(TESTS, path)).replace(/\.js$/, '.ts'))) out.push(path);
  }
  return out;
}

function selected(only: string | undefined): string[] {
  if (!only) return testFiles(TESTS);
  const dir = join(TESTS, only);
  if (existsSync(dir) && statSync(dir).isDirectory()) return testFiles(dir);
  const file = `${dir}.test.js`;
  return existsSync(file) ? [file] : [];
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('test harness: must run as root: it creates the unprivileged test user and makes /dev/fuse usable (see README)\n');
    return 2;
  }
  const only = process.argv[2];
  const files = selected(only);
  if (files.length === 0) {
    process.stderr.write(`test harness: no test files for '${only}' (expected a directory or file under test/, without .test.ts)\n`);
    return 2;
  }
  await ensureTestUser();
  if (((await stat('/dev/fuse')).mode & 0o777) !== 0o666) await chmod('/dev/fuse', 0o666);
  const root = await stageForUser();
  // The SIF reference tool, built once here (from Debian's sources) rather than by
  // whichever test first needs it; the tests then run the binary itself.
  const env: Record<string, string> = { CTR_TEST_ROOT: root };
  if (!process.env.CTR_SIFTOOL) {
    const sif = await execa('bash', [join(REPO, 'scripts/siftool.sh'), '--build'], { reject: false, stderr: 'inherit' });
    if (sif.exitCode !== 0) {
      process.stderr.write('test harness: could not build the SIF reference tool (scripts/siftool.sh): the SIF tests need it\n');
      return 2;
    }
    env.CTR_SIFTOOL = sif.stdout.trim();
  }

  const clusterWasUp = existsSync(CLUSTER_DIR);
  let passed = 0, failed = 0;
  const broken: string[] = [];
  for (const file of files) {
    const name = relative(TESTS, file).replace(/\.test\.js$/, '');
    // --no-color: uvu would otherwise set FORCE_COLOR for every test, and every Node
    // child (ctr itself) would inherit it. The working directory is where the test user
    // can reach (ctr binds the cwd): the checkout, or its staged copy when the checkout
    // is private (a clone under /root).
    // (uvu names the file as the pattern matched it: cli/front.test.js.)
    const res = await execa(join(REPO, 'node_modules/.bin/uvu'),
      [TESTS, `^${relative(TESTS, file).replace(/\./g, '\\.')}$`, '--no-color'], {
        cwd: root, reject: false, all: true, stdout: ['pipe', 'inherit'], stderr: ['pipe', 'inherit'], env,
      });
    const out = res.all ?? '';
    const total = /Total:\s+(\d+)/.exec(out);
    const pass = /Passed:\s+(\d+)/.exec(out);
    // uvu swallows an error thrown by a suite's before() hook: that suite's tests then
    // count as not passed, with exit status 0. Both ways, a file whose counts or status
    // say it failed is named at the end.
    if (total && pass && !/Exiting early/.test(out)) {
      const t = Number(total[1]), p = Number(pass[1]);
      passed += p;
      failed += t - p;
      if (t > p || res.exitCode !== 0) broken.push(`${name} (${t - p} of ${t} failed${res.exitCode !== 0 && t === p ? `, exit ${res.exitCode}` : ''})`);
      if (t === p && res.exitCode !== 0) failed += 1;
    } else {
      failed += 1;
      const how = res.signal ? `killed by ${res.signal}` : `exit ${res.exitCode}`;
      process.stdout.write(`\ntest harness: ${name} did not finish (${how}): counted as one failure\n`);
      broken.push(`${name} (did not finish: ${how})`);
    }
  }
  // The Slurm test cluster (test/helpers/cluster.ts) is shared by the files that use it
  // and taken down after the last one, when this run brought it up.
  if (!clusterWasUp && existsSync(CLUSTER_DIR)) {
    await execa('bash', [join(REPO, 'scripts/cluster.sh'), 'down'], { reject: false, stdout: 'inherit', stderr: 'inherit' });
  }
  if (root !== REPO) await rm(root, { recursive: true, force: true });
  if (broken.length > 0) process.stdout.write(`\nfailed files: ${broken.join(', ')}\n`);
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 1; });
