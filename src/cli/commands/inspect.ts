// ctr inspect [--labels|--deffile|--runscript|--startscript|--test|--helpfile|
// --environment|--image|--all] [--json] IMAGE: Apptainer's sections, labels by default;
// --all is every section, as JSON (as Apptainer's).
import { inspectImage, SECTIONS, type Section } from '../../inspect/inspect.js';
import { inspectionJson, inspectionText } from '../../inspect/render.js';

export async function inspectCommand(image: string, flags: Record<string, unknown>): Promise<void> {
  const asked = SECTIONS.filter((s) => flags[s] || flags.all);
  const sections = new Set<Section>(asked.length ? asked : ['labels']);
  const i = await inspectImage(image, sections);
  process.stdout.write(flags.json || flags.all ? inspectionJson(i) : inspectionText(i));
}
