// ctr build over a subordinate id range. %post then makes files owned by ids the user
// has on the host only as subordinates (_apt's 0700 directories, say): the user can
// neither read them to pack the image nor remove them afterwards. So, as Apptainer's
// fakeroot builds do, the whole build runs inside a user namespace that maps root to
// the user and 1..N to the range (the launcher's --host-root plan: namespaces only, the
// host's file system): there ctr is root over every id the build makes, packs them with
// their owners, and cleans up. %post's own container nests inside with the same range.
import { runLauncher } from '../launch/launcher.js';
import { writeFakeroot, type FakerootChoice } from '../plan/fakeroot.js';
import { PlanWriter } from '../plan/words.js';

const INSIDE = 'CTR_BUILD_IN_USERNS';

/** Whether this process is the build that runUserns started. */
export function insideBuildNamespace(): boolean {
  return process.env[INSIDE] === '1' && process.getuid?.() === 0;
}

/** Run this very command again inside the namespace; resolves to its exit status. */
export function runInBuildNamespace(choice: FakerootChoice): Promise<number> {
  const w = new PlanWriter().hostRoot();
  writeFakeroot(w, choice);
  w.setenv(INSIDE, '1');
  return runLauncher([...w.words(), '--', process.execPath, ...process.argv.slice(1)]);
}
