/* Resource limits: the container's own cgroup, inside one the site delegated to the user.
 *
 * The planner (src/plan/cgroups.ts) chose the delegated directories (one per cgroup v1
 * hierarchy, or one cgroup v2 directory) and the files and values; here they are carried
 * out, in these steps:
 *
 *   setup   before anything else, as the user in the host's namespaces: stale cgroups of
 *           launchers that died are removed, ctr-PID is made in each DIR, the values
 *           written, and the reaper started (below). Any failure removes what was made.
 *   join    in the command's process just before its exec (so the launcher, its FUSE
 *           server and the PID namespace's init stay outside the limits: an OOM kill or
 *           the PID limit can only hit the container's own processes); the directories
 *           were opened at setup, so this works from inside the container's mounts.
 *   finish  when the container has ended (the supervising launcher, after init): a
 *           counted OOM kill gives a note, and each ctr-PID is removed, after killing
 *           whatever is left in it.
 *
 * Who removes the cgroups when the launcher is killed with SIGKILL: the reaper, a small
 * process forked at setup outside the cgroups and outside the terminal's process group
 * (setsid), that waits on a pidfd of the launcher. When the launcher's PID exits (the
 * launcher, or the command it became by exec when there is no PID namespace), the reaper
 * runs finish and exits; if the launcher finished first, there is nothing left to do.
 * Cgroup v1 has no unprivileged "became empty" notice (release_agent is root's), so
 * watching the process is the only way. A reaper that was itself killed leaves a ctr-PID
 * whose PID is dead: the next setup in that DIR removes it (stale, on sight).
 *
 * Kernel quirks handled:
 *   - cgroup v1 cpuset: a new cgroup starts with empty cpuset.cpus and cpuset.mems and
 *     takes no process until both are set: the parent's are copied first.
 *   - rmdir gives EBUSY for a moment after the last process exited (it leaves the cgroup
 *     at exit, but a killed one may still be exiting): retried briefly.
 *   - writing "0" to cgroup.procs moves the writer's whole thread group, and the file is
 *     checked against the opener's credentials (the user's, outside the user namespace). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"

#define CG_HINT \
   "the directory must exist and belong to you: an administrator delegates it (see ctr's " \
   "README, \"Resource limits\")"

struct cg {
   const char *parent;
   char *dir;       /* parent/ctr-PID */
   int fd;          /* dir, opened at setup */
   const char *oom_file, *oom_limit;
};

static struct cg *cgs;
static size_t n_cgs;
static pid_t owner; /* the launcher that made them: only it, or its reaper, finishes */

static void sleep_ms(long ms)
{
   struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
   while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
      ;
}

/* PID of a ctr-PID name, or 0. */
static pid_t name_pid(const char *name)
{
   if (strncmp(name, "ctr-", 4) || !name[4])
      return 0;
   char *end;
   long v = strtol(name + 4, &end, 10);
   return *end || v <= 0 || v > 1 << 22 ? 0 : (pid_t)v;
}

/* Cgroups of launchers that died without anyone removing them (a reaper killed too). An
 * empty one goes; one with processes in it gives EBUSY and stays. Only one made a while
 * ago: a launcher in another PID namespace (ctr in ctr) has a PID we can't see, and its
 * new cgroup is empty until its command joins. */
#define STALE_AFTER_S 30
static void remove_stale(const char *parent)
{
   DIR *d = opendir(parent);
   if (!d)
      return;
   struct dirent *e;
   struct timespec now;
   clock_gettime(CLOCK_REALTIME, &now);
   while ((e = readdir(d))) {
      pid_t pid = name_pid(e->d_name);
      struct stat st;
      if (!pid || (kill(pid, 0) == 0 || errno != ESRCH) || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
          now.tv_sec - st.st_mtim.tv_sec < STALE_AFTER_S)
         continue;
      if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) == 0)
         debug("removed the stale cgroup %s/%s", parent, e->d_name);
   }
   closedir(d);
}

/* Read FILE of the cgroup into BUF; its length, or -1. */
static ssize_t cg_read(const struct cg *c, const char *file, char *buf, size_t size)
{
   int fd = openat(c->fd, file, O_RDONLY | O_CLOEXEC);
   if (fd < 0)
      return -1;
   ssize_t n = read(fd, buf, size - 1);
   close(fd);
   buf[n > 0 ? n : 0] = '\0';
   return n;
}

static int cg_write(const struct cg *c, const char *file, const char *value)
{
   int fd = openat(c->fd, file, O_WRONLY | O_CLOEXEC);
   if (fd < 0)
      return -1;
   ssize_t n = write(fd, value, strlen(value));
   int err = errno;
   close(fd);
   errno = err;
   return n == (ssize_t)strlen(value) ? 0 : -1;
}

/* SIGKILL every process in the cgroup (ours: only the user can move processes in). */
static void kill_members(const struct cg *c)
{
   char buf[65536];
   if (cg_read(c, "cgroup.procs", buf, sizeof(buf)) <= 0)
      return;
   for (char *s = buf, *end; *s; s = end) {
      long pid = strtol(s, &end, 10);
      if (end == s)
         break;
      if (pid > 0)
         kill((pid_t)pid, SIGKILL);
   }
}

/* Remove the cgroup, killing what is left in it; true when it is gone. */
static bool cg_remove(struct cg *c, int tries)
{
   for (int i = 0; i < tries; i++) {
      if (rmdir(c->dir) == 0 || errno == ENOENT)
         return true;
      if (errno != EBUSY)
         return false;
      kill_members(c);
      sleep_ms(i < 20 ? 5 : 50);
   }
   return false;
}

static void remove_all(int tries)
{
   for (size_t i = 0; i < n_cgs; i++)
      if (!cg_remove(&cgs[i], tries))
         warn("cannot remove the cgroup %s: %s", cgs[i].dir, strerror(errno));
}

static struct cg *find(const char *parent)
{
   for (size_t i = 0; i < n_cgs; i++)
      if (!strcmp(cgs[i].parent, parent))
         return &cgs[i];
   return NULL; /* the plan's check (launch_plan.c) rules this out */
}

/* Remove what setup made so far, then die with errno's message. */
__attribute__((noreturn, format(printf, 2, 3))) static void fail(const char *hint, const char *fmt, ...)
{
   int err = errno;
   char msg[1024];
   va_list ap;
   va_start(ap, fmt);
   vsnprintf(msg, sizeof(msg), fmt, ap);
   va_end(ap);
   remove_all(20);
   die_errno(err, hint, "%s", msg);
}

/* v1 cpuset: copy the parent's cpus and mems into an empty child (see the top). */
static void cpuset_inherit(const struct cg *c)
{
   static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
   for (size_t k = 0; k < 2; k++) {
      char mine[4096], parents[4096], path[4096];
      if (cg_read(c, files[k], mine, sizeof(mine)) < 0 || mine[strspn(mine, " \n")] != '\0')
         continue; /* not a v1 cpuset, or already set */
      snprintf(path, sizeof(path), "%s/%s", c->parent, files[k]);
      if (read_small(path, parents, sizeof(parents)) <= 0)
         continue;
      if (cg_write(c, files[k], parents) < 0)
         fail(NULL, "cannot copy %s of %s into its child cgroup", files[k], c->parent);
   }
}

/* Close every descriptor from 3 up but the three given. */
static void close_others(int a, int b, int c)
{
   int keep[3] = { a, b, c };
   for (int i = 0; i < 3; i++)
      for (int j = i + 1; j < 3; j++)
         if (keep[j] < keep[i]) {
            int t = keep[i];
            keep[i] = keep[j];
            keep[j] = t;
         }
   unsigned lo = 3;
   for (int i = 0; i < 3; i++) {
      if (keep[i] < (int)lo)
         continue;
      if (keep[i] > (int)lo)
         syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
      lo = (unsigned)keep[i] + 1;
   }
   syscall(SYS_close_range, lo, ~0U, 0);
}

/* The reaper's end of things: until the launcher says it finished ('d' on DONE), or its
 * PID is gone (pidfd SELF readable), then finish if it was the latter. EOF on DONE
 * without a 'd' is the launcher's exec into the command (no PID namespace): keep
 * waiting for the PID. STATUS is held only to be closed by our exit. */
static void reaper_run(int self, int done, int status)
{
   prctl(PR_SET_NAME, "ctr-cgreaper");
   signal(SIGHUP, SIG_IGN);
   signal(SIGINT, SIG_IGN);
   signal(SIGQUIT, SIG_IGN);
   signal(SIGTERM, SIG_IGN);
   signal(SIGPIPE, SIG_IGN);
   /* No descriptor of the caller's but stderr (for the OOM note): a pipe or socket held
    * open here (stdout, PMI_FD) would keep whoever reads it waiting. */
   int null = open("/dev/null", O_RDWR | O_CLOEXEC);
   if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
   }
   close_others(self, done, status);
   for (size_t i = 0; i < n_cgs; i++) /* closed just now with the rest */
      cgs[i].fd = open(cgs[i].dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
   struct pollfd pf[2] = { { .fd = self, .events = POLLIN }, { .fd = done, .events = POLLIN } };
   for (;;) {
      if (poll(pf, 2, -1) < 0) {
         if (errno == EINTR)
            continue;
         break;
      }
      if (pf[0].revents)
         break;
      if (pf[1].revents) {
         char c;
         if (read(done, &c, 1) == 1 && c == 'd')
            _exit(0);
         pf[1].fd = -1; /* exec'd: only the PID tells now */
      }
   }
   cgroup_finish();
   _exit(0);
}

static int reaper_done = -1, reaper_status = -1;

/* The reaper (see the top): returns in the launcher. */
static void reaper_start(void)
{
   int self = (int)syscall(SYS_pidfd_open, getpid(), 0), done[2], status[2];
   if (self < 0)
      fail(NULL, "cannot open a pidfd for the cgroup reaper");
   if (pipe2(done, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0)
      fail(NULL, "cannot make pipes for the cgroup reaper");
   pid_t mid = fork();
   if (mid < 0)
      fail(NULL, "cannot fork the cgroup reaper");
   if (mid == 0) {
      setsid(); /* out of the terminal's process group: Ctrl-C is the container's */
      pid_t r = fork();
      if (r != 0)
         _exit(r < 0);
      reaper_run(self, done[0], status[1]);
   }
   close(self);
   close(done[0]);
   close(status[1]);
   reaper_done = done[1];
   reaper_status = status[0];
   int st;
   while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
      ;
   if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      fail(NULL, "cannot fork the cgroup reaper");
}

/* The launcher finished: the reaper is told so, and gone when this returns, so nothing of
 * ctr's runs after ctr returns. */
static void reaper_stop(void)
{
   if (reaper_done < 0)
      return;
   if (write(reaper_done, "d", 1) != 1)
      warn("cannot tell the cgroup reaper to stop: %s", strerror(errno));
   close(reaper_done);
   char c;
   while (read(reaper_status, &c, 1) < 0 && errno == EINTR)
      ;
   close(reaper_status);
   reaper_done = reaper_status = -1;
}

void cgroup_setup(const struct plan *p)
{
   if (!p->n_cgroups)
      return;
   owner = getpid();
   for (size_t i = 0; i < p->n_cgroups; i++) {
      const struct cgroup_op *op = &p->cgroups[i];
      struct cg *c;
      switch (op->op) {
      case 'c':
         remove_stale(op->dir);
         cgs = realloc(cgs, (n_cgs + 1) * sizeof(*cgs));
         if (!cgs)
            DIE_PLAIN("out of memory");
         c = &cgs[n_cgs];
         *c = (struct cg){ .parent = op->dir, .dir = xasprintf("%s/ctr-%d", op->dir, (int)owner), .fd = -1 };
         if (mkdir(c->dir, 0755) < 0)
            fail(CG_HINT, "cannot make a cgroup in %s", op->dir);
         n_cgs++;
         c->fd = open(c->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
         if (c->fd < 0)
            fail(NULL, "cannot open the cgroup %s", c->dir);
         cpuset_inherit(c);
         debug("cgroup %s made", c->dir);
         break;
      case 's':
         c = find(op->dir);
         if (cg_write(c, op->file, op->value) < 0)
            fail(errno == ENOENT ? "the controller is not enabled in that cgroup (cgroup v2: the parent's "
                 "cgroup.subtree_control)" : NULL, "cannot set %s to %s in the cgroup %s", op->file, op->value, c->dir);
         debug("cgroup %s: %s = %s", c->dir, op->file, op->value);
         break;
      case 'o':
         c = find(op->dir);
         c->oom_file = op->file;
         c->oom_limit = op->value;
         break;
      }
   }
   reaper_start();
}

void cgroup_join(void)
{
   for (size_t i = 0; i < n_cgs; i++)
      if (cg_write(&cgs[i], "cgroup.procs", "0") < 0)
         DIE("cannot put the container into the cgroup %s", cgs[i].dir);
   if (n_cgs)
      debug("the command joined its cgroups");
}

/* The "oom_kill N" count of an OOM file (v1 memory.oom_control, v2 memory.events). */
static unsigned long long oom_kills(const struct cg *c)
{
   char buf[4096];
   if (cg_read(c, c->oom_file, buf, sizeof(buf)) <= 0)
      return 0;
   for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
      if (!strncmp(l, "oom_kill ", 9))
         return strtoull(l + 9, NULL, 10);
   return 0;
}

void cgroup_finish(void)
{
   if (!n_cgs)
      return;
   for (size_t i = 0; i < n_cgs; i++) {
      unsigned long long n = cgs[i].oom_file ? oom_kills(&cgs[i]) : 0;
      if (n > 0 && path_exists(cgs[i].dir))
         fprintf(stderr, "ctr: note: the container hit its memory limit (%s): the kernel killed %llu "
                 "process%s in it (out of memory)\n", cgs[i].oom_limit, n, n == 1 ? "" : "es");
   }
   remove_all(getpid() == owner ? 100 : 1200);
   for (size_t i = 0; i < n_cgs; i++)
      close(cgs[i].fd);
   n_cgs = 0;
   if (getpid() == owner)
      reaper_stop();
}
