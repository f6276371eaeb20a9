// ctr plan -o FILE: compose once, launch many times without Node (batch scripts, ranks).
import { openImage } from '../../image/open.js';
import { resolveImageArg } from './image-arg.js';
import { gatherHostFacts } from '../../host/facts.js';
import { composePlan, shellCommand } from '../../plan/compose.js';
import type { Action, LaunchOptions } from '../../plan/options.js';
import { launcherPath } from '../../launch/launcher.js';
import { writePlanFile } from '../../launch/plan-file.js';

export async function writePlan(out: string, action: Action, imageArg: string, command: string[], opts: LaunchOptions): Promise<void> {
  const image = await openImage(await resolveImageArg(imageArg, opts));
  const host = await gatherHostFacts(opts, image.kind !== 'dir', image.kind === 'dir' ? image.path : undefined);
  const plan = composePlan(action, image, opts, host);
  const cmd = shellCommand(action, opts, command);
  const args = cmd.length ? [...plan.args, '--', ...cmd] : plan.args;
  await writePlanFile(out, launcherPath(), args);
}
