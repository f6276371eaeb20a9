// What the isolation options of issue 18 cost (native/launch_net.c, launch_overlay.c):
// start-up of `ctr exec IMG true` with each, and writing 32 MiB into each writable
// layer, beside the plain container. Interleaved rounds, medians; run as the test user
// (needs root to switch to it, as the tests do), busybox SIF from the test cache.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { measure, REPO, table } from './lib.js';

const CACHE = process.env.CTR_TEST_CACHE ?? '/var/tmp/ctr-test-cache';
const USER = process.env.CTR_TEST_USER ?? 'ctrtest';
const rounds = process.argv.includes('--full') ? 40 : 10;
const sif = execFileSync('sh', ['-c', `ls ${CACHE}/*-busybox-arch2.sif | head -1`], { encoding: 'utf8' }).trim();
if (!sif) throw new Error(`no busybox SIF in ${CACHE}: run the cli tests once first`);

const dir = '/tmp/ctr-bench-isolation';
rmSync(dir, { recursive: true, force: true });
mkdirSync(join(dir, 'ovdir'), { recursive: true });
const id = (flag: string) => Number(execFileSync('id', [flag, USER], { encoding: 'utf8' }));
for (const d of [dir, join(dir, 'ovdir')]) chownSync(d, id('-u'), id('-g'));
const ctr = join(REPO, 'bin/ctr');
const as = (args: string) => ['runuser', '-u', USER, '--', 'sh', '-c', `cd / && ${args}`];
execFileSync('runuser', ['-u', USER, '--', ctr, 'overlay', 'create', '--size', '128', join(dir, 'ov.img')]);
execFileSync('mksquashfs', ['/etc/apt', join(dir, 'extra.sqfs'), '-quiet', '-no-progress', '-all-root']);
chmodSync(join(dir, 'extra.sqfs'), 0o644);
if (!existsSync('/usr/bin/slirp4netns')) throw new Error('slirp4netns is not installed');

const variants: Array<[string, string]> = [
  ['plain', ''],
  ['--net', '--net'],
  ['--net --hostname h', '--net --hostname h'],
  ['--network slirp4netns', '--network slirp4netns'],
  ['--writable-tmpfs', '--writable-tmpfs'],
  ['--overlay DIR', `--overlay ${dir}/ovdir`],
  ['--overlay IMG (fuse2fs + fuse-overlayfs)', `--overlay ${dir}/ov.img`],
  ['--overlay extra.sqfs:ro', `--overlay ${dir}/extra.sqfs:ro`],
];
const startup = measure(variants.map(([name, flags]) => ({ name, cmd: as(`${ctr} exec ${flags} ${sif} true`) })), rounds);
const write = 'dd if=/dev/zero of=/w bs=1M count=32 2>/dev/null && rm /w';
const writes = measure([
  { name: '--writable-tmpfs', cmd: as(`${ctr} exec --writable-tmpfs ${sif} sh -c '${write}'`) },
  { name: '--overlay DIR', cmd: as(`${ctr} exec --overlay ${dir}/ovdir ${sif} sh -c '${write}'`) },
  { name: '--overlay IMG', cmd: as(`${ctr} exec --overlay ${dir}/ov.img ${sif} sh -c '${write}'`) },
], Math.max(3, rounds / 2), 1);
const nested = measure([
  { name: 'ctr exec IMG true', cmd: as(`${ctr} exec ${sif} true`) },
  { name: 'ctr exec / ctr exec IMG true (ctr in ctr)', cmd: as(`${ctr} exec / ${ctr} exec ${sif} true`) },
  { name: 'ctr exec / bwrap ... true (bwrap in ctr)', cmd: as(`${ctr} exec / bwrap --ro-bind / / --unshare-all true`) },
], rounds);
process.stdout.write(table(`Start-up of ctr exec busybox.sif true, by isolation option (wall time, ${rounds} rounds)`, startup) + '\n' +
  table('Start-up plus writing and removing 32 MiB in the writable layer (wall time)', writes) + '\n' +
  table('Nesting: a container inside a ctr container (outer image: the host\'s root directory)', nested));
rmSync(dir, { recursive: true, force: true });
