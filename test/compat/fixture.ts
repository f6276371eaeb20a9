// Shared by the ported Apptainer cases: an image laid out like Apptainer's e2e testdata
// busybox_amd64.sif (built by Singularity 3.8.1 from docker busybox:1.33.1), made here
// from Debian's busybox: the same /.singularity.d scripts' behaviour (10-docker2singularity
// sets PATH, 99-base sets LD_LIBRARY_PATH and PS1, 95-apps is real shell code, 99-runtimevars
// applies SING_USER_DEFINED_*), an OCI-style runscript, a startscript, labels, and the SIF
// launch line `#!/usr/bin/env run-singularity`. The SIF is assembled by the reference
// siftool, so ctr reads bytes it did not write. No suites here.
import { execa } from 'execa';
import { chmod, mkdir, symlink, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { cached, busyboxSif } from '../helpers/images.js';
import { SIFTOOL } from '../helpers/paths.js';
export { ctrUser, ownLeftovers, run, type Ran } from '../builder/fixture.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const LAUNCH_LINE = '#!/usr/bin/env run-singularity\n';

/** Our own scripts with the behaviour of Singularity 3.8's; not their text. */
const ENV_SCRIPTS: Record<string, string> = {
  '01-base.sh': '#!/bin/sh\n# base environment: nothing to set\n',
  '10-docker2singularity.sh': `#!/bin/sh\nexport PATH="${DEFAULT_PATH}"\n`,
  '90-environment.sh': '#!/bin/sh\n# Custom environment shell code should follow\n',
  '94-appsbase.sh': '',
  '95-apps.sh': '#!/bin/sh\nif test -n "${SINGULARITY_APPNAME:-}"; then\n  if test -d "/scif/apps/$SINGULARITY_APPNAME"; then\n' +
    '    PATH="/scif/apps/$SINGULARITY_APPNAME/bin:$PATH"; export PATH\n  else\n    echo "no such app: $SINGULARITY_APPNAME"; exit 1\n  fi\nfi\n',
  '99-base.sh': '#!/bin/sh\nif [ -z "$LD_LIBRARY_PATH" ]; then\n  LD_LIBRARY_PATH=/.singularity.d/libs\nelse\n' +
    '  LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"\nfi\nPS1="Singularity> "\nexport LD_LIBRARY_PATH PS1\n',
  '99-runtimevars.sh': '#!/bin/sh\n[ -n "${SING_USER_DEFINED_PREPEND_PATH:-}" ] && PATH="$SING_USER_DEFINED_PREPEND_PATH:$PATH"\n' +
    '[ -n "${SING_USER_DEFINED_APPEND_PATH:-}" ] && PATH="$PATH:$SING_USER_DEFINED_APPEND_PATH"\n' +
    '[ -n "${SING_USER_DEFINED_PATH:-}" ] && PATH="$SING_USER_DEFINED_PATH"\n' +
    'unset SING_USER_DEFINED_PREPEND_PATH SING_USER_DEFINED_APPEND_PATH SING_USER_DEFINED_PATH\nexport PATH\n',
};

const RUNSCRIPT = '#!/bin/sh\nOCI_CMD=\'"sh"\'\nif [ $# -gt 0 ]; then exec "$@"; fi\neval "set $OCI_CMD"\nexec "$@"\n';

async function makeTree(dir: string): Promise<void> {
  const sd = join(dir, '.singularity.d');
  for (const d of ['bin', 'etc', 'home', 'proc', 'sys', 'dev', 'root', 'tmp', 'var/tmp', 'usr/sbin', '.singularity.d/env',
    '.singularity.d/actions', '.singularity.d/libs']) await mkdir(join(dir, d), { recursive: true });
  await chmod(join(dir, 'tmp'), 0o1777);
  await chmod(join(dir, 'var/tmp'), 0o1777);
  await execa('cp', ['/bin/busybox', join(dir, 'bin/busybox')]);
  const { stdout } = await execa('/bin/busybox', ['--list']);
  for (const a of stdout.split('\n').filter((x) => x && x !== 'busybox')) await symlink('busybox', join(dir, 'bin', a));
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(join(dir, 'etc/hosts'), '');
  await writeFile(join(dir, 'etc/resolv.conf'), '');
  for (const [name, text] of Object.entries(ENV_SCRIPTS)) await writeFile(join(sd, 'env', name), text, { mode: 0o755 });
  await writeFile(join(sd, 'runscript'), RUNSCRIPT, { mode: 0o755 });
  await writeFile(join(sd, 'startscript'), '#!/bin/sh\n', { mode: 0o755 });
  await writeFile(join(sd, 'Singularity'), 'BootStrap: docker\nFrom: busybox:1.33.1\n');
  await writeFile(join(sd, 'labels.json'), JSON.stringify({ 'org.label-schema.usage.singularity.version': '3.8.1' }, null, '\t'));
  await symlink('.singularity.d/runscript', join(dir, 'singularity'));
  await symlink('.singularity.d/env/90-environment.sh', join(dir, 'environment'));
}

/** The Apptainer-layout busybox tree as a directory (root's: made as root), as a sandbox. */
export function apptainerBusyboxDir(): Promise<string> {
  return cached('compat-busybox.dir', makeTree);
}

/** The Apptainer-layout busybox image as a SIF with Apptainer's launch line. */
export async function apptainerBusyboxSif(): Promise<string> {
  const tree = await apptainerBusyboxDir();
  const sqfs = await cached('compat-busybox.sqfs', async (tmp) => {
    await execa('mksquashfs', [tree, tmp, '-noappend', '-all-root', '-comp', 'gzip', '-quiet', '-no-progress']);
  });
  return cached('compat-busybox_amd64.sif', async (tmp) => {
    await execa(SIFTOOL, ['new', tmp]);
    await execa(SIFTOOL, ['add', tmp, sqfs, '--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', '2']);
    // siftool leaves the launch field empty; Apptainer writes its launch line there.
    const fh = await open(tmp, 'r+');
    await fh.write(Buffer.from(LAUNCH_LINE), 0, LAUNCH_LINE.length, 0);
    await fh.close();
    await chmod(tmp, 0o755);
  });
}

export { debianSif } from '../helpers/images.js';

/** ctr's own test busybox (a plain image without Apptainer's env scripts). */
export { busyboxSif };
