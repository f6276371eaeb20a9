// --net, --network none|slirp4netns, --hostname (Apptainer's flags; native/launch_net.c),
// as the unprivileged test user against listeners the test (root, host namespaces) holds.
// The image's busybox has no ip/nc/uname applets: the host's static busybox is bound in.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { busyboxSif } from '../helpers/images.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { ctr } from '../helpers/user.js';

const BB = ['-B', '/bin/busybox:/opt/busybox'];
const RANK = { SLURM_JOB_ID: '4343', SLURM_STEP_ID: '0' };

/** A TCP listener on ADDR that greets whoever connects. */
async function listener(addr: string): Promise<{ server: Server; port: number }> {
  const server = createServer((c) => c.end(`hello from ${addr}\n`));
  await new Promise<void>((res, rej) => server.once('error', rej).listen(0, addr, res));
  return { server, port: (server.address() as { port: number }).port };
}

/** The host's first non-loopback IPv4 address: where outbound traffic can go here. */
function hostAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('this host has no non-loopback IPv4 address to test outbound access against');
}

/** sh script: connect to HOST:PORT, print what it said or "refused HOST". */
const nc = (host: string, port: number) =>
  `/opt/busybox timeout 5 /opt/busybox nc ${host} ${port} </dev/null 2>/dev/null || echo "refused ${host}"`;

const Net = suite('network');
let sif: string, lo: { server: Server; port: number }, out: { server: Server; port: number }, addr: string;

Net.before(async () => {
  sif = await busyboxSif();
  addr = hostAddress();
  lo = await listener('127.0.0.1');
  out = await listener(addr);
});
Net.after(() => {
  lo.server.close();
  out.server.close();
});
Net.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

Net('host network :: the default: the host loopback listener answers', async () => {
  const r = await ctr(['exec', ...BB, sif, 'sh', '-c', nc('127.0.0.1', lo.port)], { cwd: '/' });
  assert.is(r.stdout, 'hello from 127.0.0.1\n', String(r.stderr));
});

Net('--net --network none :: no interface but lo (up); a TCP connect to the host loopback listener fails', async () => {
  for (const flags of [['--net', '--network', 'none'], ['--net'], ['--network', 'none']]) {
    const r = await ctr(['exec', ...flags, ...BB, sif, 'sh', '-c',
      `/opt/busybox ip -o link | /opt/busybox cut -d: -f2; /opt/busybox ip -o -4 addr | /opt/busybox awk '{print $2, $4}'; ${nc('127.0.0.1', lo.port)}; ${nc(addr, out.port)}`], { cwd: '/' });
    assert.is(r.stdout, ` lo\nlo 127.0.0.1/8\nrefused 127.0.0.1\nrefused ${addr}\n`, `${flags.join(' ')}: ${String(r.stderr)}`);
    assert.is(r.exitCode, 0);
  }
});

Net('--net :: loopback inside works (a listener of the container\'s own)', async () => {
  const r = await ctr(['exec', '--net', ...BB, sif, 'sh', '-c',
    '(echo inside | /opt/busybox nc -l -p 7777 &) ; /opt/busybox sleep 0.3; /opt/busybox nc 127.0.0.1 7777 </dev/null'], { cwd: '/' });
  assert.is(r.stdout, 'inside\n', String(r.stderr));
});

Net('--hostname :: uname -n says it; the host keeps its own', async () => {
  const r = await ctr(['exec', '--hostname', 'box-1.example', ...BB, sif, '/opt/busybox', 'uname', '-n'], { cwd: '/' });
  assert.is(r.stdout, 'box-1.example\n', String(r.stderr));
  assert.is(r.exitCode, 0);
  assert.ok(hostname() !== 'box-1.example');
  // Even fake root can't change it, nor the network: the command holds no capability over
  // the UTS and network namespaces (they belong to the user namespace one further out).
  for (const mode of ['subuid', 'seccomp']) {
    const fr = await ctr(['exec', '--fakeroot', '--fakeroot-mode', mode, '--net', '--hostname', 'box-2', ...BB, sif, 'sh', '-c',
      '/opt/busybox hostname evil; /opt/busybox ip link set lo down; /opt/busybox uname -n; id -u'], { cwd: '/' });
    assert.is(fr.stdout, 'box-2\n0\n', mode);
    assert.is(fr.stderr, 'hostname: sethostname: Operation not permitted\nip: SIOCSIFFLAGS: Operation not permitted\n', mode);
  }
});

Net('--network slirp4netns :: outbound to a host address works, tap0 10.0.2.100, host loopback not reachable', async () => {
  const r = await ctr(['exec', '--network', 'slirp4netns', ...BB, sif, 'sh', '-c',
    `/opt/busybox ip -o -4 addr show tap0 | /opt/busybox awk '{print $4}'; cat /etc/resolv.conf; ${nc(addr, out.port)}; ${nc('10.0.2.2', lo.port)}; ${nc('127.0.0.1', lo.port)}`], { cwd: '/' });
  assert.is(r.stdout, `10.0.2.100/24\nnameserver 10.0.2.3\nhello from ${addr}\nrefused 10.0.2.2\nrefused 127.0.0.1\n`, String(r.stderr));
  assert.is(r.exitCode, 0);
});

Net('ranks :: a joined container (Slurm step) keeps --net and --hostname, also with --fakeroot', async () => {
  for (const fr of [[], ['--fakeroot']]) {
    const r = await ctr(['exec', ...fr, '--net', '--hostname', 'rank-box', ...BB, sif, 'sh', '-c',
      `/opt/busybox uname -n; /opt/busybox ip -o link | /opt/busybox cut -d: -f2; ${nc('127.0.0.1', lo.port)}`], { cwd: '/', env: RANK });
    assert.is(r.stdout, 'rank-box\n lo\nrefused 127.0.0.1\n', `${fr.join(' ')}: ${String(r.stderr)}`);
  }
});

Net('errors :: a bad host name or network is one line, exit 255', async () => {
  const h = await ctr(['exec', '--hostname', 'a b', sif, 'true'], { cwd: '/' });
  assert.is(h.stderr, 'ctr: error: --hostname "a b": not a host name (1 to 64 letters, digits, \'-\' or \'.\', not starting with \'-\' or \'.\')\n');
  assert.is(h.exitCode, 255);
  const n = await ctr(['exec', '--network', 'bridge', sif, 'true'], { cwd: '/' });
  assert.is(n.stderr, 'ctr: error: invalid value for --network: "bridge" is not one of none, slirp4netns\n');
  assert.is(n.exitCode, 255);
});

Net.run();
