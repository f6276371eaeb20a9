// Build ctr's V8 start-up snapshot (part of `npm run build`): bundle the launch path
// (dist/src/cli/snapshot.js) into one CommonJS script with esbuild, then have this very
// Node build the snapshot from it. bin/ctr uses the snapshot only when it was made by
// the `node` it finds (dist/snapshot/node names it); else plain main.js, just slower.
//
// `node scripts/snapshot.mjs --blob` only makes the snapshot from the bundle already
// there: an installed package ships the bundle (dist/snapshot/ctr.cjs) and makes the
// blob with the installing node (scripts/postinstall.mjs), with no esbuild.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(repo, 'dist/snapshot');
const blobOnly = process.argv[2] === '--blob';
if (!blobOnly) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const { build } = await import('esbuild');
  await build({
    entryPoints: [join(repo, 'dist/src/cli/snapshot.js')],
    outfile: join(out, 'ctr.cjs'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Never reached from the launch verbs: bin/ctr sends help and the other verbs to
    // main.js. Left out, they would only make the snapshot's heap bigger to load.
    external: ['yargs', 'koffi', './commands/build.js', './commands/inspect.js', './commands/pull.js', './commands/version.js'],
    logLevel: 'warning',
    // launcher.ts finds the launcher from import.meta.url under plain Node; from the
    // snapshot, the root bin/ctr passes (setInstallRoot) is used instead.
    logOverride: { 'empty-import-meta': 'silent' },
  });
}
// Node warns that child_process is "not yet fully verified" in snapshots; the tests run
// every launch path through the snapshot.
execFileSync(process.execPath, ['--no-warnings', '--snapshot-blob', join(out, 'ctr.blob'), '--build-snapshot', join(out, 'ctr.cjs')],
  { stdio: 'inherit' });
writeFileSync(join(out, 'node'), `${process.execPath}\n`);
