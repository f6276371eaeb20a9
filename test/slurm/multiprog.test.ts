// The plugin's --multi-prog text (native/spank/spank_multiprog.c): the plan file put in
// front of each line's command and checked, walked as slurmstepd walks the lines. Its
// golden cases are C (native/spank/test/multiprog_test.c, under ASan/UBSan); the steps
// themselves run in multinode.test.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { REPO } from '../helpers/paths.js';

const MultiProg = suite('slurm multi-prog text');

MultiProg('C :: make -C native/spank test: rewrite and check of the configuration text, under ASan/UBSan', async () => {
  const r = await execa('make', ['-s', '-C', `${REPO}/native/spank`, 'test'], { reject: false, all: true });
  assert.is(r.exitCode, 0, r.all);
  assert.match(r.all ?? '', /^multiprog_test: \d+ checks, 0 failed$/m);
});

MultiProg.run();
