/* A PID namespace, so nothing outlives the command.
 *
 * Without one, a command killed with SIGKILL leaves its children running (reparented to
 * the host's init), with a dead FUSE mount under them. In a PID namespace the first
 * process is its init, and when init exits the kernel kills everything else in it. So:
 *
 *   launcher (host PID namespace)   waits for init, relays signals, exits with its status;
 *     |                             the FUSE server is its other child (PDEATHSIG)
 *     +- init (PID 1, new namespace)  mounts a fresh /proc, forks the command, relays
 *          |                          signals, reaps orphans, exits with the command's
 *          +- command (PID 2)          status (128+N for signal N)
 *
 * SIGKILL of the launcher: init has PDEATHSIG=SIGKILL, the namespace dies, the FUSE
 * server too. SIGKILL of the command: init exits 137 and takes the rest with it.
 *
 * Signals sent with kill(2) (si_code <= 0: SI_USER, SI_QUEUE, SI_TKILL) are relayed down.
 * Signals from the terminal (SI_KERNEL) already reach the command, which shares our
 * process group; relaying them would deliver them twice. Stop signals keep their
 * defaults in the launcher, so Ctrl-Z stops it and the shell regains the terminal.
 *
 * Ranks that join a shared container (launch_join.c) run without this: their MPI or
 * Slurm launcher tracks and cleans up its own processes, and PMIx peers identify ranks
 * by their host PIDs.
 *
 * Instances (--join-instance) have one PID namespace for the whole container: its init
 * is the holder's child (instance_init), and each process joining it (instance start's
 * startscript, every exec instance://) setns()es into it, which only its children
 * enter: so the joiner forks (pidns_joined_supervise) and waits outside, as above. The
 * joined command's parent is outside the namespace; its orphans go to the instance's
 * init. Stopping the instance is signalling its init: it passes the signal to every
 * process in the namespace and exits once they have all gone (at once for SIGKILL, the
 * kernel's doing); whatever is left then, the kernel kills. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

static const int RELAYED[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM,
                               SIGCONT, SIGWINCH, SIGURG, SIGXCPU, SIGPWR, SIGVTALRM, SIGPROF };

static sigset_t relayed_set(void)
{
   sigset_t s;
   sigemptyset(&s);
   for (size_t i = 0; i < sizeof(RELAYED) / sizeof(*RELAYED); i++)
      sigaddset(&s, RELAYED[i]);
   sigaddset(&s, SIGCHLD);
   return s;
}

static int status_code(int status)
{
   return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int g_scripts_fd = -1;

/* --runscript-timeout, in init: the image's env scripts (sourced by the image's /bin/sh,
 * the wrapper in launch_exec.c) must be done by DEADLINE (ms_now() time). The wrapper says
 * so by writing a byte on the pipe whose other end is FD; EOF (the direct path's exec
 * closes the command's end; a shell that died) ends the wait as well. Past the deadline
 * with neither, the command is killed, with everything the scripts started (init's
 * exit ends the namespace), and the launch fails. Apptainer's limit is on the same
 * phase: the commands its action script runs before the exec. */
struct scripts_timer {
   int fd;
   long deadline;
   unsigned ms;
};

static bool scripts_done(struct scripts_timer *t)
{
   char c;
   ssize_t r = read(t->fd, &c, 1);
   if (r < 0 && (errno == EAGAIN || errno == EINTR))
      return false;
   close(t->fd);
   t->fd = -1;
   return true;
}

static void scripts_overdue(const struct scripts_timer *t, pid_t child)
{
   kill(child, SIGKILL);
   if (t->ms % 1000)
      die_errno(0, "give them longer with --runscript-timeout", "the image's environment scripts did not finish within %ums: stopped", t->ms);
   die_errno(0, "give them longer with --runscript-timeout", "the image's environment scripts did not finish within %us: stopped", t->ms / 1000);
}

/* Wait for CHILD, relaying signals to it; return its exit status. Reaps any other child
 * that ends meanwhile (orphans, for init; the FUSE server, for the launcher). T, when not
 * NULL, is the env scripts' time limit. */
static int relay_until_exit(pid_t child, const sigset_t *set, struct scripts_timer *t)
{
   for (;;) {
      siginfo_t si;
      int sig;
      if (t && t->fd >= 0) {
         long left = t->deadline - ms_now();
         if (left <= 0 && !scripts_done(t))
            scripts_overdue(t, child);
         struct timespec ts = { left / 1000, (left % 1000) * 1000000L };
         sig = left > 0 ? sigtimedwait(set, &si, &ts) : sigwaitinfo(set, &si);
         if (sig < 0 && errno == EAGAIN)
            continue; /* the deadline: looked at above */
      } else
         sig = sigwaitinfo(set, &si);
      if (sig < 0) {
         if (errno == EINTR)
            continue;
         DIE("sigwaitinfo");
      }
      if (sig == SIGCHLD) {
         int status;
         pid_t pid;
         while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid == g_fuse_server)
               g_fuse_server = 0; /* reaped here: don't signal its number later */
            helper_reaped(pid);
            if (pid == child)
               return status_code(status);
         }
         continue;
      }
      if (si.si_code <= 0) /* sent with kill(2), not by the terminal */
         kill(child, sig);
   }
}

/* /proc of this namespace instead of the host's: ps and /proc/PID agree with getpid(),
 * and nothing of the host's /proc is left under it to be uncovered. The kernel lets a user
 * namespace mount a proc only while a whole one is already in view ("mount too
 * revealing"), which the host's, bound at /proc by the plan, is: so the new one is made
 * detached first (fsmount, where that check is made), the host's is then unmounted, and
 * the new one put in its place. */
void fresh_proc(void)
{
   int fs = fsopen("proc", FSOPEN_CLOEXEC), mnt = -1;
   if (fs < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
       (mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)) < 0) {
      /* EPERM: the host's /proc has a file mounted over part of it (a node's own boot_id,
       * as container-based test clusters and some sites bind), so no whole proc is in
       * view and the kernel refuses a new one. The PID namespace still holds; /proc stays
       * the host's, as without one. */
      if (errno != EPERM)
         DIE("cannot mount /proc for the container's PID namespace");
      warn("/proc stays the host's: the kernel refuses a new one here (part of the host's /proc is covered by a mount)");
      if (fs >= 0)
         close(fs);
      return;
   }
   close(fs);
   if (umount2("/proc", MNT_DETACH) < 0)
      DIE("cannot unmount the host's /proc");
   if (move_mount(mnt, "", AT_FDCWD, "/proc", MOVE_MOUNT_F_EMPTY_PATH) < 0)
      DIE("cannot mount /proc for the container's PID namespace");
   close(mnt);
}

void pidns_supervise(const struct plan *p)
{
   sigset_t set = relayed_set(), old;
   sigprocmask(SIG_BLOCK, &set, &old);
   if (unshare(CLONE_NEWPID) < 0)
      DIE("cannot create a PID namespace");
   /* init can't ask getppid() whether we are still there (we are outside its namespace,
    * so the answer is 0 either way): it watches a pidfd of ours instead. */
   int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
   if (self < 0)
      DIE("cannot open a pidfd for the launcher");
   pid_t init = fork();
   if (init < 0)
      DIE("cannot fork the container's init");
   if (init > 0) {
      close(self);
      prctl(PR_SET_NAME, "ctr-launch");
      int code = relay_until_exit(init, &set, NULL);
      debug("init ended (%d)", code);
      cgroup_finish(); /* the OOM note, and the container's cgroups removed */
      fuse_server_reap(); /* before we return: nothing of ours outlives ctr exec */
      helpers_stop();
      debug("FUSE server and helpers reaped");
      _exit(code);
   }

   /* init, PID 1 */
   die_with_parent(self, SIGKILL, "the container's init");
   prctl(PR_SET_NAME, "ctr-init");
   fresh_proc();
   int scripts[2] = { -1, -1 };
   if (p->runscript_timeout_ms && pipe2(scripts, O_CLOEXEC) < 0)
      DIE("cannot make a pipe for --runscript-timeout");
   if (p->checkpointable && !p->criu[0])
      criu_command_pid();
   pid_t cmd = fork();
   if (cmd < 0)
      DIE("cannot fork the command");
   if (cmd > 0) {
      struct scripts_timer t = { scripts[0], ms_now() + (long)p->runscript_timeout_ms, p->runscript_timeout_ms };
      if (scripts[0] >= 0) {
         close(scripts[1]);
         fcntl(scripts[0], F_SETFL, O_NONBLOCK);
      }
      int code = relay_until_exit(cmd, &set, scripts[0] >= 0 ? &t : NULL);
      debug("the command ended (%d)", code);
      /* ctr restore: CRIU (-d) left the restored command to us, at its old PID. */
      if (p->criu[0] && code != 0)
         criu_restore_failed(p, code);
      if (p->criu[0] && kill(CRIU_CMD_PID, 0) == 0)
         code = relay_until_exit(CRIU_CMD_PID, &set, NULL);
      _exit(code);
   }
   if (scripts[0] >= 0) {
      close(scripts[0]);
      g_scripts_fd = scripts[1];
   }
   sigprocmask(SIG_SETMASK, &old, NULL);
   /* the command: returns to exec it */
}

/* Signals that end an instance (`ctr instance stop -s SIG`, as Apptainer's stop: any
 * signal): init passes them on, then leaves once nothing else is left. Not the terminal's
 * job-control and window notices, which are only passed on. */
static bool ends_instance(int sig)
{
   return sig != SIGCONT && sig != SIGWINCH && sig != SIGURG;
}

/* Reap what has ended among our children (orphans of the namespace). */
static void reap_all(void)
{
   while (waitpid(-1, NULL, WNOHANG) > 0)
      ;
}

void instance_init(void)
{
   sigset_t set = relayed_set();
   sigprocmask(SIG_BLOCK, &set, NULL);
   prctl(PR_SET_NAME, "ctr-init");
   bool ending = false;
   for (;;) {
      siginfo_t si;
      /* Ending: look every 20 ms whether anyone is left (kill(-1) in a PID namespace
       * reaches every process in it but init; ESRCH: none). */
      struct timespec tick = { 0, 20 * 1000 * 1000 };
      int sig = ending ? sigtimedwait(&set, &si, &tick) : sigwaitinfo(&set, &si);
      if (sig == SIGCHLD || sig < 0)
         reap_all();
      else {
         kill(-1, sig);
         ending = ending || ends_instance(sig);
      }
      if (ending && kill(-1, 0) < 0 && errno == ESRCH)
         _exit(0);
   }
}

void pidns_joined_supervise(bool until_end)
{
   sigset_t set = relayed_set(), old;
   sigprocmask(SIG_BLOCK, &set, &old);
   int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
   if (self < 0)
      DIE("cannot open a pidfd for the launcher");
   /* The init was checked and held while its namespaces were opened (launch_join.c). */
   int init = until_end ? (int)syscall(SYS_pidfd_open, g_instance_init, 0) : -1;
   if (until_end && init < 0)
      DIE("cannot open a pidfd for the instance's init");
   pid_t cmd = fork();
   if (cmd < 0)
      DIE("cannot fork the command into the instance");
   if (cmd > 0) {
      close(self);
      prctl(PR_SET_NAME, "ctr-launch");
      int code = relay_until_exit(cmd, &set, NULL);
      /* The startscript has ended; what it started lives on in the instance, and in the
       * cgroups made for it, which go when the instance does. */
      struct pollfd pf = { .fd = init, .events = POLLIN };
      while (init >= 0 && poll(&pf, 1, -1) < 0 && errno == EINTR)
         ;
      cgroup_finish();
      _exit(code);
   }
   if (init >= 0)
      close(init);
   /* As a lone launch's command ends with its launcher: ctr exec instance:// killed
    * takes its command along (what that started stays in the instance until stop). */
   die_with_parent(self, SIGKILL, "the command");
   sigprocmask(SIG_SETMASK, &old, NULL);
}
