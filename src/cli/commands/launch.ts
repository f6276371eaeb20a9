// ctr exec | run | shell: plan, then hand over to the launcher.
import { openImage } from '../../image/open.js';
import { gatherHostFacts } from '../../host/facts.js';
import { composePlan } from '../../plan/compose.js';
import type { Action, LaunchOptions } from '../../plan/options.js';
import { runLauncher } from '../../launch/launcher.js';

export async function launch(action: Action, imageArg: string, command: string[], opts: LaunchOptions): Promise<number> {
  const image = await openImage(imageArg);
  const host = await gatherHostFacts(opts, image.kind !== 'dir');
  const plan = composePlan(action, image, opts, host);
  if (opts.debug) process.stderr.write(`ctr: debug: launch plan: ${JSON.stringify(plan.args)}\n`);
  return runLauncher([...plan.args, '--', ...command]);
}
