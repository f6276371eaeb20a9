// npm's postinstall for an installed ctr package (`npm install -g ctr-*.tgz`); in a
// checkout it does nothing (`npm run build` builds everything there).
//
// The package ships the launcher prebuilt (native/build/ctr-launch: glibc only, its FUSE
// libraries linked in), and its sources. Here: keep the prebuilt launcher if it runs on
// this machine, else build it from the sources (cc, make and the -dev packages); and
// make the V8 start-up snapshot with this node, since a snapshot only works with the
// node that made it. Neither failing fails the install: `ctr build`, `inspect` and `pull`
// need no launcher, and without a snapshot ctr starts under plain Node, only slower.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (existsSync(join(root, 'tsconfig.json'))) process.exit(0);

const say = (msg) => process.stderr.write(`ctr: ${msg}\n`);
const launcher = join(root, 'native/build/ctr-launch');

/** Why LAUNCHER can't run here, or undefined if it can. */
function unusable() {
  if (!existsSync(launcher)) return 'not there';
  const r = spawnSync(launcher, [], { encoding: 'utf8' });
  if (r.error) return r.error.message;
  if (r.signal) return `killed by ${r.signal}`;
  // With no plan it says so and exits 255; the dynamic loader exits 127 (a glibc too
  // old, a library missing).
  const loader = /error while loading shared libraries|version `GLIBC_/.test(r.stderr);
  if ((r.status === 255 || r.status === 0) && !loader) return undefined;
  return r.stderr.trim().split('\n')[0] || `exit ${r.status}`;
}

const why = unusable();
if (why !== undefined) {
  const make = spawnSync('make', ['-B', '-s', '-C', join(root, 'native')], { encoding: 'utf8' });
  const failed = make.error ? make.error.message
    : make.status !== 0 ? (make.stderr.split('\n').find((l) => /error|not found|No such/i.test(l))?.trim() || `make exited ${make.status}`)
    : unusable();
  if (failed !== undefined) {
    say(`warning: the prebuilt launcher does not run here (${why}) and building it failed (${failed}); ` +
      'ctr exec, run and shell need it. Install gcc, make and libc6-dev (for the in-process FUSE server also ' +
      'libsquashfuse-dev libfuse3-dev libzstd-dev liblz4-dev liblzma-dev liblzo2-dev zlib1g-dev; Debian names), ' +
      `then run: make -B -C ${join(root, 'native')}`);
  } else {
    say('built the launcher for this machine (the prebuilt one does not run here)');
  }
}

const snap = spawnSync(process.execPath, [join(root, 'scripts/snapshot.mjs'), '--blob'], { encoding: 'utf8' });
if (snap.status !== 0) {
  say(`warning: could not make the start-up snapshot (${(snap.stderr || snap.error?.message || '').trim().split('\n').pop()}); ` +
    'ctr works without it, ~30 ms slower per ctr exec');
}
