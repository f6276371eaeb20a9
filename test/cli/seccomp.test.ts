// The command's seccomp filter (native/launch_seccomp.c), two ways:
// - its program, run for every ABI's calls through a classic-BPF interpreter here, with
//   the system call numbers taken from the kernel headers, not from the launcher: that
//   covers the 32-bit calls (i386's int 0x80, x32) that this machine's kernel won't let
//   a process make at all;
// - the real thing, in containers: a faked chown leaves the real owner as it was,
//   no_new_privs stays set, device nodes are faked and FIFOs really made.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa, execaSync } from 'execa';
import { readFileSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxSif } from '../helpers/images.js';
import { privcalls } from '../helpers/fixtures.js';
import { leftovers, killUserProcesses } from '../helpers/leftovers.js';
import { LAUNCHER } from '../helpers/paths.js';
import { asUser, ctr, TEST_USER, userIds, userTmp } from '../helpers/user.js';

const AUDIT_ARCH_X86_64 = 0xc000003e, AUDIT_ARCH_I386 = 0x40000003, AUDIT_ARCH_AARCH64 = 0xc00000b7;
const X32 = 0x40000000;
const ALLOW = 0x7fff0000, KILL_PROCESS = 0x80000000, ERRNO = 0x00050000, EPERM = 1;
const TIOCSTI = 0x5412, TIOCLINUX = 0x541c, TCGETS = 0x5401;
const S_IFCHR = 0o020000, S_IFBLK = 0o060000, S_IFIFO = 0o010000, S_IFREG = 0o100000;

type Insn = { code: number; jt: number; jf: number; k: number };

function program(kind: 'plain' | 'fake-ids'): Insn[] {
  const out = execaSync(LAUNCHER, ['--seccomp-program', kind]).stdout;
  return out.trim().split('\n').map((l) => {
    const [code, jt, jf, k] = l.split(' ').map(Number);
    return { code, jt, jf, k };
  });
}

/** Run PROG on one call: struct seccomp_data is nr, arch, ip (8 bytes), args (6 × 8). */
function run(prog: Insn[], arch: number, nr: number, args: number[] = []): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr | 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(BigInt(a), 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc < prog.length; pc++) {
    const { code, jt, jf, k } = prog[pc];
    switch (code) {
      case 0x20: acc = data.readUInt32LE(k); break;                 // BPF_LD|BPF_W|BPF_ABS
      case 0x54: acc = (acc & k) >>> 0; break;                      // BPF_ALU|BPF_AND|BPF_K
      case 0x15: pc += acc === (k >>> 0) ? jt : jf; break;          // BPF_JMP|BPF_JEQ|BPF_K
      case 0x06: return k >>> 0;                                    // BPF_RET|BPF_K
      default: throw new Error(`instruction ${code} not expected in the filter`);
    }
  }
  throw new Error('the program fell off its end');
}

/** System call numbers from the kernel's own headers (asm/unistd_64.h, unistd_32.h). */
function numbers(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of readFileSync(`/usr/include/x86_64-linux-gnu/asm/${file}`, 'utf8').matchAll(/#define __NR_(\w+) (\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}

const Seccomp = suite('seccomp filter');
let sif: string, pc: string;

Seccomp.before(async () => {
  sif = await busyboxSif();
  pc = await privcalls();
});
Seccomp.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

Seccomp('program :: TIOCSTI and TIOCLINUX refused on x86-64, x32 and i386; other ioctls and other ABIs as they should', () => {
  const p = program('plain'), n64 = numbers('unistd_64.h'), n32 = numbers('unistd_32.h');
  for (const [arch, nr, what] of [[AUDIT_ARCH_X86_64, n64.ioctl, 'x86-64'], [AUDIT_ARCH_X86_64, X32 | 514, 'x32'], [AUDIT_ARCH_I386, n32.ioctl, 'i386']] as const) {
    assert.is(run(p, arch, nr, [0, TIOCSTI]), ERRNO | EPERM, `${what} TIOCSTI`);
    assert.is(run(p, arch, nr, [0, 2 ** 32 + TIOCSTI]), ERRNO | EPERM, `${what} TIOCSTI with high bits`);
    assert.is(run(p, arch, nr, [0, TIOCLINUX]), ERRNO | EPERM, `${what} TIOCLINUX`);
    assert.is(run(p, arch, nr, [0, TCGETS]), ALLOW, `${what} TCGETS`);
  }
  assert.is(run(p, AUDIT_ARCH_X86_64, n64.chown, [0, 42, 42]), ALLOW, 'no fake ids: chown is the kernel\'s');
  assert.is(run(p, AUDIT_ARCH_AARCH64, 29, [0, TIOCSTI]), KILL_PROCESS, 'an ABI this kernel does not run is killed');
});

Seccomp('program :: fake ids: chown, the setuid family, setgroups, capset and device mknod succeed, on every ABI', () => {
  const p = program('fake-ids'), n64 = numbers('unistd_64.h'), n32 = numbers('unistd_32.h');
  const faked = ['chown', 'fchown', 'lchown', 'fchownat', 'setuid', 'setgid', 'setreuid', 'setregid', 'setresuid', 'setresgid',
    'setfsuid', 'setfsgid', 'setgroups', 'capset'];
  for (const name of faked) {
    assert.is(run(p, AUDIT_ARCH_X86_64, n64[name]), ERRNO | 0, `x86-64 ${name}`);
    assert.is(run(p, AUDIT_ARCH_X86_64, X32 | n64[name]), ERRNO | 0, `x32 ${name}`);
    assert.is(run(p, AUDIT_ARCH_I386, n32[name]), ERRNO | 0, `i386 ${name}`);
    if (n32[`${name}32`] !== undefined) assert.is(run(p, AUDIT_ARCH_I386, n32[`${name}32`]), ERRNO | 0, `i386 ${name}32`);
  }
  for (const [arch, tbl] of [[AUDIT_ARCH_X86_64, n64], [AUDIT_ARCH_I386, n32]] as const) {
    assert.is(run(p, arch, tbl.mknod, [0, S_IFCHR | 0o600, 0x103]), ERRNO | 0, 'char device faked');
    assert.is(run(p, arch, tbl.mknodat, [0, 0, S_IFBLK | 0o600, 0x103]), ERRNO | 0, 'block device faked');
    assert.is(run(p, arch, tbl.mknod, [0, S_IFIFO | 0o600, 0]), ALLOW, 'a FIFO is really made');
    assert.is(run(p, arch, tbl.mknodat, [0, 0, S_IFREG | 0o600, 0]), ALLOW, 'a regular file is really made');
  }
  // Nothing else is faked: the calls that give or check privilege stay the kernel's.
  for (const name of ['getuid', 'setns', 'unshare', 'mount', 'chmod', 'setxattr', 'ptrace', 'kill', 'prctl']) {
    assert.is(run(p, AUDIT_ARCH_X86_64, n64[name]), ALLOW, name);
  }
});

Seccomp('fake ids :: a faked chown leaves the owner as it was; no_new_privs stays; devices faked, FIFOs made', async () => {
  const d = await userTmp();
  const { uid, gid } = await userIds();
  const r = await ctr(['exec', '--fakeroot', '--fakeroot-mode', 'seccomp', '-B', `${d}:/mnt`, '-B', `${pc}:/privcalls`, sif, 'sh', '-c',
    'touch /mnt/f && chown 42:42 /mnt/f && echo chown ok; /privcalls mknod /mnt/null; /privcalls fifo /mnt/fifo; ' +
    'test -e /mnt/null || echo no device; test -p /mnt/fifo && echo fifo; grep NoNewPrivs /proc/self/status; grep Seccomp: /proc/self/status'], { cwd: '/' });
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'chown ok\nmknod: ok\nfifo: ok\nno device\nfifo\nNoNewPrivs:\t1\nSeccomp:\t2\n');
  const st = await stat(join(d, 'f'));
  assert.equal([st.uid, st.gid], [uid, gid], 'the real owner is unchanged');
  await execa('rm', ['-rf', d]);
});

Seccomp('subuid :: chown to a system id is real: the host sees the subordinate id', async () => {
  const d = await userTmp();
  const r = await ctr(['exec', '--fakeroot', '--fakeroot-mode', 'subuid', '-B', `${d}:/mnt`, sif, 'sh', '-c',
    'touch /mnt/f && chown 42:43 /mnt/f && stat -c "%u %g" /mnt/f; cat /proc/self/uid_map | wc -l'], { cwd: '/' });
  assert.is(r.stderr, '');
  assert.is(r.stdout, '42 43\n2\n');
  const sub = Number(new RegExp(`^${TEST_USER}:(\\d+):`, 'm').exec(readFileSync('/etc/subuid', 'utf8'))![1]);
  const subg = Number(new RegExp(`^${TEST_USER}:(\\d+):`, 'm').exec(readFileSync('/etc/subgid', 'utf8'))![1]);
  const st = await stat(join(d, 'f'));
  assert.equal([st.uid, st.gid], [sub + 41, subg + 42], 'id 42 is the 42nd subordinate id');
  await execa('rm', ['-rf', d]);
});

Seccomp('fallback :: a plan whose subordinate ids newuidmap then refuses runs the seccomp way, with one note', async () => {
  const d = await userTmp();
  const plan = join(d, 'fake.plan');
  const made = await ctr(['plan', '-o', plan, '--fakeroot', sif], { cwd: d });
  assert.is(made.exitCode, 0, String(made.stderr));
  const saved = readFileSync('/etc/subuid', 'utf8');
  try {
    // The site moved this user's range after the plan was made.
    await writeFile('/etc/subuid', saved.replace(new RegExp(`^${TEST_USER}:\\d+:`, 'm'), `${TEST_USER}:300000:`));
    const r = await asUser(plan, ['sh', '-c', 'wc -l < /proc/self/uid_map; touch /tmp/ctr-fallback; chown 42:42 /tmp/ctr-fallback && echo faked; rm -f /tmp/ctr-fallback'], { cwd: '/' });
    assert.match(String(r.stderr), /^ctr: note: fake root: newuidmap\/newgidmap refused the subordinate ids \(newuidmap: .+\); faking ids with seccomp instead\n$/);
    assert.is(String(r.stdout).replace(/^\s+/, ''), '1\nfaked\n');
    assert.is(r.exitCode, 0);
  } finally {
    await writeFile('/etc/subuid', saved);
    await execa('rm', ['-rf', d]);
  }
});

Seccomp.run();
