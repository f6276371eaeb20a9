/* SquashFS through FUSE, without fusermount.
 *
 * fusermount3 can't mount from inside a user namespace (it is setuid and drops what we
 * need), so we do its job: open /dev/fuse ourselves, mount a "fuse.squashfuse" file
 * system with fd=N (allowed: we hold CAP_SYS_ADMIN in the namespace that owns this mount
 * namespace), then start squashfuse_ll on /dev/fd/N (libfuse >= 3.3 takes a pre-opened
 * device that way). The server is our child with PDEATHSIG=SIGKILL: whichever process
 * ends up as its parent (we exec the command, so it is the command), when that dies the
 * server dies, the last reference to the mount namespace goes and the mount with it.
 *
 * Built with libsquashfuse (CTR_INPROCESS_FUSE, linked statically), the server is not
 * exec'd at all: the forked child serves the image descriptor we already hold, with its
 * own bounded readers over libsquashfuse's block cache (launch_sqfs_serve.c). That
 * saves squashfuse_ll's exec and dynamic loading on every launch, and since the child needs no path of the host's, the launcher can go on
 * building the container while the server starts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

static int open_fuse_device(void)
{
   int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
   if (fd >= 0)
      return fd;
   if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
      DIE_HINT("load the FUSE kernel module (modprobe fuse)", "cannot open /dev/fuse");
   if (errno == EACCES || errno == EPERM)
      DIE_HINT("/dev/fuse must be usable by users (mode 0666, as most distributions ship it)",
               "cannot open /dev/fuse");
   DIE("cannot open /dev/fuse");
}

bool g_fuse_quiet = false;
bool g_fuse_shared = false;

/* The server serves from descriptors it already holds and needs no capability. With
 * --fakeroot the command is root in the same user namespace and could otherwise ptrace
 * it or use what it holds: give every capability up, for good (bounding set first, as
 * capset can't lower it; no ambient ones). */
void drop_capabilities(void)
{
   for (int cap = 0; prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0; cap++)
      ;
   prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
   struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
   struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
   memset(none, 0, sizeof(none));
   if (syscall(SYS_capset, &hdr, none) < 0)
      DIE("cannot drop the FUSE server's capabilities");
}

#ifdef CTR_INPROCESS_FUSE
#include "launch_sqfs.h"
#endif

/* The server's set-up failures, read by fuse_wait_ready() (one server per launcher). */
static struct child_report g_fuse_report = { -1, -1 };

pid_t fuse_mount_squashfs(const struct plan *p, const char *mnt, int image_fd)
{
   /* Before anything is mounted, and in the launcher, so that both servers get only an
    * image whose layout is sane and a bad one is refused in one line. */
   sqfs_check_image(p, image_fd);
#ifdef CTR_INPROCESS_FUSE
   sqfs_ll *ll = sqd_open_image(p, image_fd);
#endif
   int fuse_fd = open_fuse_device();
   char opts[256];
   snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u", fuse_fd,
            (unsigned)getuid(), (unsigned)getgid());
   if (mount("ctr", mnt, "fuse.squashfuse", MS_NOSUID | MS_NODEV | MS_RDONLY, opts) < 0)
      DIE("cannot mount FUSE file system on %s", mnt);

   /* Opened here: the child must not look up paths, since with the built-in server we
    * pivot away from the host's root while it starts. */
   int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
   /* The server must never outlive whoever runs the container; fuse_wait_ready() says
    * why it failed. */
   pid_t pid = fork_helper(&g_fuse_report, SIGKILL, "the FUSE server");
   if (pid == 0) {
      /* Out of the host's tree at once: the launcher's pivots move a process whose cwd
       * is the old root along into the container, one whose cwd is elsewhere on the host
       * keeps it, reachable through /proc/PID/cwd. Not dumpable: its memory and
       * descriptors are not for the command to read. */
      if (chdir("/") < 0 || prctl(PR_SET_DUMPABLE, 0) < 0)
         DIE("cannot leave the host's tree");
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      prctl(PR_SET_NAME, fuse_in_process(p) ? "ctr-fuse" : "squashfuse_ll");
      if (nul >= 0) {
         dup2(nul, 0);
         dup2(nul, 1);
         if (g_fuse_quiet)
            dup2(nul, 2);
      }
#ifdef CTR_INPROCESS_FUSE
      if (!p->squashfuse_exec)
         sqd_serve(ll, fuse_fd);
#endif
      if (!p->squashfuse)
         die_code(EXIT_LAUNCH_FAILED, "squashfuse_ll not found, and this launcher has no built-in FUSE server "
                  "(install squashfuse, or build with libsquashfuse-dev)");
      if (fcntl(fuse_fd, F_SETFD, 0) < 0 || fcntl(image_fd, F_SETFD, 0) < 0)
         DIE("cannot pass descriptors to %s", p->squashfuse);
      char offset[64], image[64], dev[64];
      snprintf(offset, sizeof(offset), "offset=%llu", p->offset);
      snprintf(image, sizeof(image), "/proc/self/fd/%d", image_fd);
      snprintf(dev, sizeof(dev), "/dev/fd/%d", fuse_fd);
      char *argv[] = { "squashfuse_ll", "-f", "-o", offset, image, dev, NULL };
      drop_capabilities(); /* it mounts nothing either: libfuse takes /dev/fd/N as is */
      execv(p->squashfuse, argv); /* the report pipe is O_CLOEXEC: it closes here */
      DIE("cannot run %s", p->squashfuse);
   }
   close(fuse_fd);
   if (nul >= 0)
      close(nul);
   debug("FUSE server started (%s), pid %d, offset %llu", fuse_in_process(p) ? "in process" : p->squashfuse,
         (int)pid, p->offset);
   return pid;
}

bool fuse_in_process(const struct plan *p)
{
#ifdef CTR_INPROCESS_FUSE
   return !p->squashfuse_exec;
#else
   (void)p;
   return false;
#endif
}

/* Wait until the server answers: the kernel holds every request on a new FUSE connection
 * until the server has replied to INIT, so one stat of the root is both the readiness
 * check and the proof that the image opened. */
void fuse_wait_ready(const struct plan *p, const char *mnt, pid_t pid)
{
   struct stat st;
   if (stat(mnt, &st) < 0) {
      int err = errno, status;
      const char *why = child_report_read(&g_fuse_report);
      if (why)
         DIE_PLAIN("cannot mount image %s: the FUSE server failed: %s", p->image, why);
      if (waitpid(pid, &status, WNOHANG) == pid)
         DIE_PLAIN("cannot mount image %s: the FUSE server %s %d (is the SquashFS valid?)",
                   p->image, WIFSIGNALED(status) ? "was killed by signal" : "exited with",
                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      die_errno(err, NULL, "cannot mount image %s", p->image);
   }
   close(g_fuse_report.rd);
   g_fuse_report.rd = -1;
   debug("FUSE server answering");
}

/* Read-ahead of the command's file, started once the image answers and left to run
 * while the launcher builds the rest of the container.
 *
 * Every start is a fresh FUSE mount, so the page cache holds nothing of the image: the
 * command's exec then faults its binary in through the server, 128 KiB at a time, each
 * block decompressed while the command waits (/bin/true, a 2 MB busybox: ~16 round trips,
 * most of its run). readahead(2) queues those reads at once (FUSE reads pages
 * asynchronously), so the server decompresses them on another core while this process
 * does its mounts, and the exec finds the pages cached. Only what the command will run
 * first: argv[0] (an absolute path, or found on the plan's PATH), the runscript and
 * /bin/sh for run, the shell for shell. A path under a bind destination is the host's,
 * not the image's, and is skipped. Resolved in the image (RESOLVE_IN_ROOT: a symlink
 * can't lead out), regular files only, at most PREFETCH_MAX bytes of each: an image's
 * content can't make this read more than its command would. CTR_PREFETCH=0 turns it
 * off (for measuring it: bench/startup.ts). */
enum { PREFETCH_MAX = 32 << 20, PREFETCH_STEP = 128 << 10 };

static bool under_bind(const struct plan *p, const char *path)
{
   for (size_t i = 0; i < p->n_binds; i++) {
      const char *d = p->binds[i].dst;
      size_t n = strlen(d);
      while (n > 1 && d[n - 1] == '/')
         n--;
      if (n <= 1 || (!strncmp(path, d, n) && (path[n] == '/' || path[n] == '\0')))
         return true;
   }
   return false;
}

/* 1: started (or the file is not worth it), 0: not in the image. */
static int prefetch_one(const struct plan *p, int rootfd, const char *path)
{
   if (path[0] != '/' || under_bind(p, path))
      return 1;
   int fd = open_in_root(rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
   if (fd < 0)
      return 0;
   struct stat st;
   if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      /* One call per 128 KiB: the kernel caps each readahead(2) at the file system's
       * read-ahead window (FUSE: 128 KiB), whatever length it is given. */
      off_t n = st.st_size < PREFETCH_MAX ? st.st_size : PREFETCH_MAX, at = 0;
      while (at < n && readahead(fd, at, PREFETCH_STEP) == 0)
         at += PREFETCH_STEP;
      debug("read-ahead of %s (%lld of %lld bytes) started", path, (long long)(at < n ? at : n), (long long)st.st_size);
   }
   close(fd);
   return 1;
}

/* The PATH the plan sets (the planner always sets one), or "" when it sets none. */
static const char *plan_path(const struct plan *p)
{
   const char *path = "";
   for (size_t i = 0; i < p->n_env; i++)
      if (p->env[i].op == 's' && !strcmp(p->env[i].name, "PATH"))
         path = p->env[i].value;
   return path;
}

void fuse_prefetch(const struct plan *p, const char *root)
{
   const char *v = getenv("CTR_PREFETCH");
   if ((v && !strcmp(v, "0")) || p->criu[0])
      return;
   int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
   if (rootfd < 0)
      return;
   const char *cmd = p->argv && p->argv[0] ? p->argv[0] : NULL;
   if (p->action == ACTION_RUN) {
      prefetch_one(p, rootfd, RUNSCRIPT);
      prefetch_one(p, rootfd, "/bin/sh");
   } else if (p->action == ACTION_SHELL) {
      if (!prefetch_one(p, rootfd, "/bin/bash"))
         prefetch_one(p, rootfd, "/bin/sh");
   } else if (cmd && strchr(cmd, '/')) {
      prefetch_one(p, rootfd, cmd);
   } else if (cmd && *cmd && strlen(cmd) < 256) {
      const char *dirs = plan_path(p);
      for (int tries = 0; *dirs && tries < 16; tries++) { /* a bounded PATH walk */
         const char *end = strchrnul(dirs, ':');
         int len = (int)(end - dirs);
         if (len > 0 && len < 1024 && dirs[0] == '/') {
            char full[1300];
            snprintf(full, sizeof(full), "%.*s/%s", len, dirs, cmd);
            if (prefetch_one(p, rootfd, full))
               break;
         }
         dirs = *end ? end + 1 : end;
      }
   }
   close(rootfd);
}
