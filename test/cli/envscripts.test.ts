// The image's /.singularity.d/env scripts: plain assignments are applied by the launcher
// itself (no shell started), anything else is sourced by the image's /bin/sh. Both paths
// must give exactly the same environment, with shell semantics.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cp, mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxDir } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { ctr } from '../helpers/user.js';

const Env = suite('env scripts');
let img: string;

const PLAIN = `#!/bin/sh
# comment, blank lines and the forms the launcher evaluates itself

export A=plain
export B="x \${A} \\$y \\"q\\" $A"
C='lit $A'
export C
D=local
export E="$D-$HOME"
export PATH="/opt/bin:$PATH"
export EMPTY=
`;
const SHOW = 'for v in A B C D E PATH EMPTY F; do eval "echo $v=\\${$v-unset}"; done';
const EXPECTED = 'A=plain\nB=x plain $y "q" plain\nC=lit $A\nD=unset\nE=local-/home/ctrtest\n' +
  'PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nEMPTY=\n';

Env.before(async () => {
  img = await mkdtemp(join(tmpdir(), 'ctr-envimg-'));
  await cp(await busyboxDir(), img, { recursive: true, verbatimSymlinks: true });
  await writeFile(join(img, '.singularity.d/env/90-environment.sh'), PLAIN);
  await chmod(img, 0o755);
});
Env.after(async () => { await rm(img, { recursive: true, force: true }); });
Env.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, []);
});

Env('plain assignments :: applied without a shell, shell semantics', async () => {
  const r = await ctr(['exec', '--debug', img, 'sh', '-c', SHOW], { cwd: '/' });
  assert.match(String(r.stderr), /env scripts applied without a shell/);
  assert.is(r.stdout, `${EXPECTED}F=unset\n`);
});

Env('anything else :: sourced by the image shell, same result', async () => {
  const extra = join(img, '.singularity.d/env/91-conditional.sh');
  await writeFile(extra, 'if [ -n "$A" ]; then export F="from a conditional"; fi\n');
  try {
    const r = await ctr(['exec', '--debug', img, 'sh', '-c', SHOW], { cwd: '/' });
    assert.match(String(r.stderr), /91-conditional.sh is not plain assignments/);
    assert.is(r.stdout, `${EXPECTED}F=from a conditional\n`);
  } finally {
    await rm(extra);
  }
});

Env('overrides :: --env wins over both paths', async () => {
  const r = await ctr(['exec', '--env', 'A=over', '--env', 'EMPTY=set', img, 'sh', '-c', 'echo $A $EMPTY'], { cwd: '/' });
  assert.is(r.stdout, 'over set\n');
});

Env.run();
