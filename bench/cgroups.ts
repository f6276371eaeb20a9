// Resource limits in force (issue 18): how much CPU a busy loop gets under --cpus, and
// what rate direct I/O on a loop device gets under --device-read-bps/--device-write-bps,
// beside the same runs with no limit. Not a timing of ctr: a measurement of the limits,
// side by side in one run. Needs root: it delegates cgroups and a loop device to the test
// user as a site would (test/helpers/cgroups.ts), then runs ctr as that user.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { delegateCgroups, loopDevice } from '../test/helpers/cgroups.js';
import { busyboxSif } from '../test/helpers/images.js';
import { TEST_USER } from '../test/helpers/user.js';
import { REPO } from './lib.js';

const full = process.argv.includes('--full');
const SECONDS = full ? 10 : 3;
const dir = mkdtempSync(join(tmpdir(), 'ctr-bench-cgroups-'));
chmodSync(dir, 0o755);
const sif = await busyboxSif();
const site = await delegateCgroups(dir, `ctr-bench-${TEST_USER}`);
const loop = await loopDevice(dir, 64 << 20);

/** Run `ctr exec FLAGS IMAGE sh -c SCRIPT` as the test user; its stdout and stderr. */
function ctr(flags: string[], script: string): { out: string; err: string } {
  const r = spawnSync('runuser', ['-u', TEST_USER, '--', 'env', `CTR_CONFIG=${site.config}`, join(REPO, 'bin/ctr'), 'exec', ...flags, sif, 'sh', '-c', script],
    { cwd: '/', encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ctr exec ${flags.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return { out: r.stdout, err: r.stderr };
}

try {
  // CPU: a busy loop for SECONDS of wall time; its own utime+stime (clock ticks, 100 Hz).
  // With a quota, cpu.stat of the container's cgroup says in how many periods it was held back.
  const busy = `sh -c 'while :; do :; done' & p=$!; sleep ${SECONDS}; cat /proc/$p/stat; kill $p; ` +
    'c=/sys/fs/cgroup/cpu$(grep :cpu: /proc/self/cgroup | cut -d: -f3); [ "$c" = /sys/fs/cgroup/cpu/ ] || cat $c/cpu.stat';
  const cpuRows: string[] = [];
  for (const cpus of [undefined, '1', '0.5', '0.25']) {
    const { out } = ctr(cpus ? ['--cpus', cpus] : [], busy);
    const [stat, ...rest] = out.trim().split('\n');
    const f = stat.split(') ')[1].split(' ');
    const share = (Number(f[11]) + Number(f[12])) / 100 / SECONDS;
    const cs = Object.fromEntries(rest.map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
    const held = cs.nr_periods ? `${cs.nr_throttled}/${cs.nr_periods}` : '–';
    cpuRows.push(`| ${cpus ? `--cpus ${cpus}` : 'no limit'} | ${share.toFixed(3)} | ${cpus ? (share / Number(cpus)).toFixed(2) : '–'} | ${held} |`);
  }
  // I/O: direct reads and writes of 16 MiB on the loop device, timed inside the container
  // by /proc/uptime (10 ms ticks) around dd, so ctr's start-up is not in it.
  const rate = (out: string) => {
    const [a, b] = out.trim().split(/\s+/).map(Number);
    return 16 / (b - a);
  };
  const timed = (dd: string) => `read a x </proc/uptime; ${dd} 2>/dev/null; read b x </proc/uptime; echo $a $b`;
  const read = timed(`dd if=${loop.dev} of=/dev/null bs=1M count=16 iflag=direct`);
  const write = timed(`dd if=/dev/zero of=${loop.dev} bs=1M count=16 oflag=direct`);
  const ioRows: string[] = [];
  for (const [name, flags, script, limit] of [
    ['read, no limit', [], read, undefined],
    ['read, --device-read-bps 4mb', ['--device-read-bps', `${loop.dev}:4mb`], read, 4],
    ['write, no limit', [], write, undefined],
    ['write, --device-write-bps 4mb', ['--device-write-bps', `${loop.dev}:4mb`], write, 4],
  ] as const) {
    const mbs = rate(ctr([...flags], script).out);
    ioRows.push(`| ${name} | ${mbs.toFixed(1)} | ${limit ? (mbs / limit).toFixed(2) : '–'} |`);
  }
  process.stdout.write([
    `### Resource limits in force (cgroup v1, ${SECONDS} s busy loop; 16 MiB direct I/O on ${loop.dev})`, '',
    '| CPU limit | CPUs used | × limit | periods throttled |', '| --- | ---: | ---: | ---: |', ...cpuRows, '',
    '| I/O | MiB/s | × limit |', '| --- | ---: | ---: |', ...ioRows, '',
    `Host: ${execFileSync('nproc', { encoding: 'utf8' }).trim()} CPUs shared with other work; the unlimited rows show what was free.`, '',
  ].join('\n'));
} finally {
  await site.undo();
  await loop.detach();
  rmSync(dir, { recursive: true, force: true });
}
