// What ctr build says (issue 13): one final line, what was written, its size and how
// long, also when standard error is not a terminal (a job log); -q/--quiet (or
// CTR_QUIET) silences it; on a terminal the progress shows the rate and the time left.
// As the test user; the pull side is in test/oci/pull.test.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clock, rateLine } from '../../src/builder/progress.js';
import { humanSize } from '../../src/human.js';
import { makeBusyboxTree } from '../helpers/images.js';
import { CTR_BIN } from '../helpers/paths.js';
import { asUser, ctr, TEST_USER, userTmp } from '../helpers/user.js';

const Summary = suite('build summary line');
let dir: string, tree: string, n = 0;
const out = () => join(dir, `out${n++}.sif`);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The line for OUT as it is on disk now. */
const line = (sif: string) => new RegExp(`^ctr: wrote ${esc(sif)} \\(${esc(humanSize(statSync(sif).size))}\\) in \\d+\\.\\d s\n$`);

Summary.before(async () => {
  dir = await userTmp('ctr-summary-');
  tree = join(dir, 'tree');
  await makeBusyboxTree(tree);
  await execa('tar', ['-C', tree, '-cf', join(dir, 'tree.tar'), '.']);
  await execa('chmod', ['-R', 'a+rX', dir]);
  await execa('chown', ['-R', `${TEST_USER}:`, dir]);
});
Summary.after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

Summary('not a terminal :: exactly one line: what, size, time', async () => {
  for (const source of [tree, join(dir, 'tree.tar')]) {
    const sif = out();
    const r = await ctr(['build', sif, source], { cwd: dir });
    assert.is(r.exitCode, 0, String(r.stderr));
    assert.is(r.stdout, '');
    assert.match(String(r.stderr), line(sif), source);
  }
});

Summary('-q, --quiet, CTR_QUIET :: nothing at all', async () => {
  for (const [flags, env] of [[['-q'], {}], [['--quiet'], {}], [[], { CTR_QUIET: '1' }]] as Array<[string[], Record<string, string>]>) {
    const sif = out();
    const r = await ctr(['build', ...flags, sif, tree], { cwd: dir, env });
    assert.equal([r.stdout, r.stderr, r.exitCode], ['', '', 0], flags.join(' ') || 'CTR_QUIET');
  }
});

Summary('definition file through the fake-root user namespace :: still one line, not one per process', async () => {
  const def = join(dir, 'x.def');
  await writeFile(def, 'Bootstrap: busybox\n\n%post\n    echo built > /built\n', { mode: 0o644 });
  const sif = out();
  // auto: subuid where the user has subordinate ids (the test user has), as here.
  const r = await ctr(['build', sif, def], { cwd: dir });
  assert.is(r.exitCode, 0, String(r.stderr));
  assert.match(String(r.stderr), line(sif));
});

Summary('terminal :: progress with rate and time left, then the line', async () => {
  const sif = out();
  // script(1) gives the build a terminal for stdout and stderr.
  const r = await asUser('script', ['-qec', `${CTR_BIN} build ${sif} ${join(dir, 'tree.tar')}`, '/dev/null'], { cwd: dir });
  assert.is(r.exitCode, 0, String(r.stdout));
  const text = String(r.stdout).replace(/\r\n/g, '\n');
  assert.match(text, /ctr: \[\d+\.\ds\] packing tarball /);
  assert.match(text, new RegExp(`\\rctr: reading ${esc(join(dir, 'tree.tar'))}: [\\d.]+ (B|KiB|MiB) / [\\d.]+ (B|KiB|MiB), [\\d.]+ (B|KiB|MiB|GiB)/s, 0:00 left\\x1b\\[K\n`));
  assert.match(text, new RegExp(`ctr: wrote ${esc(sif)} \\([\\d.]+ (KiB|MiB)\\) in \\d+\\.\\d s\n$`));
  // A directory: its files' bytes and the rate (its total is not known beforehand).
  const fromDir = out();
  const d = await asUser('script', ['-qec', `${CTR_BIN} build ${fromDir} ${tree}`, '/dev/null'], { cwd: dir });
  assert.is(d.exitCode, 0, String(d.stdout));
  assert.match(String(d.stdout), new RegExp(`\\rctr: packing ${esc(tree)}: [\\d.]+ (B|KiB|MiB), [\\d.]+ (B|KiB|MiB|GiB)/s\\x1b\\[K\r?\n`));
});

Summary('rate words :: rate, time left, unknown total', () => {
  assert.is(rateLine(10 << 20, 40 << 20, 2), '10.0 MiB / 40.0 MiB, 5.0 MiB/s, 0:06 left');
  assert.is(rateLine(3 << 20, 0, 3), '3.0 MiB, 1.0 MiB/s');
  assert.is(clock(3725), '1:02:05');
  assert.is(clock(59.6), '1:00');
});

Summary.run();
