/* The command's seccomp filter: two jobs, one classic-BPF program.
 *
 *   1. Always: ioctl(TIOCSTI) and ioctl(TIOCLINUX) fail with EPERM. TIOCSTI pushes bytes
 *      into a terminal's input queue; a container that shares the user's terminal could
 *      otherwise type commands that the user's shell runs after ctr exits (bubblewrap's
 *      CVE-2017-5226). Kernels with legacy_tiocsti=1, the default of many distributions,
 *      allow it to any process on its controlling terminal.
 *   2. With fake ids (--fakeroot without a subordinate id range): the calls that change
 *      ownership or identity succeed without doing anything, as Charliecloud's
 *      `ch-image --force=seccomp` does. In a user namespace that maps one id, apt, dpkg,
 *      dnf and useradd fail on them (EPERM for setgroups, EINVAL for an unmapped id).
 *      Faking them gains nothing: the call is never made, so no owner, id or capability
 *      changes (a faked chown leaves the file's owner as it was), and mknod is faked only
 *      for device nodes (FIFOs, sockets and regular files are really made).
 *
 * The filter knows each architecture this launcher can be built for and the 32-bit ABI
 * its kernel also accepts (i386 on x86-64, with x32 sharing x86-64's numbers but for
 * ioctl; arm on aarch64): a process could otherwise issue the 32-bit call to get past
 * it. A call from any other ABI kills the process. no_new_privs is set before (ns_enter),
 * which is what lets an unprivileged process install a filter, and stays set. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch.h"

/* One ABI's numbers. mknod's mode is argument MODE_ARG of the call; -1 ends a list. */
struct abi {
   uint32_t arch;
   int ioctl[3];
   int fake[32];           /* ownership and identity calls */
   int mknod[3][2];        /* {nr, index of the mode argument} */
};

#define END -1
#define X32 0x40000000

static const struct abi ABIS[] = {
#if defined(__x86_64__)
   { AUDIT_ARCH_X86_64, { 16, X32 | 514, END },
     /* chown fchown lchown fchownat setuid setgid setreuid setregid setgroups setresuid
      * setresgid setfsuid setfsgid capset, then the same with the x32 bit */
     { 92, 93, 94, 260, 105, 106, 113, 114, 116, 117, 119, 122, 123, 126,
       X32 | 92, X32 | 93, X32 | 94, X32 | 260, X32 | 105, X32 | 106, X32 | 113, X32 | 114,
       X32 | 116, X32 | 117, X32 | 119, X32 | 122, X32 | 123, X32 | 126, END },
     { { 133, 1 }, { 259, 2 }, { END, 0 } } },
   /* i386 through int 0x80: the 16-bit-id calls and their *32 twins */
   { AUDIT_ARCH_I386, { 54, END },
     { 182, 95, 16, 298, 23, 46, 70, 71, 81, 164, 170, 138, 139, 185,
       212, 207, 198, 213, 214, 203, 204, 206, 208, 210, 215, 216, END },
     { { 14, 1 }, { 297, 2 }, { END, 0 } } },
#elif defined(__aarch64__)
   /* the generic table: no chown, lchown or mknod, only their *at forms */
   { AUDIT_ARCH_AARCH64, { 29, END },
     { 55, 54, 146, 144, 145, 143, 159, 147, 149, 151, 152, 91, END },
     { { 33, 2 }, { END, 0 } } },
   /* arm EABI (compat) */
   { AUDIT_ARCH_ARM, { 54, END },
     { 182, 95, 16, 325, 23, 46, 70, 71, 81, 164, 170, 138, 139, 185,
       212, 207, 198, 213, 214, 203, 204, 206, 208, 210, 215, 216, END },
     { { 14, 1 }, { 324, 2 }, { END, 0 } } },
#else
#error "launch_seccomp.c: add this architecture's system call numbers"
#endif
};

/* The low 32 bits of argument I (ioctl's request and mknod's mode are 32-bit values; the
 * kernel ignores the upper half, so the filter must too). Little-endian only, as every
 * architecture above is. */
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(uint64_t))

enum { MAX_INSNS = 512 };

struct prog {
   struct sock_filter v[MAX_INSNS];
   unsigned short n;
};

static unsigned short emit(struct prog *p, struct sock_filter f)
{
   if (p->n >= MAX_INSNS)
      DIE_PLAIN("seccomp filter too long (internal error)");
   p->v[p->n] = f;
   return p->n++;
}

/* Point the jump at index AT (its true branch, or false when FALSE) to the next insn. */
static void land(struct prog *p, unsigned short at, bool on_false)
{
   unsigned off = (unsigned)(p->n - at - 1);
   if (off > 255)
      DIE_PLAIN("seccomp filter jump too far (internal error)");
   if (on_false)
      p->v[at].jf = (unsigned char)off;
   else
      p->v[at].jt = (unsigned char)off;
}

#define LD(off) ((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off)))
#define JEQ(k) ((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(k), 0, 0))
#define RET(v) ((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (v)))

/* One ABI's block, entered with the arch checked. Ends in returns only. */
static void abi_block(struct prog *p, const struct abi *a, bool fake_ids)
{
   unsigned short to_ioctl[4], to_fake[40], to_mknod[4];
   size_t ni = 0, nf = 0, nm = 0;
   emit(p, LD(offsetof(struct seccomp_data, nr)));
   for (size_t i = 0; a->ioctl[i] != END; i++)
      to_ioctl[ni++] = emit(p, JEQ(a->ioctl[i]));
   if (fake_ids) {
      for (size_t i = 0; a->fake[i] != END; i++)
         to_fake[nf++] = emit(p, JEQ(a->fake[i]));
      for (size_t i = 0; a->mknod[i][0] != END; i++)
         to_mknod[nm++] = emit(p, JEQ(a->mknod[i][0]));
   }
   emit(p, RET(SECCOMP_RET_ALLOW));

   /* ioctl: refuse the two requests that write into a terminal's input */
   for (size_t i = 0; i < ni; i++)
      land(p, to_ioctl[i], false);
   emit(p, LD(ARG_LO(1)));
   unsigned short sti = emit(p, JEQ(TIOCSTI));
   unsigned short lnx = emit(p, JEQ(TIOCLINUX));
   emit(p, RET(SECCOMP_RET_ALLOW));
   land(p, sti, false);
   land(p, lnx, false);
   emit(p, RET(SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)));
   if (!fake_ids)
      return;

   /* mknod, mknodat: fake only device nodes, which a user namespace can't make */
   unsigned short dev_jumps[8];
   size_t nd = 0;
   for (size_t i = 0; i < nm; i++) {
      land(p, to_mknod[i], false);
      emit(p, LD(ARG_LO(a->mknod[i][1])));
      emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, S_IFMT));
      dev_jumps[nd++] = emit(p, JEQ(S_IFCHR));
      dev_jumps[nd++] = emit(p, JEQ(S_IFBLK));
      emit(p, RET(SECCOMP_RET_ALLOW));
   }
   for (size_t i = 0; i < nf; i++)
      land(p, to_fake[i], false);
   for (size_t i = 0; i < nd; i++)
      land(p, dev_jumps[i], false);
   emit(p, RET(SECCOMP_RET_ERRNO | 0)); /* success, and nothing done */
}

static void build(struct prog *pp, bool fake_ids);

void seccomp_install(bool fake_ids)
{
   static struct prog p;
   build(&p, fake_ids);
   struct sock_fprog prog = { .len = p.n, .filter = p.v };
   if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
      if (fake_ids)
         DIE_HINT("without seccomp, fake root needs subordinate ids: an administrator can add a line "
                  "\"UID:100000:65536\" (your uid, a range nobody else has) to /etc/subuid and /etc/subgid "
                  "and install uidmap", "cannot install the seccomp filter");
      DIE_HINT("ctr needs seccomp (CONFIG_SECCOMP_FILTER) to keep containers from typing into "
               "your terminal", "cannot install the seccomp filter");
   }
   debug("seccomp filter installed (%u instructions%s)", p.n, fake_ids ? ", ids faked" : "");
}

/* ctr-launch --seccomp-program plain|fake-ids: the program as "code jt jf k" lines, so
 * a test can run every ABI's calls through it (test/cli/seccomp.test.ts), including the
 * 32-bit ones a machine may not let it make for real. */
void seccomp_dump(bool fake_ids)
{
   static struct prog p;
   build(&p, fake_ids);
   for (unsigned short i = 0; i < p.n; i++)
      printf("%u %u %u %u\n", p.v[i].code, p.v[i].jt, p.v[i].jf, p.v[i].k);
   exit(0);
}

static void build(struct prog *pp, bool fake_ids)
{
   struct prog *const p_ = pp;
#define p (*p_)
   p.n = 0;
   emit(&p, LD(offsetof(struct seccomp_data, arch)));
   for (size_t i = 0; i < sizeof(ABIS) / sizeof(*ABIS); i++) {
      unsigned short skip = emit(&p, JEQ(ABIS[i].arch));
      abi_block(&p, &ABIS[i], fake_ids);
      land(&p, skip, true);
      emit(&p, LD(offsetof(struct seccomp_data, arch))); /* reload for the next test */
   }
   emit(&p, RET(SECCOMP_RET_KILL_PROCESS)); /* an ABI the filter does not know */
#undef p
}
