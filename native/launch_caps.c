/* --caps: the command's capabilities, within the container's user namespace.
 *
 * The launcher holds every capability of the user namespace it made (or joined), whatever
 * its uid there; at the exec the kernel then gives a command that is root inside
 * (--fakeroot) inheritable | bounding, and one that is not only its ambient set
 * (capabilities(7), "Transformation of capabilities during execve()"). So:
 *   DROP: out of the bounding set (PR_CAPBSET_DROP: then nothing in the container, nor a
 *         setuid-root program or a nested user namespace's exec, gets it back) and out of
 *         the permitted, effective, inheritable and ambient sets;
 *   ADD:  into the inheritable set and raised into the ambient one, which a non-root
 *         command keeps across the exec (only where it is in the permitted set, which it
 *         is here, and in the bounding set, which DROP leaves it in).
 * Bits past the kernel's last capability are no capability: dropping them is a no-op,
 * adding one is refused. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch.h"

static int last_cap(void)
{
   char buf[16];
   if (read_small("/proc/sys/kernel/cap_last_cap", buf, sizeof(buf)) > 0)
      return atoi(buf);
   int cap = 0;
   while (prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) >= 0)
      cap++;
   return cap;
}

void caps_apply(const struct plan *p)
{
   if (!p->set_caps)
      return;
   int last = last_cap();
   for (int cap = 0; cap < 64; cap++) {
      unsigned long long bit = 1ULL << cap;
      if ((p->cap_add & bit) && cap > last)
         DIE_PLAIN("cannot add capability %d: this kernel's last is %d", cap, last);
      if (!(p->cap_drop & bit) || cap > last)
         continue;
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
         DIE("cannot drop capability %d from the bounding set", cap);
      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, cap, 0, 0); /* not there: fine */
   }
   struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
   struct __user_cap_data_struct d[2];
   if (syscall(SYS_capget, &hdr, d) < 0)
      DIE("cannot read the launcher's capabilities");
   for (int k = 0; k < 2; k++) {
      __u32 drop = (__u32)(p->cap_drop >> (32 * k)), add = (__u32)(p->cap_add >> (32 * k));
      if (add & ~d[k].permitted)
         DIE_PLAIN("cannot add capabilities %#x (word %d): the launcher does not hold them", add & ~d[k].permitted, k);
      d[k].effective &= ~drop;
      d[k].permitted &= ~drop;
      d[k].inheritable = (d[k].inheritable & ~drop) | add;
   }
   if (syscall(SYS_capset, &hdr, d) < 0)
      DIE("cannot set the command's capabilities");
   for (int cap = 0; cap <= last && cap < 64; cap++)
      if ((p->cap_add >> cap) & 1 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
         DIE("cannot raise capability %d into the ambient set", cap);
   debug("capabilities: dropped %#llx, added %#llx (ambient)", p->cap_drop, p->cap_add);
}
