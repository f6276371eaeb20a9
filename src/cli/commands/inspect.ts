// ctr inspect [--json] IMAGE
import { inspectImage, renderInspection } from '../../inspect/inspect.js';

export async function inspectCommand(image: string, json: boolean): Promise<void> {
  const i = await inspectImage(image);
  process.stdout.write(json ? JSON.stringify(i, null, 2) + '\n' : renderInspection(i));
}
