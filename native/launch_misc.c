/* Errors, logging and small file helpers shared by the launcher. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"

int g_debug = 0;
int g_report_fd = -1;

/* In a job, every line says where it comes from (1,000 ranks share one log): "node NODE
 * rank N pid P: " after the level. Taken once at start-up, before the command's
 * environment replaces ours. */
static char g_where[160];

void report_init(void)
{
   static const char *const ranks[] = { "SLURM_PROCID", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK" };
   const char *rank = NULL;
   for (size_t i = 0; i < sizeof(ranks) / sizeof(*ranks) && !rank; i++)
      rank = getenv(ranks[i]);
   if (!rank || !*rank)
      return;
   const char *node = getenv("SLURMD_NODENAME");
   struct utsname u;
   if (!node || !*node)
      node = uname(&u) == 0 ? u.nodename : "?";
   snprintf(g_where, sizeof(g_where), "node %.64s rank %.16s", node, rank);
}

static void vreport(const char *level, int err, const char *fmt, va_list ap)
{
   char msg[4096], line[4352];
   vsnprintf(msg, sizeof(msg), fmt, ap);
   if (err)
      snprintf(line, sizeof(line), "%s: %s", msg, strerror(err));
   else
      snprintf(line, sizeof(line), "%s", msg);
   /* A child with a report pipe tells its parent, which says what failed in one line. */
   if (g_report_fd >= 0 && strcmp(level, "error") == 0) {
      size_t len = strnlen(line, PIPE_BUF - 2);
      line[len++] = '\n'; /* one write: a pipe keeps it whole */
      ssize_t n = write(g_report_fd, line, len);
      (void)n;
      return;
   }
   if (g_where[0]) /* the pid at the time: a child's own */
      fprintf(stderr, "ctr: %s: %s pid %d: %s\n", level, g_where, (int)getpid(), line);
   else
      fprintf(stderr, "ctr: %s: %s\n", level, line);
}

void die_errno(int err, const char *hint, const char *fmt, ...)
{
   va_list ap;
   va_start(ap, fmt);
   vreport("error", err, fmt, ap);
   va_end(ap);
   if (hint && g_report_fd < 0)
      fprintf(stderr, "ctr: hint: %s\n", hint);
   _exit(EXIT_LAUNCH_FAILED);
}

void die_code(int code, const char *fmt, ...)
{
   va_list ap;
   va_start(ap, fmt);
   vreport("error", 0, fmt, ap);
   va_end(ap);
   _exit(code);
}

void warn(const char *fmt, ...)
{
   va_list ap;
   va_start(ap, fmt);
   vreport("warning", 0, fmt, ap);
   va_end(ap);
}

void debug(const char *fmt, ...)
{
   if (!g_debug)
      return;
   va_list ap;
   char msg[4096];
   va_start(ap, fmt);
   vsnprintf(msg, sizeof(msg), fmt, ap);
   va_end(ap);
   struct timespec ts;
   clock_gettime(CLOCK_MONOTONIC, &ts);
   static double t0 = -1;
   double now = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
   if (t0 < 0)
      t0 = now;
   fprintf(stderr, "ctr-launch[%d] +%.2fms: %s\n", (int)getpid(), now - t0, msg);
}

char *xasprintf(const char *fmt, ...)
{
   va_list ap;
   char *s;
   va_start(ap, fmt);
   if (vasprintf(&s, fmt, ap) < 0)
      DIE_PLAIN("out of memory");
   va_end(ap);
   return s;
}

void *xcalloc(size_t n, size_t size)
{
   void *p = calloc(n ? n : 1, size);
   if (!p)
      DIE_PLAIN("out of memory");
   return p;
}

void write_file(const char *path, const char *content, size_t len)
{
   int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
   if (fd < 0)
      DIE("cannot open %s", path);
   while (len > 0) {
      ssize_t n = write(fd, content, len);
      if (n < 0) {
         if (errno == EINTR)
            continue;
         DIE("cannot write %s", path);
      }
      content += n;
      len -= (size_t)n;
   }
   if (close(fd) < 0)
      DIE("cannot write %s", path);
}

char *read_fd(int fd, const char *what, size_t *len)
{
   size_t cap = 4096, used = 0;
   char *buf = xcalloc(1, cap + 1);
   for (;;) {
      ssize_t n = read(fd, buf + used, cap - used);
      if (n < 0) {
         if (errno == EINTR)
            continue;
         DIE("cannot read %s", what);
      }
      if (n == 0)
         break;
      used += (size_t)n;
      if (used == cap) {
         cap *= 2;
         buf = realloc(buf, cap + 1);
         if (!buf)
            DIE_PLAIN("out of memory");
      }
   }
   buf[used] = '\0';
   if (len)
      *len = used;
   return buf;
}

ssize_t read_small(const char *path, char *buf, size_t size)
{
   int fd = open(path, O_RDONLY | O_CLOEXEC);
   if (fd < 0)
      return -1;
   ssize_t n;
   do
      n = read(fd, buf, size - 1);
   while (n < 0 && errno == EINTR);
   close(fd);
   buf[n > 0 ? n : 0] = '\0';
   return n;
}

char *read_bounded(int fd, size_t cap, const char *what, size_t *len)
{
   struct stat st;
   if (fstat(fd, &st) < 0)
      DIE("cannot read %s", what);
   if (!S_ISREG(st.st_mode))
      DIE_PLAIN("cannot read %s: not a regular file", what);
   if ((unsigned long long)st.st_size > cap)
      DIE_PLAIN("cannot read %s: larger than %zu MiB", what, cap >> 20);
   char *buf = read_capped(fd, cap, (size_t)st.st_size + 1, what, len);
   if (!buf)
      DIE_PLAIN("cannot read %s: larger than %zu MiB", what, cap >> 20);
   return buf;
}

char *read_capped(int fd, size_t cap, size_t hint, const char *what, size_t *len)
{
   /* Never more than CAP + 1 bytes, whatever the file or pipe does meanwhile. */
   size_t n = 0, want = hint < 1 ? 1 : hint > cap + 1 ? cap + 1 : hint;
   char *buf = xcalloc(1, want + 1);
   for (;;) {
      ssize_t r = read(fd, buf + n, want - n);
      if (r < 0 && errno == EINTR)
         continue;
      if (r < 0)
         DIE("cannot read %s", what);
      if (r == 0)
         break;
      n += (size_t)r;
      if (n == want) {
         if (want > cap) {
            free(buf);
            return NULL;
         }
         want = want * 2 > cap + 1 ? cap + 1 : want * 2;
         buf = realloc(buf, want + 1);
         if (!buf)
            DIE_PLAIN("out of memory");
      }
   }
   buf[n] = '\0';
   if (len)
      *len = n;
   return buf;
}

void mkdir_p(const char *path, mode_t mode)
{
   char buf[PATH_MAX];
   if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
      DIE_PLAIN("path too long: %s", path);
   for (char *p = buf + 1; ; p++) {
      if (*p == '/' || *p == '\0') {
         char c = *p;
         *p = '\0';
         if (mkdir(buf, mode) < 0 && errno != EEXIST)
            DIE("cannot create directory %s", buf);
         *p = c;
         if (c == '\0')
            break;
      }
   }
}

bool path_exists(const char *path)
{
   struct stat st;
   return lstat(path, &st) == 0;
}

bool is_dir(const char *path)
{
   struct stat st;
   return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* REL opened below ROOTFD as if ROOTFD were "/" (openat2 RESOLVE_IN_ROOT): a symlink or
 * ".." in an image can't lead out of it. A leading "/" is dropped; "" is ROOTFD itself.
 * O_CLOEXEC is added to FLAGS. */
int open_in_root(int rootfd, const char *rel, int flags)
{
   struct open_how how = { .flags = (unsigned long long)(flags | O_CLOEXEC),
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
   while (*rel == '/')
      rel++;
   return (int)syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof(how));
}

/* Resolve PATH as if ROOT were "/": symlinks inside the image are followed relative to
 * the image's root, never the host's (an image's /var/run -> /run must land on the
 * image's /run). Returns the resolved path *relative to ROOT*, starting with "/". Missing
 * trailing components are kept as they are, so the result can be created. */
char *resolve_in_root(const char *root, const char *path)
{
   char out[PATH_MAX] = "";
   char rest[PATH_MAX];
   int links = 0;
   if (snprintf(rest, sizeof(rest), "%s", path) >= (int)sizeof(rest))
      DIE_PLAIN("path too long: %s", path);
   char *p = rest;
   while (*p) {
      while (*p == '/')
         p++;
      if (!*p)
         break;
      char *end = strchrnul(p, '/');
      size_t n = (size_t)(end - p);
      char comp[NAME_MAX + 1];
      if (n > NAME_MAX)
         DIE_PLAIN("path component too long in %s", path);
      memcpy(comp, p, n);
      comp[n] = '\0';
      p = end;
      if (!strcmp(comp, "."))
         continue;
      if (!strcmp(comp, "..")) {
         char *slash = strrchr(out, '/');
         if (slash)
            *slash = '\0';
         continue;
      }
      size_t ol = strlen(out);
      if (ol + 1 + n >= sizeof(out))
         DIE_PLAIN("path too long: %s", path);
      out[ol] = '/';
      memcpy(out + ol + 1, comp, n + 1);
      char full[PATH_MAX * 2], target[PATH_MAX];
      snprintf(full, sizeof(full), "%s%s", root, out);
      ssize_t tl = readlink(full, target, sizeof(target) - 1);
      if (tl < 0)
         continue; /* not a symlink, or missing: keep the component as it is */
      if (++links > 40)
         DIE_PLAIN("too many levels of symbolic links in image path %s", path);
      target[tl] = '\0';
      char next[PATH_MAX * 2];
      snprintf(next, sizeof(next), "%s/%s", target, p);
      if (strlen(next) >= sizeof(rest))
         DIE_PLAIN("path too long: %s", path);
      if (target[0] == '/')
         out[0] = '\0';
      else
         out[ol] = '\0';
      strcpy(rest, next);
      p = rest;
   }
   return out[0] ? xasprintf("%s", out) : xasprintf("/");
}

void die_with_parent(int parent, int deathsig, const char *what)
{
   if (prctl(PR_SET_PDEATHSIG, deathsig) < 0)
      DIE("cannot set %s's parent-death signal", what);
   /* A parent killed between the fork and the prctl sent no death signal: a pidfd is
    * readable once its process has exited. */
   struct pollfd pf = { .fd = parent, .events = POLLIN };
   if (poll(&pf, 1, 0) != 0)
      _exit(EXIT_LAUNCH_FAILED); /* it is gone already: nobody to tell */
   close(parent);
}

pid_t fork_helper(struct child_report *r, int deathsig, const char *what)
{
   /* A pidfd, not getppid(): a child forked into a new PID namespace (an instance's
    * init) sees its parent as pid 0. */
   int parent = (int)syscall(SYS_pidfd_open, getpid(), 0);
   if (parent < 0)
      DIE("cannot open a pidfd for %s's parent", what);
   child_report_open(r);
   pid_t pid = fork();
   if (pid < 0)
      DIE("cannot fork %s", what);
   if (pid == 0) {
      child_report_in_child(r);
      die_with_parent(parent, deathsig, what);
      return 0;
   }
   close(parent);
   child_report_in_parent(r);
   return pid;
}

void child_report_open(struct child_report *r)
{
   int fds[2];
   if (pipe2(fds, O_CLOEXEC) < 0)
      DIE("cannot create a pipe");
   r->rd = fds[0];
   r->wr = fds[1];
}

void child_report_in_child(struct child_report *r)
{
   close(r->rd);
   r->rd = -1;
   g_report_fd = r->wr;
}

void child_report_in_parent(struct child_report *r)
{
   close(r->wr);
   r->wr = -1;
}

void child_report_done(struct child_report *r)
{
   if (r->wr >= 0)
      close(r->wr);
   r->wr = -1;
   g_report_fd = -1;
}

const char *child_report_read(struct child_report *r)
{
   static char buf[PIPE_BUF];
   if (r->rd < 0)
      return NULL;
   ssize_t n;
   while ((n = read(r->rd, buf, sizeof(buf) - 1)) < 0 && errno == EINTR)
      ;
   close(r->rd);
   r->rd = -1;
   if (n <= 0)
      return NULL;
   buf[n] = '\0';
   buf[strcspn(buf, "\n")] = '\0';
   return buf;
}

bool write_all(int fd, const char *buf, size_t len)
{
   while (len > 0) {
      ssize_t w = write(fd, buf, len);
      if (w < 0 && errno == EINTR)
         continue;
      if (w < 0)
         return false;
      buf += w;
      len -= (size_t)w;
   }
   return true;
}

long ms_now(void)
{
   struct timespec ts;
   clock_gettime(CLOCK_MONOTONIC, &ts);
   return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}
