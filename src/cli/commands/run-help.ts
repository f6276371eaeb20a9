// ctr run-help IMAGE: the image's help file, as Apptainer's run-help (which runs
// `inspect --helpfile`, and says so when there is none; exit 0 either way).
import { inspectImage } from '../../inspect/inspect.js';
import { printable } from '../../inspect/render.js';

export async function runHelpCommand(image: string): Promise<void> {
  const { helpfile } = await inspectImage(image, new Set(['helpfile']));
  process.stdout.write(helpfile ? `${printable(helpfile.replace(/\n+$/, ''))}\n` : 'No help sections were defined for this image\n');
}
