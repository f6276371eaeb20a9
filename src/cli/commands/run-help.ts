// ctr run-help [--app NAME] IMAGE: the image's help file, as Apptainer's run-help (which runs
// `inspect --helpfile`, and says so when there is none; exit 0 either way).
import { inspectImage } from '../../inspect/inspect.js';
import { printable } from '../../inspect/render.js';

export async function runHelpCommand(image: string, app?: string): Promise<void> {
  // An app the image lacks has no help, as Apptainer says (and exits 0).
  const there = app === undefined || (await inspectImage(image, new Set(), { listApps: true })).apps?.[app] !== undefined;
  const i = there ? await inspectImage(image, new Set(['helpfile']), { app }) : {};
  const helpfile = app === undefined ? i.helpfile : i.apps?.[app]?.helpfile;
  process.stdout.write(helpfile ? `${printable(helpfile.replace(/\n+$/, ''))}\n` : 'No help sections were defined for this image\n');
}
