/* Namespaces: enter a new user namespace and mount namespace, map the user.
 * Host network, IPC, PID and UTS namespaces are kept on purpose: MPI needs them (network
 * and UTS namespaces of the container's own on request: launch_net.c).
 *
 * How ids are mapped (the user's own id, or root inside with --fakeroot):
 *   single   the user's one id, written by ourselves: "0 UID 1" (--fakeroot) or
 *            "UID UID 1", with setgroups denied (the kernel's rule for an unprivileged
 *            gid_map). Privileged calls of package managers fail in it; --fake-ids then
 *            fakes them (launch_seccomp.c).
 *   subids   --fakeroot with the user's /etc/subuid and /etc/subgid ranges: root is the
 *            user, 1..N the subordinate range, written by the setuid newuidmap and
 *            newgidmap from a helper forked before no_new_privs (which would stop them
 *            being setuid) that stays in the parent namespace. setgroups stays allowed.
 *            If they refuse and --fake-ids is given, we fall back to single with a note.
 *   nested   --fakeroot where we already are root over a range of ids (a build running
 *            inside a subids namespace, or the lock below): the same ids again, extent
 *            by extent, written by a forked helper that keeps our capabilities in the
 *            parent namespace.
 *
 * ns_lock_mounts: with --fakeroot the command holds every capability in the namespace
 * that owns its mounts, and could remount a read-only bind read-write or unmount /proc to
 * see what is under it. So the command runs one user namespace further in, with a copy
 * of the mount namespace: the kernel locks every mount that comes from a more privileged
 * namespace (flags can't be cleared, submounts can't be detached), and the command holds
 * no capability over the outer namespace, where the FUSE server and init live. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

#define USERNS_HINT \
   "unprivileged user namespaces look disabled on this host; an administrator can enable " \
   "them with: sysctl -w user.max_user_namespaces=15000 kernel.unprivileged_userns_clone=1 " \
   "(and, on Ubuntu, kernel.apparmor_restrict_unprivileged_userns=0)"

/* How many ids, 0..N-1, this process's user namespace maps contiguously from 0; 0 for
 * the initial namespace (where everything is mapped and nothing needs nesting). */
unsigned long ns_id_range(const char *which)
{
   char path[32], buf[4096];
   snprintf(path, sizeof(path), "/proc/self/%s_map", which);
   if (read_small(path, buf, sizeof(buf)) <= 0)
      return 0;
   unsigned long next = 0;
   for (char *l = buf; *l; ) {
      unsigned long in, out, count;
      if (sscanf(l, "%lu %lu %lu", &in, &out, &count) != 3)
         return 0;
      if (in == 0 && out == 0 && count == 4294967295UL)
         return 0; /* the initial namespace */
      if (in == next)
         next += count;
      char *nl = strchr(l, '\n');
      if (!nl)
         break;
      l = nl + 1;
   }
   return next;
}

struct mapper {
   pid_t pid;
   int go;     /* write end: tells the helper the namespace exists */
   int err;    /* read end: what newuidmap/newgidmap said */
};

/* newuidmap PID 0 OWN 1 1 START COUNT: root is the user, 1.. the subordinate range. */
static void helper_exec(const char *prog, pid_t target, unsigned long own, unsigned long start,
                        unsigned long count)
{
   char t[16], b[24], c[24], d[24];
   snprintf(t, sizeof(t), "%d", (int)target);
   snprintf(b, sizeof(b), "%lu", own);
   snprintf(c, sizeof(c), "%lu", start);
   snprintf(d, sizeof(d), "%lu", count);
   char *argv[] = { (char *)prog, t, "0", b, "1", "1", c, d, NULL };
   execv(prog, argv);
   DIE("cannot run %s", prog);
}

/* Our own map's ids, each extent again as one line "ID ID COUNT": a child's extent must
 * fall inside one extent of its parent's map, so "0 0 N" over our "0 UID 1" and
 * "1 SUBUID N-1" would be refused. NULL when there is nothing to copy. */
static char *identity_of(const char *which)
{
   char path[32], buf[4096];
   snprintf(path, sizeof(path), "/proc/self/%s_map", which);
   ssize_t n = read_small(path, buf, sizeof(buf));
   if (n <= 0)
      return NULL;
   char *out = xcalloc(1, (size_t)n * 2 + 1), *o = out;
   for (char *l = buf; *l; ) {
      unsigned long in, host, count;
      if (sscanf(l, "%lu %lu %lu", &in, &host, &count) == 3)
         o += sprintf(o, "%lu %lu %lu\n", in, in, count);
      char *nl = strchr(l, '\n');
      if (!nl)
         break;
      l = nl + 1;
   }
   return out;
}

static void helper_write(pid_t target, const char *which, const char *map)
{
   char path[48];
   snprintf(path, sizeof(path), "/proc/%d/%s_map", (int)target, which);
   int fd = open(path, O_WRONLY | O_CLOEXEC);
   if (fd < 0 || write(fd, map, strlen(map)) != (ssize_t)strlen(map))
      DIE("cannot write %s", path);
   close(fd);
}

/* Fork the helper that maps our ids once we have unshared (see the top). */
static void mapper_start(struct mapper *m, const struct plan *p, bool nested)
{
   int go[2], err[2];
   if (pipe2(go, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
      DIE("cannot make a pipe for the id mapper");
   pid_t parent = getpid();
   char *umap = nested ? identity_of("uid") : NULL, *gmap = nested ? identity_of("gid") : NULL;
   if (nested && (!umap || !gmap))
      DIE_PLAIN("cannot read this namespace's id maps");
   m->pid = fork();
   if (m->pid < 0)
      DIE("cannot fork the id mapper");
   if (m->pid == 0) {
      close(go[1]);
      close(err[0]);
      /* Our failures and newuidmap's own words go up the pipe: mapper_finish() says them. */
      dup2(err[1], 2);
      g_report_fd = err[1];
      char c;
      if (read(go[0], &c, 1) != 1)
         _exit(1); /* the launcher died or gave up */
      if (nested) {
         helper_write(parent, "uid", umap);
         helper_write(parent, "gid", gmap);
         _exit(0);
      }
      pid_t u = fork();
      if (u == 0)
         helper_exec(p->newuidmap, parent, getuid(), p->subuid_start, p->subuid_count);
      int st;
      if (u < 0 || waitpid(u, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
         _exit(1);
      helper_exec(p->newgidmap, parent, getgid(), p->subgid_start, p->subgid_count);
   }
   free(umap);
   free(gmap);
   close(go[0]);
   close(err[1]);
   m->go = go[1];
   m->err = err[0];
}

/* Let the helper map us; false (with its words in WHY) if it could not. */
static bool mapper_finish(struct mapper *m, char *why, size_t len)
{
   if (write(m->go, "g", 1) != 1)
      DIE("cannot signal the id mapper");
   close(m->go);
   int st;
   while (waitpid(m->pid, &st, 0) < 0)
      if (errno != EINTR)
         DIE("cannot wait for the id mapper");
   ssize_t n = read(m->err, why, len - 1);
   close(m->err);
   why[n > 0 ? n : 0] = '\0';
   why[strcspn(why, "\n")] = '\0';
   return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static bool map_written(const char *which)
{
   char path[32], buf[8];
   snprintf(path, sizeof(path), "/proc/self/%s_map", which);
   return read_small(path, buf, sizeof(buf)) > 0;
}

/* The single mapping, for whichever of the two maps is not written yet. */
static void map_single(uid_t inner_uid, uid_t uid, gid_t inner_gid, gid_t gid)
{
   char map[64];
   if (!map_written("uid")) {
      snprintf(map, sizeof(map), "%u %u 1\n", inner_uid, uid);
      write_file("/proc/self/uid_map", map, strlen(map));
   }
   if (!map_written("gid")) {
      /* setgroups must be denied before an unprivileged gid_map (EPERM otherwise) */
      write_file("/proc/self/setgroups", "deny", 4);
      snprintf(map, sizeof(map), "%u %u 1\n", inner_gid, gid);
      write_file("/proc/self/gid_map", map, strlen(map));
   }
}

static void unshare_user_mount(int more)
{
   if (unshare(CLONE_NEWUSER | CLONE_NEWNS | more) < 0) {
      if (errno == EPERM || errno == ENOSPC || errno == EUSERS || errno == EINVAL)
         DIE_HINT(USERNS_HINT, "cannot create a user namespace");
      DIE("cannot create a user namespace");
   }
}

void ns_enter(const struct plan *p)
{
   uid_t uid = getuid();
   gid_t gid = getgid();
   bool nested = p->map_root && uid == 0 && ns_id_range("uid") > 1 && ns_id_range("gid") > 1;
   bool subids = p->map_root && !nested && p->newuidmap;
   struct mapper m;
   if (nested || subids)
      mapper_start(&m, p, nested);
   net_prepare(p);

   /* 1. No privilege can be gained by exec from here on: setuid binaries in the image
    *    run with the user's own rights (the image is also mounted nosuid). */
   if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
      DIE("cannot set no_new_privs");

   /* 2. One unshare for both: the mount namespace is then owned by the new user
    *    namespace, where we hold CAP_SYS_ADMIN and may mount; so are the network and
    *    UTS namespaces of --net and --hostname (launch_net.c). */
   unshare_user_mount(net_unshare_flags(p));

   /* 3. The id maps (see the top). */
   const char *how = "single id";
   char why[512];
   if ((nested || subids) && mapper_finish(&m, why, sizeof(why)))
      how = nested ? "nested id range" : "subordinate id range";
   else if (nested)
      DIE_PLAIN("cannot map the id range into a nested user namespace: %s", why);
   else if (subids && !p->fake_ids)
      DIE_HINT("check your entries in /etc/subuid and /etc/subgid with your administrator, or use "
               "--fakeroot-mode seccomp", "fake root: newuidmap/newgidmap refused the subordinate ids: %s", why);
   else if (subids)
      fprintf(stderr, "ctr: note: fake root: newuidmap/newgidmap refused the subordinate ids (%s); "
              "faking ids with seccomp instead\n", why);
   map_single(p->map_root ? 0 : uid, uid, p->map_root ? 0 : gid, gid);
   net_setup(p);

   /* 4. Nothing we mount may propagate back to the host's mount namespace. */
   if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
      DIE("cannot make the mount tree private");
   debug("user and mount namespaces entered (uid %u -> %u, %s)", uid, p->map_root ? 0 : uid, how);
}

void ns_lock_mounts(const struct plan *p)
{
   bool range = ns_id_range("uid") > 1 && ns_id_range("gid") > 1;
   struct mapper m;
   if (range)
      mapper_start(&m, p, true);
   unshare_user_mount(0);
   char why[512];
   if (range && !mapper_finish(&m, why, sizeof(why)))
      DIE_PLAIN("cannot map the id range into the command's user namespace: %s", why);
   map_single(0, 0, 0, 0);
   debug("mounts locked: the command runs in a user namespace of its own");
}
