// ctr's front: what bin/ctr and the command line say before any container starts. The
// words are a contract (`ctr: error: <what>: <why>`, `ctr: hint: ...`, exit 255, no
// stack trace), so these tests assert them exactly.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { ctr, userTmp } from '../helpers/user.js';

const Node = suite('Node never parses ctr\'s arguments');
let sif: string, tmp: string;

Node.before(async () => {
  sif = await busyboxSif();
  tmp = await userTmp('ctr-front-');
});
Node.after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** bin/ctr through the start-up snapshot and the launcher, and with plain Node. */
const WAYS: Array<[string, Record<string, string>]> = [['snapshot', {}], ['plain Node', { CTR_NO_SNAPSHOT: '1' }]];

Node('--env-file missing :: ctr\'s own one-line error, exit 255, whichever way ctr starts', async () => {
  for (const [way, env] of WAYS) {
    for (const args of [['--env-file', '/nonexistent'], ['--env-file=/nonexistent']]) {
      const r = await ctr(['exec', ...args, sif, 'true'], { env });
      assert.is(r.stderr, 'ctr: error: env file /nonexistent: no such file or directory\n', `${way} ${args.join(' ')}`);
      assert.is(r.stdout, '');
      assert.is(r.exitCode, 255);
    }
  }
  const plan = await ctr(['plan', '-o', join(tmp, 'x.plan'), '--env-file', '/nonexistent', sif]);
  assert.is(plan.stderr, 'ctr: error: env file /nonexistent: no such file or directory\n');
  assert.is(plan.exitCode, 255);
});

Node('--env-file with NODE_OPTIONS :: reaches the container, not ctr\'s own Node', async () => {
  const file = join(tmp, 'node.env');
  await writeFile(file, 'NODE_OPTIONS=--require=/nonexistent/preload.js\nA=1\n', { mode: 0o644 });
  for (const [way, env] of WAYS) {
    const r = await ctr(['exec', '--env-file', file, sif, 'sh', '-c', 'echo "$NODE_OPTIONS|$A"'], { env });
    assert.is(r.stderr, '', way);
    assert.is(r.stdout, '--require=/nonexistent/preload.js|1\n', way);
    assert.is(r.exitCode, 0, way);
  }
});

Node('options Node knows :: after the verb they are ctr\'s (unknown to ctr: its own error)', async () => {
  for (const [way, env] of WAYS) {
    const r = await ctr(['exec', '--inspect', sif, 'true'], { env });
    assert.is(r.stderr, 'ctr: error: unknown option --inspect\nctr: hint: see ctr --help\n', way);
    assert.is(r.exitCode, 255, way);
  }
});

Node.run();
