/* One container per node per job step: ranks join, rather than each making its own.
 *
 * Ranks in sibling user namespaces can't use cross-memory attach (process_vm_readv says
 * EPERM), and Open MPI 4.1's fallback then hangs on large messages. So the ranks of one
 * step on one node share one user namespace, one mount namespace and one FUSE mount.
 *
 * Rendezvous is an abstract unix socket named after the user, the job step and the plan
 * (host network namespace, so every rank of the node sees it; abstract, so nothing is
 * left in the file system whatever dies). Whoever binds it first forks a *holder*:
 *
 *   holder  setsid, builds the container exactly as a lone launch does (namespaces,
 *           squashfuse as its child, binds, pivot), then serves the socket: for each rank
 *           that connects (same uid, checked with SO_PEERCRED) it opens a pidfd on the
 *           rank and answers with its own pid. It exits when every rank it admitted has
 *           exited (pidfds), taking the FUSE server with it (PDEATHSIG) and freeing the
 *           name. A holder nobody joins gives up after JOIN_IDLE_MS.
 *   ranks   (the binder too) connect, wait for the answer, then setns() into the
 *           holder's user and mount namespaces, and carry on: chdir, env, exec.
 *
 * A rank that connects while a holder is shutting down gets EOF or ECONNREFUSED and
 * starts over, so there is no window where a rank is admitted to a dying container.
 * The job-step tag comes from the launchers' environment (see join_tag).
 *
 * Other users share the abstract namespace, and its names can be guessed. So both ends
 * check the other: the holder admits only our uid (SO_PEERCRED), and a rank believes
 * only a holder of our uid that is the socket's listener (the holder calls listen()
 * itself, once its container is ready, so SO_PEERCRED names it) and whose reply names
 * itself or its child, held by a pidfd while the namespaces are opened. A name held by
 * another user is one clear error, not a hang or a stranger's container; every wait has
 * a deadline.
 *
 * A kept container (--join-keep DIR: a named one, `srun --ctr-name`) outlives its ranks,
 * so that a job's later steps join it warm: its rendezvous is named by the tag alone (a
 * later step's plan differs in its rank count and working directory), and its holder
 * leaves only when DIR, a directory of the job's opened before the container is built,
 * is removed (the plugin's job epilog removes it, and stops the holder first), or on
 * SIGTERM. A Slurm step's processes are tracked by the step, but the holder has left it
 * (double fork, setsid): it is the job epilog that ends it, as pyxis removes a named
 * container there.
 *
 * With --fakeroot the holder's child, the keeper, holds the namespaces the ranks enter:
 * one user namespace further in, where the mounts are locked (launch_ns.c), shared by
 * every rank so they can still use cross-memory attach.
 *
 * An instance (--join-instance, ctr instance start) is a shared container with a PID
 * namespace of its own: the holder unshares it once the container is built and forks its
 * init (launch_init.c), PID 1, the keeper with --fakeroot (it makes /proc before it
 * locks the mounts: a proc mount needs privilege over the PID namespace's owner, the
 * holder's user namespace, which the locked one further in lacks). The init is one of
 * the holder's members from the start, so the container lasts as long as it does, not
 * only while some joiner runs; joiners setns() into its PID namespace too, and the key is
 * the tag alone. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"

pid_t g_instance_init;

#define JOIN_IDLE_MS 30000  /* a holder no rank ever joins */
#define JOIN_LINGER_MS 10000 /* waiting for the last of --join-count after the others left */
#define JOIN_DEADLINE_MS 60000 /* a rank gives up joining (a container being built, a squatter) */
#define JOIN_REPLY_MS 10000 /* an admitted rank's wait for the answer */

struct reply {
   char ok;
   int32_t pid;  /* whose namespaces to enter: the holder, or its keeper */
};

/* The job step this process belongs to, from the launcher's environment; NULL if none. */
static char *join_tag(const struct plan *p)
{
   const char *v, *w;
   if (p->join_tag)
      return xasprintf("tag.%s", p->join_tag);
   if ((v = getenv("SLURM_JOB_ID")) && (w = getenv("SLURM_STEP_ID")))
      return xasprintf("slurm.%s.%s", v, w);
   if ((v = getenv("PMIX_NAMESPACE")))
      return xasprintf("pmix.%s", v);
   if ((v = getenv("OMPI_MCA_ess_base_jobid")))
      return xasprintf("ompi.%s", v);
   if (getenv("PMI_FD") && getenv("MPI_LOCALNRANKS")) {
      /* MPICH's Hydra names no job: its proxy is every local rank's parent. `ctr exec`
       * runs us under Node, which passes the proxy's pid down. */
      const char *parent = getenv("CTR_PARENT_PID");
      return xasprintf("hydra.%s", parent ? parent : xasprintf("%d", (int)getppid()));
   }
   return NULL;
}

/* Slurm's SLURM_STEP_TASKS_PER_NODE ("2(x3),1": counts, each optionally repeated) at
 * index NODE: this node's rank count in the step; 0 if it can't be read. */
static int slurm_tasks_on_node(const char *v, long node)
{
   while (*v && node >= 0) {
      char *end;
      long count = strtol(v, &end, 10), times = 1;
      if (end == v || count <= 0)
         return 0;
      if (end[0] == '(' && end[1] == 'x') {
         times = strtol(end + 2, &end, 10);
         if (times <= 0 || *end != ')')
            return 0;
         end++;
      }
      if (node < times)
         return count > 1 << 20 ? 0 : (int)count;
      node -= times;
      if (*end != ',')
         return 0;
      v = end + 1;
   }
   return 0;
}

/* How many ranks of this step run on this node, so the container lives until the last
 * has joined: a rank starting after its node's first one has finished must still find
 * the container, not build a second one. From the plan, else the launchers' environment. */
static int join_count(const struct plan *p)
{
   const char *v, *w;
   if (p->join_count > 0)
      return p->join_count;
   if ((v = getenv("OMPI_COMM_WORLD_LOCAL_SIZE")) || (v = getenv("MPI_LOCALNRANKS")))
      return atoi(v);
   if ((v = getenv("SLURM_STEP_TASKS_PER_NODE")) && (w = getenv("SLURM_NODEID"))) {
      char *end;
      long node = strtol(w, &end, 10);
      if (end != w && !*end && node >= 0)
         return slurm_tasks_on_node(v, node);
   }
   return 0;
}

/* FNV-1a, 64 bits: the tag and every word of the plan, so different containers in one
 * step never meet. */
static uint64_t fnv(uint64_t h, const char *s)
{
   for (; *s; s++)
      h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
   return (h ^ 0xff) * 0x100000001b3ULL;
}

static socklen_t join_address(struct sockaddr_un *a, const char *tag, int argc, char **argv, bool tag_only, bool kept)
{
   uint64_t h = fnv(0xcbf29ce484222325ULL, tag);
   for (int i = 0; !tag_only && i < argc; i++)
      h = fnv(h, argv[i]);
   if (kept)
      h = fnv(h, "--join-keep");
   memset(a, 0, sizeof(*a));
   a->sun_family = AF_UNIX;
   int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "ctr-join.%u.%016llx", (unsigned)getuid(),
                    (unsigned long long)h);
   return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static long now_ms(void)
{
   struct timespec ts;
   clock_gettime(CLOCK_MONOTONIC, &ts);
   return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A kept container's directory is gone (removed: a directory with no links left). */
static bool keep_dir_gone(int fd)
{
   struct stat st;
   return fstat(fd, &st) < 0 || st.st_nlink == 0;
}

/* The holder's service loop: admit ranks, watch them, leave when they have all gone (a
 * kept container: when its directory has gone, KEEP_FD). */
static void holder_serve(int lfd, int expected, pid_t ns_pid, int keep_fd, bool instance) __attribute__((noreturn));
static void holder_serve(int lfd, int expected, pid_t ns_pid, int keep_fd, bool instance)
{
   struct pollfd *fds = xcalloc(2, sizeof(*fds));
   size_t n = 1, admitted = 0;
   fds[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
   if (instance) { /* the instance's init: a member until it ends */
      int pfd = (int)syscall(SYS_pidfd_open, ns_pid, 0);
      if (pfd < 0)
         DIE("cannot open a pidfd for the instance's init");
      fds[n++] = (struct pollfd){ .fd = pfd, .events = POLLIN };
      admitted++;
   }
   long last_change = now_ms();
   uid_t uid = getuid();
   for (;;) {
      size_t live = n - 1;
      if (keep_fd >= 0) {
         if (keep_dir_gone(keep_fd))
            break;
      } else if (live == 0) {
         long idle = now_ms() - last_change;
         if (admitted == 0 && idle > JOIN_IDLE_MS)
            break;
         /* An instance is over when its init and every joiner have gone, whatever the
          * job launcher's rank count says. */
         if (admitted > 0 && (instance || (int)admitted >= expected || idle > JOIN_LINGER_MS))
            break;
      }
      int r = poll(fds, n, keep_fd >= 0 ? 1000 : live == 0 ? 200 : -1);
      if (r < 0 && errno != EINTR)
         DIE("holder: poll");
      if (r <= 0)
         continue;
      for (size_t i = n; i-- > 1; )
         if (fds[i].revents) { /* a rank exited */
            close(fds[i].fd);
            fds[i] = fds[--n];
            last_change = now_ms();
            debug("holder: a rank left, %zu still in", n - 1);
         }
      if (fds[0].revents & POLLIN) {
         int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
         if (c < 0)
            continue;
         struct ucred cr;
         socklen_t len = sizeof(cr);
         int pfd = -1;
         if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.uid == uid)
            pfd = (int)syscall(SYS_pidfd_open, cr.pid, 0);
         struct reply rep = { pfd >= 0 ? 'k' : 'x', (int32_t)ns_pid };
         if (pfd >= 0 && write(c, &rep, sizeof(rep)) == (ssize_t)sizeof(rep)) {
            fds = realloc(fds, (n + 1) * sizeof(*fds));
            if (!fds)
               DIE_PLAIN("out of memory");
            fds[n++] = (struct pollfd){ .fd = pfd, .events = POLLIN };
            admitted++;
            last_change = now_ms();
            debug("holder: admitted pid %d (%zu in)", (int)cr.pid, n - 1);
         } else if (pfd >= 0)
            close(pfd);
         close(c);
      }
   }
   debug(keep_fd >= 0 ? "holder: the kept container's directory is gone; the container goes"
                      : "holder: every rank has left; the container goes");
   fuse_server_reap();
   helpers_stop();
   _exit(0);
}

/* Close every descriptor but 0-2 and the two given: the holder outlives the rank that
 * started it, and must not keep that rank's pipes, PMI socket or files open. */
static void keep_only_fds(int a, int b)
{
   int lo = a < b ? a : b, hi = a < b ? b : a;
   close_range(3, (unsigned)lo - 1, 0);
   close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
   close_range((unsigned)hi + 1, ~0U, 0);
}

/* --fakeroot: a child that enters the command's locked namespaces (launch_ns.c) and
 * waits there for the ranks, until the holder goes. An instance's init is this child too
 * (with or without --fakeroot), in the PID namespace the holder has just made. */
static pid_t start_keeper(const struct plan *p)
{
   int ready[2];
   struct child_report r; /* its words, if it fails */
   if (pipe2(ready, O_CLOEXEC) < 0)
      DIE("cannot create pipe");
   pid_t k = fork_helper(&r, SIGKILL, p->join_instance ? "the instance's init" : "the namespace keeper");
   if (k == 0) {
      close(ready[0]);
      prctl(PR_SET_NAME, "ctr-keeper");
      if (p->join_instance)
         fresh_proc(); /* PID 1 of the instance's namespace; before the lock (see above) */
      if (p->map_root)
         ns_lock_mounts(p);
      child_report_done(&r);
      if (write(ready[1], "k", 1) != 1)
         _exit(EXIT_LAUNCH_FAILED);
      close(ready[1]);
      if (p->join_instance)
         instance_init();
      for (;;)
         pause();
   }
   close(ready[1]);
   char c;
   if (read(ready[0], &c, 1) != 1) {
      const char *why = child_report_read(&r);
      DIE_PLAIN("the node's shared container could not be set up: %s: %s", p->join_instance ? "init" : "namespace keeper", why ? why : "it died");
   }
   close(ready[0]);
   close(r.rd);
   return k;
}

/* Bound the name: fork the holder (double fork, so it is nobody's zombie), and wait until
 * its container is ready or it has failed (its error is on our stderr already). */
static void spawn_holder(const struct plan *p, int lfd, int expected)
{
   int ready[2];
   if (pipe2(ready, O_CLOEXEC) < 0)
      DIE("cannot create pipe");
   pid_t mid = fork();
   if (mid < 0)
      DIE("cannot fork the container holder");
   if (mid == 0) {
      pid_t h = fork();
      if (h < 0)
         DIE("cannot fork the container holder"); /* still on the rank's stderr */
      if (h != 0)
         _exit(0);
      close(ready[0]);
      keep_only_fds(lfd, ready[1]);
      int keep_fd = -1;
      if (p->join_keep && (keep_fd = open(p->join_keep, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
         DIE("cannot open the kept container's directory %s", p->join_keep);
      setsid(); /* signals aimed at the rank's process group are not for the holder */
      prctl(PR_SET_NAME, "ctr-holder");
      int nul = open("/dev/null", O_RDWR);
      if (nul >= 0) {
         dup2(nul, 0);
         dup2(nul, 1);
      }
      g_fuse_quiet = !g_debug; /* the FUSE server outlives this rank too */
      g_fuse_shared = true;    /* and serves every rank of the node at once */
      ns_enter(p);
      int image_fd = image_open(p);
      mount_container(p, image_fd);
      if (p->join_instance && unshare(CLONE_NEWPID) < 0)
         DIE("cannot create the instance's PID namespace");
      pid_t ns_pid = p->map_root || p->join_instance ? start_keeper(p) : getpid();
      /* Only now: a rank that connects meets a ready container, and SO_PEERCRED on its
       * side names this process. */
      if (listen(lfd, 1024) < 0)
         DIE("cannot listen on the node's join rendezvous");
      if (write(ready[1], "k", 1) != 1)
         _exit(EXIT_LAUNCH_FAILED);
      close(ready[1]);
      /* Setup errors went to the first rank's stderr; from now on the holder must hold
       * none of the rank's descriptors, or its process manager (MPICH's Hydra waits for
       * a rank's stdout/stderr to close) never sees the rank end. */
      if (!g_debug && nul >= 0)
         dup2(nul, 2);
      if (nul > 2)
         close(nul);
      holder_serve(lfd, expected, ns_pid, keep_fd, p->join_instance);
   }
   close(ready[1]);
   int status;
   waitpid(mid, &status, 0);
   char c;
   ssize_t r;
   do
      r = read(ready[0], &c, 1);
   while (r < 0 && errno == EINTR);
   close(ready[0]);
   if (r != 1)
      die_code(EXIT_LAUNCH_FAILED, "the node's shared container could not be set up");
}

/* Is PID the holder HOLDER itself or its child (the keeper), and ours? */
static bool holder_or_keeper(pid_t pid, pid_t holder)
{
   if (pid == holder)
      return true;
   char path[64], buf[512];
   snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
   if (read_small(path, buf, sizeof(buf)) <= 0)
      return false;
   char *r = strrchr(buf, ')');
   int ppid;
   return r && sscanf(r + 1, " %*c %d", &ppid) == 1 && ppid == holder;
}

static void enter(const struct plan *p, pid_t pid, pid_t holder)
{
   /* The user namespace first: in it we hold the capabilities that setns into the
    * namespaces it owns requires. The network and UTS namespaces of --net/--hostname
    * are owned by the holder's user namespace, not by the keeper's one further in
    * (launch_net.c): so those are entered from the holder's, then the keeper's. */
   bool own_net = p->net_ns || p->hostname;
   /* An instance's PID namespace is the holder's user namespace's too; setns() into it
    * wants privilege in our own user namespace as well, so from inside that one. */
   bool outer = own_net || p->join_instance;
   struct { pid_t pid; const char *kind; int type; } ns[6];
   int n = 0;
   if (outer) {
      ns[n++] = (typeof(ns[0])){ holder, "user", CLONE_NEWUSER };
      if (p->net_ns)
         ns[n++] = (typeof(ns[0])){ holder, "net", CLONE_NEWNET };
      if (p->hostname)
         ns[n++] = (typeof(ns[0])){ holder, "uts", CLONE_NEWUTS };
      if (p->join_instance)
         ns[n++] = (typeof(ns[0])){ pid, "pid", CLONE_NEWPID };
   }
   if (!outer || (pid != holder && p->map_root))
      ns[n++] = (typeof(ns[0])){ pid, "user", CLONE_NEWUSER };
   ns[n++] = (typeof(ns[0])){ pid, "mnt", CLONE_NEWNS };
   int fds[6];
   /* Pin the process, check it is the holder's, open the namespaces, and check it was
    * still that process when they were opened (a pidfd becomes readable once it exits). */
   int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
   if (pfd < 0 || !holder_or_keeper(pid, holder))
      DIE_PLAIN("the node's shared container answered with a process that is not its own (pid %d)", (int)pid);
   for (int i = 0; i < n; i++) {
      char path[64];
      snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)ns[i].pid, ns[i].kind);
      if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
         DIE("cannot open %s", path);
   }
   struct pollfd pf = { .fd = pfd, .events = POLLIN };
   if (poll(&pf, 1, 0) != 0)
      DIE_PLAIN("the node's shared container went away while this rank joined it");
   close(pfd);
   for (int i = 0; i < n; i++) {
      if (setns(fds[i], ns[i].type) < 0)
         DIE("cannot join the container's %s namespace", ns[i].kind);
      close(fds[i]);
   }
}

/* Connect to the rendezvous and read the holder's answer. False when nobody (ready) is
 * there, so the caller tries again; dies when someone else's process is. */
static bool ask_holder(const struct sockaddr_un *addr, socklen_t alen, struct reply *rep, pid_t *holder)
{
   int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
   if (c < 0)
      DIE("cannot create socket");
   if (connect(c, (const struct sockaddr *)addr, alen) < 0) {
      close(c);
      return false;
   }
   struct ucred cr;
   socklen_t len = sizeof(cr);
   if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
      DIE("cannot identify the node's container holder");
   if (cr.uid != getuid())
      die_errno(0, "--no-join runs this rank in a container of its own; tell your administrator",
                "the node's join rendezvous %s is held by another user (uid %u)", addr->sun_path + 1, (unsigned)cr.uid);
   struct pollfd pf = { .fd = c, .events = POLLIN };
   int r;
   while ((r = poll(&pf, 1, JOIN_REPLY_MS)) < 0 && errno == EINTR)
      ;
   if (r == 0)
      DIE_PLAIN("the node's container holder (pid %d) did not answer within %d s", (int)cr.pid, JOIN_REPLY_MS / 1000);
   ssize_t n;
   do
      n = read(c, rep, sizeof(*rep));
   while (n < 0 && errno == EINTR);
   close(c);
   if (n != (ssize_t)sizeof(*rep))
      return false; /* a holder shutting down */
   *holder = cr.pid;
   return true;
}

enum join_result join_container(const struct plan *p, int argc, char **argv)
{
   char *tag = join_tag(p);
   if (p->join == JOIN_OFF) {
      bool step = tag != NULL;
      free(tag);
      return step ? JOIN_NOT_JOINED_IN_STEP : JOIN_NO_STEP;
   }
   if (!tag) {
      if (p->join == JOIN_ON)
         DIE_PLAIN("--join: no job step found in the environment (Slurm, Open MPI, MPICH); give --join-tag");
      return JOIN_NO_STEP;
   }
   if (p->join_instance && !p->join_tag)
      DIE_PLAIN("--join-instance: an instance is named by --join-tag, which the plan lacks");
   struct sockaddr_un addr;
   socklen_t alen = join_address(&addr, tag, argc, argv, p->join_keep != NULL || p->join_instance, p->join_keep != NULL);
   int expected = join_count(p);
   debug("joining %s (%s), %d rank(s) expected", addr.sun_path + 1, tag, expected);
   long deadline = now_ms() + JOIN_DEADLINE_MS;
   const char *instance = strncmp(tag, "tag.instance.", 13) ? tag + 4 : tag + 13;
   bool spawned = false;
   for (int attempt = 0; now_ms() < deadline; attempt++) {
      int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (lfd < 0)
         DIE("cannot create socket");
      if (bind(lfd, (struct sockaddr *)&addr, alen) == 0) {
         /* An instance is made by its start (the one with --ready-fd), never by an exec
          * that comes too late (a plan kept from before it ended). */
         if (p->join_instance && p->ready_fd < 0)
            die_errno(0, "ctr instance list", "instance %s: not running", instance);
         debug("first on this node: starting the container holder");
         spawn_holder(p, lfd, expected);
         spawned = true;
      } else if (errno == EADDRINUSE && p->join_instance && p->ready_fd >= 0 && !spawned) {
         /* Another start of this name got there first (one that answers), or a stopped
          * instance's holder is still leaving (no answer: again). */
         struct reply rep;
         pid_t other = 0;
         if (ask_holder(&addr, alen, &rep, &other) && rep.ok == 'k')
            die_errno(0, "ctr instance list", "instance %s: already running", instance);
         close(lfd);
         usleep(1000u * (unsigned)(1 + attempt % 20));
         continue;
      } else if (errno != EADDRINUSE)
         DIE("cannot bind %s", addr.sun_path + 1);
      close(lfd);

      struct reply rep;
      pid_t holder = 0;
      if (ask_holder(&addr, alen, &rep, &holder) && rep.ok == 'k') {
         debug("admitted by holder %d", (int)holder);
         /* As ns_enter does for a container of our own (the holder sets it there, after
          * forking its id mapper: newuidmap must still be able to run setuid). */
         if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            DIE("cannot set no_new_privs");
         enter(p, rep.pid, holder);
         if (p->join_instance)
            g_instance_init = rep.pid;
         if (p->ready_fd >= 0) {
            dprintf(p->ready_fd, "%d\n", (int)rep.pid);
            close(p->ready_fd);
         }
         enter_workdir(p);
         free(tag);
         return JOINED;
      }
      if (holder)
         DIE_PLAIN("the container holder refused this process");
      usleep(1000u * (unsigned)(1 + attempt % 20)); /* a holder starting or leaving: again */
   }
   die_errno(0, "another process may hold the rendezvous name; --no-join runs this rank in a container of its own",
             "could not join the node's shared container within %d s", JOIN_DEADLINE_MS / 1000);
}
