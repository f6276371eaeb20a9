/* Namespaces: enter a new user namespace and mount namespace, map the user.
 * Host network, IPC, PID and UTS namespaces are kept on purpose: MPI needs them. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "launch.h"

#define USERNS_HINT \
   "unprivileged user namespaces look disabled on this host; an administrator can enable " \
   "them with: sysctl -w user.max_user_namespaces=15000 kernel.unprivileged_userns_clone=1 " \
   "(and, on Ubuntu, kernel.apparmor_restrict_unprivileged_userns=0)"

void ns_enter(const struct plan *p)
{
   uid_t uid = getuid();
   gid_t gid = getgid();

   /* 1. No privilege can be gained by exec from here on: setuid binaries in the image
    *    run with the user's own rights (the image is also mounted nosuid). */
   if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
      DIE("cannot set no_new_privs");

   /* 2. One unshare for both: the mount namespace is then owned by the new user
    *    namespace, where we hold CAP_SYS_ADMIN and may mount. */
   if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
      if (errno == EPERM || errno == ENOSPC || errno == EUSERS || errno == EINVAL)
         DIE_HINT(USERNS_HINT, "cannot create a user namespace");
      DIE("cannot create a user namespace");
   }

   /* 3. setgroups must be denied before gid_map can be written by an unprivileged
    *    process (the kernel refuses the map with EPERM otherwise). */
   char map[64];
   write_file("/proc/self/setgroups", "deny", 4);
   snprintf(map, sizeof(map), "%u %u 1\n", p->map_root ? 0 : uid, uid);
   write_file("/proc/self/uid_map", map, strlen(map));
   snprintf(map, sizeof(map), "%u %u 1\n", p->map_root ? 0 : gid, gid);
   write_file("/proc/self/gid_map", map, strlen(map));

   /* 4. Nothing we mount may propagate back to the host's mount namespace. */
   if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
      DIE("cannot make the mount tree private");
   debug("user and mount namespaces entered (uid %u -> %u)", uid, p->map_root ? 0 : uid);
}
