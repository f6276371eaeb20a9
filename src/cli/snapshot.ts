// The entry point of ctr's V8 start-up snapshot (bin/ctr uses it for exec, run, shell
// and plan). `ctr exec` runs once per rank, and plain Node spends ~15 ms of it loading
// and linking ctr's ES modules and Node's child_process: the snapshot is a heap in which
// all of that is already done, so Node starts with ctr loaded (scripts/snapshot.mjs
// bundles this file and builds the snapshot; see README, "Start-up").
//
// Only what the launch verbs need is in it: help and the other verbs (yargs, koffi) go
// to main.ts, as bin/ctr decides. Nothing here may keep state from build time: the
// modules read the environment, user and working directory when called, not on load.
import { startupSnapshot } from 'node:v8';
import { gatherHostFacts } from '../host/facts.js';
import { openImage } from '../image/open.js';
import { inheritedStdio, setInstallRoot } from '../launch/launcher.js';
import { inputsDescriptor, recordInputs } from '../launch/inputs.js';
import { composePlan } from '../plan/compose.js';
import { LAUNCH_FLAGS, parseFlagsFast, splitAtImage, toLaunchOptions, valueFlags } from './launch-flags.js';
import { runCli } from './run.js';
// Loaded (evaluated) while the snapshot is built, rather than on first use.
import './commands/launch.js';
import './commands/plan.js';

if (!startupSnapshot.isBuildingSnapshot()) throw new Error('snapshot.ts is the start-up snapshot entry; run main.ts');

// Warm-up: V8 compiles a function on its first call. Calling the planner's pieces here,
// on made-up input, puts their bytecode in the snapshot: `ctr exec` then uses ~2.3 ms
// less CPU (hyperfine, three alternating pairs of 40 runs: 27.7–27.9 ms against
// 30.0–30.2 ms). Results are thrown away, and nothing here writes anything.
{
  const opts = toLaunchOptions(parseFlagsFast(LAUNCH_FLAGS, splitAtImage(['-B', '/tmp:/mnt:ro,/var/tmp', '--env', 'A=1', '-e', 'x.sif'], valueFlags(LAUNCH_FLAGS)).flags));
  void gatherHostFacts(opts, true).then((host) => {
    composePlan('exec', { kind: 'sif', path: '/nonexistent/x.sif', offset: 4096 }, opts, host);
    composePlan('run', { kind: 'dir', path: '/', offset: 0 }, { ...opts, contain: true }, host);
    inheritedStdio({});
  }, () => {});
  void openImage('/').catch(() => {});
}

// bin/ctr runs: node --snapshot-blob BLOB ROOT ARGS...
startupSnapshot.setDeserializeMainFunction(() => {
  const [root, ...argv] = process.argv.slice(1);
  setInstallRoot(root);
  // The launcher may keep this plan (its plan cache): note what planning reads.
  if (inputsDescriptor() !== undefined) recordInputs();
  void runCli(argv);
});
