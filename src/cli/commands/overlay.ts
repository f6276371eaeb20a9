// `ctr overlay create [--size SIZE] [--fakeroot] FILE`: an ext3 image file holding empty
// upper/ and work/ directories, as `apptainer overlay create` makes, for
// `ctr exec --overlay FILE` (native/launch_overlay.c). Its size is the quota for the
// changes kept in it. Made with e2fsprogs' mkfs.ext3 -d (and debugfs for --fakeroot's
// root-owned directories), which run as the user: no mount, no privilege.
import { execa } from 'execa';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { CtrError, describeSystemError } from '../../errors.js';
import { findTool } from '../../host/facts.js';
import { parseSize } from '../../plan/size.js';

/** Apptainer's default (overlay create --size). */
export const DEFAULT_OVERLAY_SIZE = 64 << 20;
/** Below this mkfs.ext3 has no room for its journal and the two directories. */
const MIN_OVERLAY_SIZE = 2 << 20;

const SBIN = ['/usr/sbin', '/sbin'];
const E2FS_HINT = 'install e2fsprogs (it has mkfs.ext3 and debugfs)';

export async function overlayCommand(action: string, file: string, size: string | undefined, fakeroot: boolean): Promise<void> {
  if (action !== 'create') throw new CtrError(`unknown overlay command '${action}'`, '', { hint: 'usage: ctr overlay create [--size SIZE] [--fakeroot] FILE' });
  const bytes = size === undefined ? DEFAULT_OVERLAY_SIZE : parseSize(size, '--size');
  if (bytes < MIN_OVERLAY_SIZE) throw new CtrError(`--size ${JSON.stringify(size)}`, 'an overlay image needs 2 MiB at least');
  const mkfs = findTool('mkfs.ext3', 'CTR_MKFS_EXT3', SBIN);
  if (!mkfs) throw new CtrError('cannot create overlay image', 'mkfs.ext3 not found', { hint: E2FS_HINT });
  // Refuse to overwrite, as apptainer overlay create does; the name is ours from here on.
  try {
    closeSync(openSync(file, 'wx', 0o644));
  } catch (err) {
    throw new CtrError(`cannot create overlay image ${file}`, describeSystemError(err));
  }
  const stage = mkdtempSync(join(tmpdir(), 'ctr-overlay-'));
  try {
    mkdirSync(join(stage, 'upper'), { mode: 0o755 });
    mkdirSync(join(stage, 'work'), { mode: 0o755 });
    const { uid, gid } = userInfo();
    const owner = fakeroot ? '0:0' : `${uid}:${gid}`;
    await run(mkfs, ['-q', '-F', '-d', stage, '-E', `root_owner=${owner}`, '-L', 'ctr-overlay', file, `${Math.floor(bytes / 1024)}k`], file);
    // --fakeroot: root inside is the user outside, and sees the user's files as root's
    // only where the image says root (ids are the container's, as with Apptainer's).
    if (fakeroot) {
      const debugfs = findTool('debugfs', 'CTR_DEBUGFS', SBIN);
      if (!debugfs) throw new CtrError('cannot create overlay image', 'debugfs not found', { hint: E2FS_HINT });
      const cmds = ['upper', 'work'].flatMap((d) => [`set_inode_field /${d} uid 0`, `set_inode_field /${d} gid 0`]);
      await run(debugfs, ['-w', '-R', cmds[0], file], file);
      for (const c of cmds.slice(1)) await run(debugfs, ['-w', '-R', c, file], file);
    }
  } catch (err) {
    rmSync(file, { force: true });
    throw err;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

async function run(prog: string, args: string[], file: string): Promise<void> {
  const r = await execa(prog, args, { reject: false, all: true, env: { LC_ALL: 'C' } });
  if (r.exitCode !== 0 || /error|cannot/i.test(r.all ?? '')) {
    const why = (r.all ?? '').trim().split('\n').filter(Boolean).pop() ?? `exit status ${r.exitCode}`;
    throw new CtrError(`cannot create overlay image ${file}`, `${prog.split('/').pop()}: ${why}`);
  }
}
