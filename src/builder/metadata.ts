// /.singularity.d of a definition file's build, written into the root file system being
// built (the layout itself: image/layout.ts).
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { environmentScript, singularityDir, type LayoutEntry } from '../image/layout.js';
import type { Definition } from './definition.js';

export async function writeSingularityDir(rootfs: string, def: Definition, labels: Record<string, string>): Promise<void> {
  const s = def.sections;
  await writeEntries(rootfs, singularityDir({
    runscript: s.runscript, startscript: s.startscript, test: s.test, help: s.help, labels, deffile: def.raw,
    // Always there, as Apptainer writes it: /environment points at it.
    env: { '90-environment.sh': environmentScript(s.environment ?? '') },
  }));
}

/** ENTRIES under ROOT; what is there already is replaced (a link, a file of the base image). */
export async function writeEntries(root: string, entries: LayoutEntry[]): Promise<void> {
  for (const e of entries) {
    const at = join(root, e.path);
    if (e.type === 'dir') {
      await mkdir(at, { recursive: true, mode: e.mode });
    } else if (e.type === 'file') {
      await rm(at, { force: true });
      await writeFile(at, e.content);
      await chmod(at, e.mode);
    } else {
      await rm(at, { force: true });
      await symlink(e.target, at);
    }
  }
}

/** /.singularity.d/labels.json again, after %post added labels through $APPTAINER_LABELS. */
export async function writeLabels(rootfs: string, labels: Record<string, string>): Promise<void> {
  await writeEntries(rootfs, singularityDir({ labels }).filter((e) => e.path === '.singularity.d/labels.json'));
}
