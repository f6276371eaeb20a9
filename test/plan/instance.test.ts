// A process joining an instance: the instance's container words, the exec's per-process
// words (src/plan/instance.ts), and the flags that would change the container refused.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CtrError } from '../../src/errors.js';
import { checkInstanceFlags, joinInstanceWords } from '../../src/plan/instance.js';
import { PlanWriter } from '../../src/plan/words.js';

const Join = suite('plan instance');

const started = new PlanWriter().image('/i.sif', 4096).pidNs().bind('/home/u', '/home/u', 'rw').chdir('/home/u')
  .setenv('HOME', '/home/u').envOverride('APPTAINER_INSTANCE', 'web').action('exec').join('on').joinTag('instance.web')
  .joinInstance().readyFd(3).words();
const exec = new PlanWriter().image('/i.sif', 4096).pidNs().bind('/work', '/work', 'rw').chdir('/tmp').clearenv()
  .setenv('HOME', '/home/u').envOverride('FOO', 'bar').action('shell').join('on').joinTag('instance.web').joinInstance().words();

Join('joinInstanceWords :: the instance\'s mounts and join words, the exec\'s cwd, environment and action; no --ready-fd', () => {
  assert.equal(joinInstanceWords(started, exec), [
    '--plan-version', '1', '--image', '/i.sif', '--offset', '4096', '--pid-ns', '--bind', '/home/u', '/home/u', 'rw',
    '--join', 'on', '--join-tag', 'instance.web', '--join-instance',
    '--chdir', '/tmp', '--clearenv', '--setenv', 'HOME', '/home/u', '--env-override', 'FOO', 'bar', '--action', 'shell',
  ]);
});

Join('checkInstanceFlags :: per-process flags pass; the first other one is refused by name', () => {
  checkInstanceFlags('instance://web', ['env', 'pwd', 'cleanenv', 'env-file', 'no-eval', 'shell']);
  for (const [given, bad] of [[['env', 'bind'], 'bind'], [['fakeroot'], 'fakeroot'], [['memory', 'env'], 'memory'], [['hostname'], 'hostname']]) {
    try {
      checkInstanceFlags('instance://web', given as string[]);
      assert.unreachable(`${bad} refused`);
    } catch (err) {
      assert.instance(err, CtrError);
      assert.is((err as CtrError).message, `--${bad} with instance://web: it would change the container, which the instance already has`);
    }
  }
});

Join.run();
