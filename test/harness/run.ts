// `npm test`: the whole suite, as CI runs it. Needs root, because rootless behaviour is
// tested as a real unprivileged user that this harness creates (and /dev/fuse must be
// usable by users, mode 0666, as real systems ship it). Refuses loudly otherwise.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { chmod, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ensureTestUser, stageForUser } from '../helpers/user.js';
import { REPO } from '../helpers/paths.js';

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('test harness: must run as root: it creates the unprivileged test user and makes /dev/fuse usable (see README)\n');
    return 2;
  }
  await ensureTestUser();
  if (((await stat('/dev/fuse')).mode & 0o777) !== 0o666) await chmod('/dev/fuse', 0o666);
  const root = await stageForUser();
  const only = process.argv[2];
  // --no-color: uvu would otherwise set FORCE_COLOR for every test, and every Node child
  // (ctr itself) would inherit it.
  // `npm test cli` runs a directory's tests, `npm test cli/fuse` one file's.
  const [dir, pattern] = !only ? ['dist/test', '\\.test\\.js$']
    : existsSync(join(REPO, 'dist/test', only)) ? [`dist/test/${only}`, '\\.test\\.js$']
    : [`dist/test/${dirname(only)}`, `^${basename(only)}\\.test\\.js$`];
  const res = await execa(`${REPO}/node_modules/.bin/uvu`, [dir, pattern, '--no-color'], {
    cwd: REPO, reject: false, all: true, stdout: ['pipe', 'inherit'], stderr: ['pipe', 'inherit'],
    env: { CTR_TEST_ROOT: root },
  });
  const total = /Total:\s+(\d+)/.exec(res.all ?? '');
  const passed = /Passed:\s+(\d+)/.exec(res.all ?? '');
  if (total && passed) {
    const t = Number(total[1]), p = Number(passed[1]);
    process.stdout.write(`\n${p} passed, ${t - p} failed\n`);
  }
  return res.exitCode ?? 1;
}

main().then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 1; });
