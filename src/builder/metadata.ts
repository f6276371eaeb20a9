// /.singularity.d inside the root file system, laid out as Apptainer does, so Apptainer
// (and ctr) run the image as its author meant: runscript, env scripts, labels, help, test.
import { chmod, mkdir, symlink, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Definition } from './definition.js';

export async function writeSingularityDir(rootfs: string, def: Definition, labels: Record<string, string>): Promise<void> {
  const sd = join(rootfs, '.singularity.d');
  await mkdir(join(sd, 'env'), { recursive: true });
  await mkdir(join(sd, 'actions'), { recursive: true });
  await mkdir(join(sd, 'libs'), { recursive: true });
  const s = def.sections;
  if (s.environment !== undefined) {
    await writeFile(join(sd, 'env/90-environment.sh'), `#!/bin/sh\n# Custom environment shell code should follow\n\n${s.environment}`);
  }
  if (s.runscript !== undefined) await script(join(sd, 'runscript'), s.runscript);
  if (s.test !== undefined) await script(join(sd, 'test'), s.test);
  if (s.help !== undefined) await writeFile(join(sd, 'runscript.help'), s.help);
  await writeFile(join(sd, 'labels.json'), JSON.stringify(labels, null, '\t') + '\n');
  await writeFile(join(sd, 'Singularity'), def.raw);
  for (const [link, target] of [['singularity', '.singularity.d/runscript'], ['environment', '.singularity.d/env/90-environment.sh']]) {
    await rm(join(rootfs, link), { force: true });
    await symlink(target, join(rootfs, link));
  }
}

async function script(path: string, body: string): Promise<void> {
  await writeFile(path, body.startsWith('#!') ? body : `#!/bin/sh\n\n${body}`);
  await chmod(path, 0o755);
}
