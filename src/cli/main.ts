#!/usr/bin/env node
// ctr under plain Node: `node dist/src/cli/main.js ARGS`. bin/ctr starts exec, run,
// shell and plan from a V8 start-up snapshot instead (snapshot.ts), and the rest here.
import { runCli } from './run.js';

await runCli(process.argv.slice(2));
