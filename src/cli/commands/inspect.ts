// ctr inspect [--labels|--deffile|--runscript|--startscript|--test|--helpfile|
// --environment|--image|--all|--list-apps] [--app NAME] [--json] IMAGE: Apptainer's sections, labels by default;
// --all is every section, as JSON (as Apptainer's).
import { inspectImage, SECTIONS, type Section } from '../../inspect/inspect.js';
import { inspectionJson, inspectionText } from '../../inspect/render.js';

export async function inspectCommand(image: string, flags: Record<string, unknown>): Promise<void> {
  const asked = SECTIONS.filter((s) => flags[s] || flags.all);
  const listApps = Boolean(flags['list-apps'] || flags.all);
  // As Apptainer: labels by default, unless only the apps are asked for; --all is every app.
  const sections = new Set<Section>(asked.length ? asked : listApps ? [] : ['labels']);
  const app = flags.all ? undefined : flags.app as string | undefined;
  const i = await inspectImage(image, sections, { app, listApps, allApps: Boolean(flags.all) });
  process.stdout.write(flags.json || flags.all ? inspectionJson(i) : inspectionText(i, app));
}
