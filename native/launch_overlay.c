/* A writable layer kept across runs: --overlay-dir DIR and --overlay-image FILE.
 *
 * Both are the upper layer of the root overlay (launch_mount.c step 4), in the layout
 * Apptainer uses, so its overlays work here and ours there: upper/ holds the changes,
 * work/ is overlayfs's scratch directory, both at the top of DIR or of the image's file
 * system. An ext3 image (ctr overlay create, apptainer overlay create) is the quota for
 * persistent changes: writes past its size fail with ENOSPC inside.
 *
 * The image is the user's file but may come from anywhere: its file system is parsed
 * by fuse2fs, not by the kernel (which would need real root to mount ext3 at all), and
 * fuse2fs runs as the user in the container's user and mount namespaces, with
 * CAP_SYS_ADMIN there and nothing else (it mounts itself: libfuse 2 has no way to be
 * handed a mounted /dev/fuse descriptor), so its mount exists only in the container.
 * What the image holds is never followed out of it: upper/ and work/ are opened without
 * following symlinks and handed to overlayfs by descriptor (/proc/self/fd), or named to
 * fuse-overlayfs only after checking the name is that directory, so a symlink
 * "upper -> /home/you" in a crafted image is refused rather than made the upper layer.
 *
 * Kernel overlayfs refuses a FUSE upper layer that lacks RENAME_WHITEOUT ("upper fs
 * missing required features"), and libfuse 2, which bookworm's fuse2fs is built on, has
 * no rename flags; so over an image the root is fuse-overlayfs, as with Apptainer's
 * rootless overlay images. It is mounted as the image is (our own /dev/fuse descriptor,
 * /dev/fd/N to the server) and needs no capability; it runs in a mount namespace copy of
 * its own, so the launcher's pivots don't move its root into the tree it serves.
 *
 * fuse2fs writes its caches back only when it exits cleanly, so it is let exit once its
 * mount is gone (or ended with SIGTERM, also its parent-death signal) and waited for: the next run of the same image starts
 * from what the last one wrote. A lock on the image (flock, held by fuse2fs) refuses a
 * second container on an image in use, which two fuse2fs would corrupt. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"
#include "launch_sqfs.h" /* drop_capabilities */

#define FUSE_SUPER_MAGIC 0x65735546
#define FUSE2FS_WAIT_MS 10000 /* mounting */
#define FUSE2FS_QUIT_MS 5000  /* its mount gone, exiting by itself */
#define FUSE2FS_STOP_MS 30000 /* writing the image back after SIGTERM */

static pid_t g_fuse2fs, g_fuse_overlayfs;
static int g_fuse_overlayfs_go = -1;
static pid_t g_lower_servers[MAX_LOWERS]; /* the FUSE servers of the read-only layers */


void overlay_open(const struct plan *p, struct overlay_upper *o)
{
   o->dir_fd = o->image_fd = o->upper_fd = o->work_fd = -1;
   for (size_t i = 0; i < p->n_lowers; i++) {
      o->lower_fd[i] = open(p->lowers[i].path, O_RDONLY | O_CLOEXEC);
      if (o->lower_fd[i] < 0)
         DIE("cannot open overlay %s", p->lowers[i].path);
   }
   if (p->overlay_dir) {
      o->dir_fd = open(p->overlay_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (o->dir_fd < 0)
         DIE("cannot open overlay directory %s", p->overlay_dir);
   }
   if (p->overlay_image) {
      struct stat st;
      o->image_fd = open(p->overlay_image, O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
      if (o->image_fd < 0)
         DIE("cannot open overlay image %s", p->overlay_image);
      if (fstat(o->image_fd, &st) < 0 || !S_ISREG(st.st_mode))
         DIE_PLAIN("overlay image %s: not a regular file", p->overlay_image);
      if (flock(o->image_fd, LOCK_EX | LOCK_NB) < 0) {
         if (errno == EWOULDBLOCK)
            DIE_PLAIN("overlay image %s: in use by another container", p->overlay_image);
         DIE("cannot lock overlay image %s", p->overlay_image);
      }
   }
}

/* Only CAP_SYS_ADMIN (for its mount), in the container's user namespace, kept across
 * the exec as an ambient capability (the user's own uid would lose it). */
static void keep_only_sys_admin(void)
{
   for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
      if (cap != CAP_SYS_ADMIN)
         prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
   struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
   struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
   memset(d, 0, sizeof(d));
   d[0].effective = d[0].permitted = d[0].inheritable = 1u << CAP_SYS_ADMIN;
   if (syscall(SYS_capset, &hdr, d) < 0 ||
       prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0) < 0)
      _exit(EXIT_LAUNCH_FAILED);
}

/* upper/ or work/ under FD: never a symlink, made when missing. */
static int layer_dir(int fd, const char *name, const char *where)
{
   int d = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
   if (d < 0 && errno == ENOENT) {
      if (mkdirat(fd, name, 0755) < 0 && errno != EEXIST)
         DIE("cannot create %s/ in overlay %s", name, where);
      d = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
   }
   if (d < 0)
      DIE("overlay %s: %s/ is not a directory", where, name);
   return d;
}

/* What the fuse2fs child says if it fails before fuse2fs runs (launch_misc.c). */
static struct child_report g_fuse2fs_report = { -1, -1 };

static void fuse2fs_wait(const struct plan *p, const char *mnt)
{
   long deadline = ms_now() + FUSE2FS_WAIT_MS;
   for (;;) {
      struct statfs sf;
      if (statfs(mnt, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC)
         return;
      int st;
      if (waitpid(g_fuse2fs, &st, WNOHANG) == g_fuse2fs) {
         g_fuse2fs = 0;
         const char *why = child_report_read(&g_fuse2fs_report);
         if (why) /* it failed before fuse2fs ran: its own words */
            DIE_PLAIN("cannot mount overlay image %s: %s", p->overlay_image, why);
         die_errno(0, "is it an ext3 image made by ctr overlay create (or apptainer overlay create)?",
                   "cannot mount overlay image %s: fuse2fs %s %d", p->overlay_image,
                   WIFSIGNALED(st) ? "was killed by signal" : "exited with status",
                   WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
      }
      if (ms_now() > deadline)
         DIE_PLAIN("cannot mount overlay image %s: fuse2fs did not mount it within %d s", p->overlay_image,
                   FUSE2FS_WAIT_MS / 1000);
      usleep(1000);
   }
}

/* Each read-only layer as the image is mounted: checked, then served by a FUSE server
 * of its own (launch_fuse.c), at SCRATCH_BASE/lowerN. */
static void mount_lowers(const struct plan *p, struct overlay_upper *o)
{
   for (size_t i = 0; i < p->n_lowers; i++) {
      char dir[64];
      snprintf(dir, sizeof(dir), SCRATCH_BASE "/lower%zu", i);
      if (mkdir(dir, 0755) < 0)
         DIE("cannot create %s", dir);
      struct plan q = *p;
      q.image = p->lowers[i].path;
      q.offset = p->lowers[i].offset;
      g_lower_servers[i] = fuse_mount_squashfs(&q, dir, o->lower_fd[i]);
      close(o->lower_fd[i]);
      fuse_wait_ready(&q, dir, g_lower_servers[i]);
      debug("read-only overlay %s", q.image);
   }
}

char *overlay_lowers(const struct plan *p, const char *base)
{
   char *s = xasprintf("%s", "");
   for (size_t i = p->n_lowers; i-- > 0;) {
      char *t = xasprintf("%s%s/lower%zu:", s, base, i);
      free(s);
      s = t;
   }
   return s;
}

void overlay_start(const struct plan *p, struct overlay_upper *o)
{
   mount_lowers(p, o);
   if (p->tmpfs_fuse) { /* --writable-tmpfs for fuse-overlayfs: its layer on the scratch tmpfs */
      const char *dirs[] = { SCRATCH_BASE OVERLAY_MNT, SCRATCH_BASE OVERLAY_MNT "/upper", SCRATCH_BASE OVERLAY_MNT "/work" };
      for (size_t i = 0; i < 3; i++)
         if (mkdir(dirs[i], 0755) < 0)
            DIE("cannot create %s", dirs[i]);
      o->upper_fd = open(dirs[1], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      o->work_fd = open(dirs[2], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (o->upper_fd < 0 || o->work_fd < 0)
         DIE("cannot open the --writable-tmpfs layer");
      return;
   }
   if (o->dir_fd >= 0) {
      o->upper_fd = layer_dir(o->dir_fd, "upper", p->overlay_dir);
      o->work_fd = layer_dir(o->dir_fd, "work", p->overlay_dir);
      close(o->dir_fd);
      o->dir_fd = -1;
      debug("overlay directory %s: upper/ and work/", p->overlay_dir);
      return;
   }
   if (o->image_fd < 0)
      return;
   const char *mnt = SCRATCH_BASE OVERLAY_MNT;
   if (mkdir(mnt, 0755) < 0)
      DIE("cannot create %s", mnt);
   int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
   /* SIGTERM, not SIGKILL: it must write the image back even if we are killed. */
   g_fuse2fs = fork_helper(&g_fuse2fs_report, SIGTERM, "fuse2fs");
   if (g_fuse2fs == 0) {
      if (chdir("/") < 0 || prctl(PR_SET_DUMPABLE, 0) < 0 || fcntl(o->image_fd, F_SETFD, 0) < 0)
         DIE("cannot prepare fuse2fs's process");
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      if (nul >= 0) {
         dup2(nul, 0);
         if (!g_debug) { /* its notes ("Writing to the journal is not supported") */
            dup2(nul, 1);
            dup2(nul, 2); /* a failure is reported by us, with its status */
         }
      }
      keep_only_sys_admin();
      char image[64];
      snprintf(image, sizeof(image), "/proc/self/fd/%d", o->image_fd);
      /* allow_other: with --fakeroot over subordinate ids, processes of other ids (apt's
       * _apt) use the layer too; a FUSE mount in a user namespace serves only that
       * namespace's processes either way. */
      /* fakeroot: its own uid checks know nothing of capabilities in a user namespace
       * (overlayfs makes work/work mode 0 and writes in it as the mounter); the kernel
       * checks instead (default_permissions). */
      char *argv[] = { "fuse2fs", image, (char *)mnt, "-f", "-o",
                       "allow_other,fakeroot,default_permissions,nosuid,nodev", NULL };
      /* Loaded now: at exit glibc dlopens it for pthread_cancel, when the host's root is
       * no longer where it was (our pivots move its root along). */
      char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LD_PRELOAD=libgcc_s.so.1", NULL };
      execve(p->fuse2fs, argv, envp); /* the report pipe is O_CLOEXEC: it closes here */
      DIE("cannot run %s", p->fuse2fs);
   }
   if (nul >= 0)
      close(nul);
   close(o->image_fd); /* fuse2fs holds it, and the lock with it */
   o->image_fd = -1;
   fuse2fs_wait(p, mnt);
   if (g_fuse2fs_report.rd >= 0)
      close(g_fuse2fs_report.rd);
   g_fuse2fs_report.rd = -1;
   int root = open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
   if (root < 0)
      DIE("cannot open overlay image %s", p->overlay_image);
   o->upper_fd = layer_dir(root, "upper", p->overlay_image);
   o->work_fd = layer_dir(root, "work", p->overlay_image);
   close(root);
   debug("overlay image %s served by fuse2fs (pid %d)", p->overlay_image, (int)g_fuse2fs);
}

char *overlay_upper_opts(const struct overlay_upper *o)
{
   /* After the first pivot the host's /proc is under /oldroot; this process's view of
    * it (not yet in a PID namespace of its own) names these descriptors. */
   return xasprintf("upperdir=/oldroot/proc/%d/fd/%d,workdir=/oldroot/proc/%d/fd/%d", (int)getpid(), o->upper_fd,
                    (int)getpid(), o->work_fd);
}

void overlay_close(struct overlay_upper *o)
{
   if (o->upper_fd >= 0)
      close(o->upper_fd);
   if (o->work_fd >= 0)
      close(o->work_fd);
   o->upper_fd = o->work_fd = -1;
}

/* PATH, not followed if a symlink, is the directory FD is. */
static bool same_dir(const char *path, int fd)
{
   struct stat a, b;
   return lstat(path, &a) == 0 && fstat(fd, &b) == 0 && S_ISDIR(a.st_mode) && a.st_dev == b.st_dev &&
          a.st_ino == b.st_ino;
}

void overlay_fuse_root(const struct plan *p, struct overlay_upper *o, const char *lowers, const char *mnt)
{
   int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
   if (fd < 0)
      DIE("cannot open /dev/fuse");
   const char *what = p->overlay_image ? p->overlay_image : p->image;
   char *opts = xasprintf("fd=%d,rootmode=40000,user_id=%u,group_id=%u,allow_other,default_permissions", fd,
                          (unsigned)getuid(), (unsigned)getgid());
   if (mount("ctr-overlay", mnt, "fuse.fuse-overlayfs", MS_NOSUID | MS_NODEV, opts) < 0)
      DIE("cannot mount the overlay of %s", what);
   free(opts);
   /* --writable-tmpfs-fuse: the image's files are of ids this namespace does not map;
    * shown as ours, fuse-overlayfs copies them up as ours (kernel overlayfs would have
    * to give the copy the unmapped owner: EOVERFLOW). */
   char *squash = p->tmpfs_fuse ? xasprintf("squash_to_uid=%u,squash_to_gid=%u,", (unsigned)getuid(), (unsigned)getgid())
                                : xasprintf("%s", "");
   /* By path in its own mount namespace (a /proc/self/fd name would be resolved through
    * ours, pivoted by then); checked below to be the directories opened without
    * following symlinks. */
   char *layers = xasprintf("%snoacl,lowerdir=%s,upperdir=" SCRATCH_BASE OVERLAY_MNT "/upper,workdir=" SCRATCH_BASE
                            OVERLAY_MNT "/work", squash, lowers);
   free(squash);
   int nul = open("/dev/null", O_RDWR | O_CLOEXEC), go[2], own[2];
   if (pipe2(go, O_CLOEXEC) < 0 || pipe2(own, O_CLOEXEC) < 0)
      DIE("cannot make a pipe for fuse-overlayfs");
   struct child_report r; /* its set-up failures, until it is ready to wait for "go" */
   g_fuse_overlayfs = fork_helper(&r, SIGKILL, "fuse-overlayfs");
   if (g_fuse_overlayfs == 0) {
      if (unshare(CLONE_NEWNS) < 0 || chdir("/") < 0 || prctl(PR_SET_DUMPABLE, 0) < 0)
         DIE("cannot give fuse-overlayfs a mount namespace of its own");
      /* Its mount namespace is its own now: the launcher may pivot. It reads its layers'
       * top directories once, at start: wait until the launcher has made the mount
       * points in the skeleton (after its pivot, step 3). */
      close(go[1]);
      close(own[0]);
      child_report_done(&r); /* from here on, its errors are on stderr */
      char c;
      if (write(own[1], "u", 1) != 1 || read(go[0], &c, 1) != 1)
         _exit(EXIT_LAUNCH_FAILED);
      close(own[1]);
      if (!same_dir(SCRATCH_BASE OVERLAY_MNT "/upper", o->upper_fd) || !same_dir(SCRATCH_BASE OVERLAY_MNT "/work", o->work_fd)) {
         fprintf(stderr, "ctr: error: overlay of %s changed while it was mounted\n", what);
         _exit(EXIT_LAUNCH_FAILED);
      }
      if (fcntl(fd, F_SETFD, 0) < 0)
         _exit(EXIT_LAUNCH_FAILED);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      if (nul >= 0) {
         dup2(nul, 0);
         dup2(nul, 1);
         /* Over the scratch tmpfs it notes "unknown argument ignored: lazytime" on every
          * start; a failure shows as the mount that does not answer (_go). */
         if (p->tmpfs_fuse && !g_debug)
            dup2(nul, 2);
      }
      char dev[32];
      snprintf(dev, sizeof(dev), "/dev/fd/%d", fd);
      char *argv[] = { "fuse-overlayfs", "-f", "-o", layers, dev, NULL };
      char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
      drop_capabilities();
      execve(p->fuse_overlayfs, argv, envp);
      fprintf(stderr, "ctr: error: cannot run %s: %s\n", p->fuse_overlayfs, strerror(errno));
      _exit(127);
   }
   close(fd);
   close(go[0]);
   close(own[1]);
   char c;
   if (read(own[0], &c, 1) != 1) {
      const char *why = child_report_read(&r);
      DIE_PLAIN("cannot start fuse-overlayfs for %s%s%s", what, why ? ": " : "", why ? why : "");
   }
   close(own[0]);
   close(r.rd);
   g_fuse_overlayfs_go = go[1];
   if (nul >= 0)
      close(nul);
   free(layers);
}

void overlay_fuse_root_go(const struct plan *p, const char *mnt)
{
   if (write(g_fuse_overlayfs_go, "g", 1) != 1)
      DIE("cannot start fuse-overlayfs");
   close(g_fuse_overlayfs_go);
   g_fuse_overlayfs_go = -1;
   const char *what = p->overlay_image ? p->overlay_image : p->image;
   struct stat st;
   if (stat(mnt, &st) < 0) {
      int err = errno;
      die_errno(err, NULL, "cannot mount the overlay of %s (fuse-overlayfs)", what);
   }
   debug("fuse-overlayfs (pid %d) serving the root over %s", (int)g_fuse_overlayfs, what);
}

static void fuse2fs_stop(void)
{
   if (g_fuse_overlayfs > 0) {
      kill(g_fuse_overlayfs, SIGKILL);
      while (waitpid(g_fuse_overlayfs, NULL, 0) < 0 && errno == EINTR)
         ;
      g_fuse_overlayfs = 0;
   }
   if (g_fuse2fs <= 0)
      return;
   /* With fuse-overlayfs gone, nothing holds fuse2fs's mount (detached with the scratch
    * root): the kernel ends the connection once the releases of fuse-overlayfs's files
    * are queued, and fuse2fs serves those (an unlinked file is freed only then), then
    * exits by itself, writing the image back. SIGTERM only if it does not. */
   long deadline = ms_now() + FUSE2FS_QUIT_MS;
   for (;;) {
      pid_t r = waitpid(g_fuse2fs, NULL, WNOHANG);
      if (r == g_fuse2fs || (r < 0 && errno != EINTR)) {
         g_fuse2fs = 0;
         return;
      }
      if (ms_now() > deadline)
         break;
      usleep(1000);
   }
   debug("fuse2fs still running: SIGTERM");
   kill(g_fuse2fs, SIGTERM);
   deadline = ms_now() + FUSE2FS_STOP_MS;
   for (;;) {
      pid_t r = waitpid(g_fuse2fs, NULL, WNOHANG);
      if (r == g_fuse2fs || (r < 0 && errno != EINTR))
         break;
      if (ms_now() > deadline) {
         warn("fuse2fs did not write the overlay image back within %d s; stopped", FUSE2FS_STOP_MS / 1000);
         kill(g_fuse2fs, SIGKILL);
         waitpid(g_fuse2fs, NULL, 0);
         break;
      }
      usleep(2000);
   }
   g_fuse2fs = 0;
}

void helpers_stop(void)
{
   for (size_t i = 0; i < MAX_LOWERS; i++)
      if (g_lower_servers[i] > 0) {
         kill(g_lower_servers[i], SIGKILL);
         while (waitpid(g_lower_servers[i], NULL, 0) < 0 && errno == EINTR)
            ;
         g_lower_servers[i] = 0;
      }
   ibind_stop();
   net_helper_stop();
   fuse2fs_stop();
}

void helper_reaped(pid_t pid)
{
   for (size_t i = 0; i < MAX_LOWERS; i++)
      if (pid == g_lower_servers[i])
         g_lower_servers[i] = 0;
   ibind_reaped(pid);
   net_helper_reaped(pid);
   if (pid == g_fuse2fs)
      g_fuse2fs = 0;
   if (pid == g_fuse_overlayfs)
      g_fuse_overlayfs = 0;
}
