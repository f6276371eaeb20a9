/* The container's own network and host name: --net-ns, --hostname, --slirp4netns.
 *
 * Not the default: MPI and Slurm need the host's network (and ranks find each other on
 * it), so the planner asks for these only when the user does (--net, --hostname).
 *
 * Order, inside ns_enter:
 *   net_prepare    before unshare: fork the slirp4netns helper, which must stay in the
 *                  host's namespaces (its outside end is a socket there) and waits;
 *   unshare        CLONE_NEWNET/CLONE_NEWUTS in the same call as the user namespace, so
 *                  both are owned by it: we may configure them, and with --fakeroot the
 *                  command, one user namespace further in (ns_lock_mounts), may not (no
 *                  CAP_NET_ADMIN over its interfaces, no sethostname);
 *   net_setup      after the id maps: loopback up (a new network namespace has lo down,
 *                  and much software needs 127.0.0.1), the host name, then let the
 *                  helper go and wait until slirp4netns says the tap device is up.
 *
 * slirp4netns (user-mode TCP/IP, as rootless Podman used before pasta) rather than pasta:
 * it is packaged for the distributions HPC sites run (RHEL 8 and Debian bookworm alike),
 * it says when it is ready (--ready-fd) instead of being polled, it sandboxes itself
 * (--enable-sandbox: its own mount namespace over an empty root, capabilities dropped;
 * --enable-seccomp), and --disable-host-loopback is one explicit flag: the gateway
 * 10.0.2.2 does not lead to the host's 127.0.0.1, where a login node's neighbours run
 * their services. bookworm's pasta forwards the namespace's ports to the host by default
 * (-T auto) and has neither handshake. Both need /dev/net/tun usable by users (0666, as
 * distributions ship it). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

#define SLIRP_TAP "tap0"
#define SLIRP_WAIT_MS 10000

static pid_t g_slirp;
static int g_slirp_go = -1, g_slirp_ready = -1;

int net_unshare_flags(const struct plan *p)
{
   return (p->net_ns ? CLONE_NEWNET : 0) | (p->hostname ? CLONE_NEWUTS : 0);
}

void net_prepare(const struct plan *p)
{
   if (!p->slirp4netns)
      return;
   int go[2], ready[2];
   if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
      DIE("cannot make a pipe for slirp4netns");
   pid_t target = getpid();
   int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
   g_slirp = fork();
   if (g_slirp < 0)
      DIE("cannot fork slirp4netns");
   if (g_slirp == 0) {
      close(go[1]);
      close(ready[0]);
      /* It must never outlive the container; it holds nothing worth a clean exit. */
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != target)
         _exit(EXIT_LAUNCH_FAILED);
      char c;
      if (read(go[0], &c, 1) != 1)
         _exit(EXIT_LAUNCH_FAILED); /* the launcher gave up */
      if (chdir("/") < 0 || fcntl(ready[1], F_SETFD, 0) < 0)
         _exit(EXIT_LAUNCH_FAILED);
      if (nul >= 0) {
         dup2(nul, 0);
         dup2(nul, 1);
         if (!g_debug)
            dup2(nul, 2); /* it reports every step; a failure is reported by us */
      }
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      char rfd[32], userns[64], pid[16];
      snprintf(rfd, sizeof(rfd), "--ready-fd=%d", ready[1]);
      snprintf(userns, sizeof(userns), "--userns-path=/proc/%d/ns/user", (int)target);
      snprintf(pid, sizeof(pid), "%d", (int)target);
      char *argv[] = { "slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
                       "--enable-seccomp", rfd, userns, pid, SLIRP_TAP, NULL };
      execv(p->slirp4netns, argv);
      _exit(127);
   }
   if (nul >= 0)
      close(nul);
   close(go[0]);
   close(ready[1]);
   g_slirp_go = go[1];
   g_slirp_ready = ready[0];
}

/* SIOCSIFFLAGS on lo: a new network namespace has it, down. */
static void loopback_up(void)
{
   int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
   struct ifreq ifr;
   memset(&ifr, 0, sizeof(ifr));
   strcpy(ifr.ifr_name, "lo");
   if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
      DIE("cannot look up the container's loopback interface");
   ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
   if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
      DIE("cannot bring up the container's loopback interface");
   close(s);
}

static void slirp_wait(const struct plan *p)
{
   if (write(g_slirp_go, "g", 1) != 1)
      DIE("cannot start slirp4netns");
   close(g_slirp_go);
   char c = 0;
   ssize_t n;
   do
      n = read(g_slirp_ready, &c, 1);
   while (n < 0 && errno == EINTR);
   close(g_slirp_ready);
   if (n == 1 && c == '1') {
      debug("slirp4netns (pid %d) up: %s 10.0.2.100/24 via 10.0.2.2", (int)g_slirp, SLIRP_TAP);
      return;
   }
   /* It exited without saying it was ready: say how, and where to look. */
   int st = 0;
   pid_t r;
   while ((r = waitpid(g_slirp, &st, 0)) < 0 && errno == EINTR)
      ;
   g_slirp = 0;
   const char *hint = "/dev/net/tun must be usable by users (mode 0666, as distributions ship it); "
                      "--debug shows slirp4netns's own messages";
   if (r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 127)
      die_errno(0, hint, "cannot run %s", p->slirp4netns);
   die_errno(0, hint, "slirp4netns could not set up the container's network (%s %d)",
             r > 0 && WIFSIGNALED(st) ? "killed by signal" : "exit status",
             r > 0 && WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

void net_setup(const struct plan *p)
{
   if (p->net_ns) {
      loopback_up();
      debug("network namespace of its own, loopback up");
   }
   if (p->hostname) {
      if (sethostname(p->hostname, strlen(p->hostname)) < 0)
         DIE("cannot set the container's host name to %s", p->hostname);
      debug("UTS namespace of its own, host name %s", p->hostname);
   }
   if (p->slirp4netns)
      slirp_wait(p);
}

void net_helper_reaped(pid_t pid)
{
   if (pid == g_slirp)
      g_slirp = 0;
}

void net_helper_stop(void)
{
   if (g_slirp <= 0)
      return;
   kill(g_slirp, SIGKILL);
   while (waitpid(g_slirp, NULL, 0) < 0 && errno == EINTR)
      ;
   g_slirp = 0;
}
