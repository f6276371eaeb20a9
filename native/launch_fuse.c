/* SquashFS through FUSE, without fusermount.
 *
 * fusermount3 can't mount from inside a user namespace (it is setuid and drops what we
 * need), so we do its job: open /dev/fuse ourselves, mount a "fuse.squashfuse" file
 * system with fd=N (allowed: we hold CAP_SYS_ADMIN in the namespace that owns this mount
 * namespace), then start squashfuse_ll on /dev/fd/N (libfuse >= 3.3 takes a pre-opened
 * device that way). The server is our child with PDEATHSIG=SIGKILL: whichever process
 * ends up as its parent (we exec the command, so it is the command), when that dies the
 * server dies, the last reference to the mount namespace goes and the mount with it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
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

pid_t fuse_mount_squashfs(const struct plan *p, const char *mnt, int image_fd)
{
   int fuse_fd = open_fuse_device();
   char opts[256];
   snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u", fuse_fd,
            (unsigned)getuid(), (unsigned)getgid());
   if (mount("ctr", mnt, "fuse.squashfuse", MS_NOSUID | MS_NODEV | MS_RDONLY, opts) < 0)
      DIE("cannot mount FUSE file system on %s", mnt);

   pid_t parent = getpid();
   pid_t pid = fork();
   if (pid < 0)
      DIE("cannot fork the FUSE server");
   if (pid == 0) {
      /* The server must never outlive whoever runs the container. */
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
         _exit(EXIT_LAUNCH_FAILED);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      int nul = open("/dev/null", O_RDWR);
      if (nul >= 0) {
         dup2(nul, 0);
         dup2(nul, 1);
         if (g_fuse_quiet)
            dup2(nul, 2);
      }
      if (fcntl(fuse_fd, F_SETFD, 0) < 0 || fcntl(image_fd, F_SETFD, 0) < 0)
         _exit(EXIT_LAUNCH_FAILED);
      char offset[64], image[64], dev[64];
      snprintf(offset, sizeof(offset), "offset=%llu", p->offset);
      snprintf(image, sizeof(image), "/proc/self/fd/%d", image_fd);
      snprintf(dev, sizeof(dev), "/dev/fd/%d", fuse_fd);
      char *argv[] = { "squashfuse_ll", "-f", "-o", offset, image, dev, NULL };
      execv(p->squashfuse, argv);
      fprintf(stderr, "ctr: error: cannot run %s: %m\n", p->squashfuse);
      _exit(EXIT_LAUNCH_FAILED);
   }
   close(fuse_fd);
   debug("squashfuse_ll started, pid %d, offset %llu", (int)pid, p->offset);

   /* Wait until the server answers: the kernel holds every request on a new FUSE
    * connection until the server has replied to INIT, so one stat of the root is both
    * the readiness check and the proof that the image opened. */
   struct stat st;
   if (stat(mnt, &st) < 0) {
      int err = errno, status;
      if (waitpid(pid, &status, WNOHANG) == pid)
         DIE_PLAIN("cannot mount image %s: squashfuse_ll %s %d (is the SquashFS valid?)",
                   p->image, WIFSIGNALED(status) ? "was killed by signal" : "exited with",
                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      die_errno(err, NULL, "cannot mount image %s", p->image);
   }
   debug("squashfuse_ll answering");
   return pid;
}
