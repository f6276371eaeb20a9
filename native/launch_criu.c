/* Checkpoint/restart with CRIU, rootless: CRIU runs inside the container's namespaces.
 *
 * What the kernel refuses from outside (measured on 6.18, CRIU 4.1.1, as the user with
 * cap_checkpoint_restore on criu): setns() into the container's mount, PID and network
 * namespaces needs CAP_SYS_ADMIN in the caller's own user namespace ("Can't setns
 * 7/net: Operation not permitted"), and a CRIU that dumps a user namespace needs every
 * other namespace of the tree to be owned by it. From inside, CRIU holds every
 * capability over the container's namespaces (the ones a setns() into the user
 * namespace gives, kept across exec as ambient capabilities), its mount, PID, network
 * and IPC namespaces are the container's, so none of them is dumped, and it dumps and
 * restores a process subtree: the command. The FUSE root is never CRIU's business:
 * files are reopened by path, in the same image mounted again by a fresh container.
 *
 * What that takes of the container (--checkpointable):
 *   - no seccomp filter: CRIU must suspend a filter to inject its parasite
 *     (PTRACE_O_SUSPEND_SECCOMP), which needs CAP_SYS_ADMIN in the initial namespace.
 *     The TIOCSTI filter's job is done by setsid() instead: TIOCSTI on a terminal that
 *     is not the caller's controlling terminal needs CAP_SYS_ADMIN, and the command has
 *     none. The fake-ids filter (--fakeroot without subordinate ids) can't be dropped:
 *     that combination is refused.
 *   - the command in a session of its own: CRIU refuses a task whose session leader is
 *     outside its PID namespace.
 *   - the command as PID CRIU_CMD_PID, not 2: at restore CRIU is the fresh container's
 *     command (PID 2) and recreates the tree at its old PIDs (ns_last_pid, which init
 *     may write: it holds CAP_SYS_ADMIN over the namespace).
 *   - the root overlay with xino=on: without a private map_files view (that needs
 *     CAP_CHECKPOINT_RESTORE in the initial namespace) CRIU stats a mapped file by path
 *     and compares with /proc/PID/maps. Over a FUSE lower layer overlayfs puts its own
 *     device in maps but the lower's in stat; xino=on makes stat say overlayfs's too.
 *
 * The host's CRIU is run inside a tree that is the image's: through a descriptor of the
 * host's root opened before any namespace, with the host's dynamic loader and library
 * directories named explicitly (/proc/self/fd/N/...), so that nothing of the image is
 * loaded into it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

static int g_host_root = -1;

static bool absolute_list(const char *s)
{
   if (s[0] != '/')
      return false;
   for (const char *c = s; (c = strchr(c, ':')); c++)
      if (c[1] != '/')
         return false;
   size_t n = strlen(s);
   return !strstr(s, "/../") && !strstr(s, "/..:") && !(n >= 3 && !strcmp(s + n - 3, "/.."));
}

void criu_check_plan(const struct plan *p)
{
   if (!p->criu[0])
      return;
   if (!p->checkpointable)
      DIE_PLAIN("launch plan: --criu needs --checkpointable");
   for (int k = 0; k < 3; k++)
      if (!absolute_list(p->criu[k]) || (k != 1 && strchr(p->criu[k], ':')))
         DIE_PLAIN("launch plan: --criu: %.200s is not an absolute path", p->criu[k]);
}

void criu_open_host_root(const struct plan *p)
{
   if (!p->criu[0])
      return;
   /* No O_CLOEXEC: CRIU is run through it. O_PATH: nothing can be read through the
    * descriptor itself, only paths looked up under it. */
   g_host_root = open("/", O_PATH | O_DIRECTORY);
   if (g_host_root < 0)
      DIE("cannot open the host's root for CRIU");
}

void criu_command_pid(void)
{
   char last[16];
   int n = snprintf(last, sizeof(last), "%d", CRIU_CMD_PID - 1);
   int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
   if (fd < 0 || !write_all(fd, last, (size_t)n))
      DIE("cannot set the PID of a checkpointable command (/proc/sys/kernel/ns_last_pid)");
   close(fd);
}

/* The first Error line of a CRIU log that says why, without its time stamp. Skipped: the
 * kernel-feature probes' errors that every unprivileged run logs and survives. */
static const char *first_error(const char *log)
{
   static char line[512];
   FILE *f = fopen(log, "re");
   if (!f)
      return "it wrote no log";
   const char *found = "no Error line in its log";
   while (fgets(line, sizeof(line), f)) {
      char *e = strstr(line, "Error (");
      if (!e || strstr(line, "net.c") || strstr(line, "RLIMIT_NOFILE") || strstr(line, "Restoring FAILED"))
         continue;
      line[strcspn(line, "\n")] = '\0';
      found = e;
      break;
   }
   fclose(f);
   return found;
}

/* init, when the restoring CRIU (the command) failed: its reason, from the log in its -D. */
void criu_restore_failed(const struct plan *p, int code)
{
   const char *dir = "the checkpoint directory";
   for (char **a = p->argv; a[0] && a[1]; a++)
      if (!strcmp(a[0], "-D"))
         dir = a[1];
   char *log = xasprintf("%s/restore.log", dir);
   DIE_PLAIN("CRIU could not restore the checkpoint (exit %d): %s (log: %s)", code, first_error(log), log);
}

/* Keep the capabilities we hold across exec: inheritable, then ambient (the ambient
 * set is kept by an exec of a file without file capabilities, with no_new_privs too).
 * Not CAP_SETUID and CAP_SETGID where we are not uid 0 inside: a CRIU holding them
 * restores by setuid(0) first ("Unable to initialize id-s: Invalid argument" where 0
 * is not mapped); without them it keeps our ids, which are the dumped command's. */
static void keep_caps(void)
{
   bool ids = getuid() == 0;
   struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
   struct __user_cap_data_struct d[2];
   if (syscall(SYS_capget, &h, d) < 0)
      DIE("capget");
   for (int i = 0; i < 2; i++)
      d[i].inheritable = d[i].permitted;
   if (syscall(SYS_capset, &h, d) < 0)
      DIE("cannot make the capabilities inheritable for CRIU");
   for (int c = 0; c <= 63; c++) {
      if (!(d[c / 32].permitted & (1u << (c % 32))) || (!ids && (c == CAP_SETUID || c == CAP_SETGID)))
         continue;
      if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EINVAL)
         DIE("cannot keep capability %d for CRIU", c);
   }
}

/* /proc/self/fd/ROOT + each path of the colon-separated LIST. */
static char *under_root(int root, const char *list)
{
   char *out = xasprintf("%s", "");
   const char *s = list;
   for (;;) {
      const char *e = strchr(s, ':');
      size_t n = e ? (size_t)(e - s) : strlen(s);
      char *next = xasprintf("%s%s/proc/self/fd/%d%.*s", out, *out ? ":" : "", root, (int)n, s);
      free(out);
      out = next;
      if (!e)
         return out;
      s = e + 1;
   }
}

__attribute__((noreturn)) static void exec_criu(int root, const char *interp, const char *libpath, const char *criu, char **args)
{
   size_t n = 0;
   while (args[n])
      n++;
   char **v = xcalloc(n + 5, sizeof(char *));
   v[0] = under_root(root, interp);
   v[1] = "--library-path";
   v[2] = under_root(root, libpath);
   v[3] = under_root(root, criu);
   memcpy(v + 4, args, n * sizeof(char *));
   keep_caps();
   /* CRIU stops a task leaving its parasite with a hardware breakpoint by default; in
    * guests whose debug registers never fire (Firecracker, measured) every dump waits
    * forever. Fault 130 (FI_NO_BREAKPOINTS) is CRIU's only switch for the other way,
    * stepping through the few syscalls instead, which works everywhere.
    * And nothing else of the environment: at restore it is the container's, whose
    * LD_PRELOAD (say, from the image's environment scripts) must not reach CRIU. The
    * restored command's own environment is in the checkpoint. */
   char *env[] = { "CRIU_FAULT=130", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
   execve(v[0], v, env);
   die_code(EXIT_CMD_NOT_EXEC, "cannot run CRIU (%s through %s): %s", criu, interp, strerror(errno));
}

void criu_exec(const struct plan *p, char **args)
{
   if (g_host_root < 0)
      DIE_PLAIN("CRIU: the host's root was not opened");
   exec_criu(g_host_root, p->criu[0], p->criu[1], p->criu[2], args);
}

static int ns_fd(pid_t pid, const char *ns)
{
   char path[64];
   snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
   int fd = open(path, O_RDONLY | O_CLOEXEC);
   if (fd < 0)
      DIE("cannot open %s", path);
   return fd;
}

/* ctr-launch --criu-enter PID INTERP LIBPATH CRIU ARG...: run the host's CRIU with ARGs
 * in the user, mount and PID namespaces of PID (a checkpointable container's init, ours:
 * the kernel checks that setns() into its user namespace is ours to make). Exits with
 * CRIU's status. */
void criu_enter_verb(int argc, char **argv)
{
   if (argc < 6)
      DIE_PLAIN("usage: ctr-launch --criu-enter PID INTERP LIBPATH CRIU ARG...");
   char *end;
   long pid = strtol(argv[2], &end, 10);
   if (*end || pid < 2)
      DIE_PLAIN("--criu-enter: %.20s is not a PID", argv[2]);
   for (int k = 3; k < 6; k++)
      if (!absolute_list(argv[k]) || (k != 4 && strchr(argv[k], ':')))
         DIE_PLAIN("--criu-enter: %.200s is not an absolute path", argv[k]);
   int root = open("/", O_PATH | O_DIRECTORY);
   if (root < 0)
      DIE("cannot open the host's root for CRIU");
   /* All three opened first: once in the container's mount namespace, /proc is its. */
   int user = ns_fd((pid_t)pid, "user"), mnt = ns_fd((pid_t)pid, "mnt"), pidns = ns_fd((pid_t)pid, "pid");
   if (setns(user, CLONE_NEWUSER) < 0)
      DIE("cannot enter the user namespace of container process %ld", pid);
   if (setns(mnt, CLONE_NEWNS) < 0 || setns(pidns, CLONE_NEWPID) < 0)
      DIE("cannot enter the namespaces of container process %ld", pid);
   if (chdir("/") < 0)
      DIE("chdir /");
   pid_t child = fork(); /* a member of the PID namespace, as CRIU must be */
   if (child < 0)
      DIE("fork");
   if (child == 0)
      exec_criu(root, argv[3], argv[4], argv[5], argv + 6);
   int st;
   while (waitpid(child, &st, 0) < 0)
      if (errno != EINTR)
         DIE("waitpid");
   exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}
