// ctr exec | run | shell: plan, then hand over to the launcher: send it the plan when it
// started us to ask for one (bin/ctr: ctr-launch --ask), else start it with the plan.
import { openImage } from '../../image/open.js';
import { resolveImageArg } from './image-arg.js';
import { gatherHostFacts } from '../../host/facts.js';
import { composePlan, shellCommand } from '../../plan/compose.js';
import { describeFakeroot } from '../../plan/fakeroot.js';
import { describeGpu } from '../../plan/devices.js';
import type { Action, LaunchOptions } from '../../plan/options.js';
import { fromSnapshot, planDescriptor, runLauncher, sendPlan } from '../../launch/launcher.js';

export async function launch(action: Action, imageArg: string, command: string[], opts: LaunchOptions): Promise<number> {
  const image = await openImage(await resolveImageArg(imageArg, opts));
  const host = await gatherHostFacts(opts, image.kind !== 'dir', image.kind === 'dir' ? image.path : undefined);
  const plan = composePlan(action, image, opts, host);
  const fd = planDescriptor();
  if (opts.debug) {
    process.stderr.write(`ctr: debug: started from ${fromSnapshot() ? 'the start-up snapshot' : 'plain Node (no snapshot)'}` +
      `${fd !== undefined ? ', planning for the launcher that started it (--ask)' : ''}\n`);
    if (plan.fakeroot) process.stderr.write(`ctr: debug: ${describeFakeroot(plan.fakeroot)}\n`);
    for (const line of describeGpu(host.gpu)) process.stderr.write(`ctr: debug: ${line}\n`);
    process.stderr.write(`ctr: debug: launch plan: ${JSON.stringify(plan.args)}\n`);
  }
  const words = [...plan.args, '--', ...shellCommand(action, opts, command)];
  return fd !== undefined ? sendPlan(fd, words) : runLauncher(words);
}
