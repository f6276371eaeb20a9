/* The plan cache of `ctr-launch --ask` (launch_plan.c): a plan that Node made once is
 * reused, without starting Node, while nothing it was made from has changed.
 *
 * The key is what the launcher knows before planning: ctr's argv (flags, image, command),
 * the user, the working directory, HOME, the node (host name, boot id) and ctr's build
 * (this launcher's file, node's and the start-up snapshot's identities). The rest of
 * what a plan depends on is reported by the planner itself (src/launch/inputs.ts): every
 * file it statted, opened or resolved and every variable it looked up, each as it was
 * before planning read it. A cached plan is used only while every one of those inputs is
 * still as recorded. The launcher keeps no list of its own, so it can't fall behind the
 * planner. The environment policy is in the plan's words and is carried out at launch
 * time, as for a plan file, so per-rank variables (PMI_*, SLURM_PROCID) stay per rank.
 *
 * Entries are files in a private per-user directory ($XDG_RUNTIME_DIR/ctr/plans where
 * there is one of ours, else the cache dir's plans/): mode 0700, each file 0600, written
 * under a temporary name and renamed, at most PLANCACHE_MAX of them. One is believed
 * only when it is a regular file of ours, private, of this format's version, whole
 * (checksum), and for exactly this key; anything else is refused, replanned and replaced.
 *
 * Concurrent first launches (the ranks of a job on a node): the first to miss holds an
 * abstract socket named after the user and the key, as the join rendezvous does
 * (launch_join.c), while it plans; the others connect to it and wait until it closes
 * (their pending connections are reset then, whether it stored a plan or died), then
 * look again. So a node's ranks start Node once. A name held by another user, or a wait
 * past PLANCACHE_WAIT_MS, only means planning alone.
 *
 * Off with CTR_PLAN_CACHE=0 or `--no-plan-cache` among ctr's arguments; --debug (or
 * CTR_DEBUG) says hit or miss, and why. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"
#include "plan_words.h"

#define PLANCACHE_MAGIC "ctr-plan-cache"
#define PLANCACHE_VERSION "1"
#define PLANCACHE_INPUTS_VERSION "1" /* src/launch/inputs.ts INPUTS_VERSION */
#define PLANCACHE_MAX 64             /* entries kept; the oldest go first */
#define PLANCACHE_ENTRY_MAX (4u << 20)
#define PLANCACHE_WAIT_MS 30000      /* waiting for another launch's plan */
/* A file changed this close to planning may change again within the same timestamp
 * tick (the kernel's coarse clock) without its mtime/ctime showing it: keep no plan. */
#define PLANCACHE_RACY_NS 20000000LL

static char g_note[2048];

/* What --debug will say about this launch (set as it goes; said once the plan is parsed
 * and --debug is known). AND appends to what is there. */
static void note_v(bool and, const char *fmt, va_list ap)
{
   size_t at = and ? strlen(g_note) : 0;
   vsnprintf(g_note + at, sizeof(g_note) - at, fmt, ap);
}

__attribute__((format(printf, 1, 2))) static void NOTE(const char *fmt, ...)
{
   va_list ap;
   va_start(ap, fmt);
   note_v(false, fmt, ap);
   va_end(ap);
}

__attribute__((format(printf, 1, 2))) static void NOTE_AND(const char *fmt, ...)
{
   va_list ap;
   va_start(ap, fmt);
   note_v(true, fmt, ap);
   va_end(ap);
}

static char **g_hit; /* a kept plan's words, for --debug */
static size_t g_n_hit;

void plancache_report(void)
{
   if (g_note[0])
      debug("plan cache: %s", g_note);
   if (!g_debug || !g_hit)
      return;
   /* As the planner shows it (JSON strings), so a kept plan reads like a fresh one. */
   size_t len = 0;
   for (size_t i = 0; i < g_n_hit && strcmp(g_hit[i], "--"); i++)
      len += 3 + 6 * strlen(g_hit[i]);
   char *out = xcalloc(1, len + 3), *o = out;
   *o++ = '[';
   for (size_t i = 0; i < g_n_hit && strcmp(g_hit[i], "--"); i++) {
      if (i)
         *o++ = ',';
      *o++ = '"';
      for (const unsigned char *c = (const unsigned char *)g_hit[i]; *c; c++) {
         if (*c == '"' || *c == '\\')
            o += sprintf(o, "\\%c", *c);
         else if (*c < 0x20)
            o += sprintf(o, "\\u%04x", *c);
         else
            *o++ = (char)*c;
      }
      *o++ = '"';
   }
   *o++ = ']';
   *o = '\0';
   debug("launch plan (kept): %s", out);
   free(out);
}

/* Words: a growable list of strings. */
struct words {
   char **v;
   size_t n;
};

static void add(struct words *w, const char *s)
{
   w->v = realloc(w->v, (w->n + 2) * sizeof(char *));
   if (!w->v)
      DIE_PLAIN("out of memory");
   w->v[w->n++] = xasprintf("%s", s);
   w->v[w->n] = NULL;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
   const unsigned char *s = p;
   for (size_t i = 0; i < n; i++)
      h = (h ^ s[i]) * 0x100000001b3ULL;
   return h;
}
#define FNV0 0xcbf29ce484222325ULL

static long long ns_of(struct timespec t)
{
   return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void add_identity(struct words *w, const char *what, const char *path)
{
   struct stat st;
   if (stat(path, &st) < 0) {
      add(w, xasprintf("%s -", what));
      return;
   }
   char *s = xasprintf("%s %llu %llu %lld %lld", what, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                       (long long)st.st_size, ns_of(st.st_mtim));
   add(w, s);
   free(s);
}

static bool off_by_request(int argc, char **argv)
{
   const char *v = getenv("CTR_PLAN_CACHE");
   if (v && (!strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off"))) {
      NOTE("off (CTR_PLAN_CACHE=%s)", v);
      return true;
   }
   /* ctr's own flags come before the image; the command's after it. Not knowing where
    * the image is, any --no-plan-cache before a "--" counts: at worst a command's own
    * argument of that name plans anew. */
   for (int i = 5; i < argc && strcmp(argv[i], "--"); i++)
      if (!strcmp(argv[i], "--no-plan-cache")) {
         NOTE("off (--no-plan-cache)");
         return true;
      }
   return false;
}

/* The directory, made private if missing; -1 (and why, in the note) when unusable. */
static int open_dir(char *path, size_t size)
{
   const char *x = getenv("XDG_RUNTIME_DIR"), *base = NULL, *sub = "ctr/plans";
   struct stat st;
   if (x && x[0] == '/' && lstat(x, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid() && !(st.st_mode & 077))
      base = x;
   else if ((base = getenv("CTR_CACHEDIR")) && base[0] == '/')
      sub = "plans";
   else if ((base = getenv("XDG_CACHE_HOME")) && base[0] == '/')
      sub = "ctr/plans";
   else if ((base = getenv("HOME")) && base[0] == '/')
      sub = ".cache/ctr/plans";
   else {
      NOTE("off (no XDG_RUNTIME_DIR, cache directory or HOME)");
      return -1;
   }
   if (snprintf(path, size, "%s/%s", base, sub) >= (int)size) {
      NOTE("off (directory name too long)");
      return -1;
   }
   /* mkdir -p, each new component private (only when it is not there yet: the common
    * case costs one open) */
   int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
   bool make = fd < 0 && errno == ENOENT;
   for (char *s = path + strlen(base) + 1; make; s++) {
      if (*s == '/' || !*s) {
         char c = *s;
         *s = '\0';
         if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            NOTE("off (cannot make %s: %s)", path, strerror(errno));
            return -1;
         }
         *s = c;
         if (!c)
            break;
      }
   }
   if (fd < 0)
      fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
   if (fd < 0 || fstat(fd, &st) < 0) {
      NOTE("off (cannot open %s: %s)", path, strerror(errno));
      return -1;
   }
   if (st.st_uid != getuid() || (st.st_mode & 077)) {
      NOTE("off (%s is not private: owner %u, mode %04o)", path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
      close(fd);
      return -1;
   }
   return fd;
}

/* The key: everything the launcher knows before planning. */
static void make_key(struct plancache *pc, int argc, char **argv)
{
   struct words k = { 0 };
   add(&k, "key " PLANCACHE_VERSION);
   struct utsname u;
   add(&k, uname(&u) == 0 ? u.nodename : "?");
   char boot[64] = "?";
   read_small("/proc/sys/kernel/random/boot_id", boot, sizeof(boot));
   add(&k, boot);
   char *ids = xasprintf("%u %u", (unsigned)getuid(), (unsigned)getgid());
   add(&k, ids);
   free(ids);
   char *cwd = getcwd(NULL, 0);
   add(&k, cwd ? cwd : "");
   free(cwd);
   const char *home = getenv("HOME");
   char *h = xasprintf("%c%s", home ? '=' : '-', home ? home : "");
   add(&k, h);
   free(h);
   add_identity(&k, "launcher", "/proc/self/exe");
   add_identity(&k, "node", argv[2]);
   add_identity(&k, "snapshot", argv[3]);
   for (int i = 2; i < argc; i++)
      add(&k, argv[i]);
   uint64_t hash = FNV0;
   for (size_t i = 0; i < k.n; i++)
      hash = fnv(hash, k.v[i], strlen(k.v[i]) + 1);
   pc->key = k.v;
   pc->n_key = k.n;
   snprintf(pc->name, sizeof(pc->name), "p-%016llx", (unsigned long long)hash);
}

/* Is input record V (kind and arguments) still true? Says which one changed, if not. */
static int input_arity(const char *kind)
{
   if (strlen(kind) != 1)
      return -1;
   switch (kind[0]) {
   case 'F': case 'L': return 6;
   case 'D': return 5;
   case 'U': case 'X': return 1;
   case 'A': case 'R': case 'K': case 'E': return 2;
   }
   return -1;
}

static bool num_is(const char *s, unsigned long long x)
{
   char buf[32];
   snprintf(buf, sizeof(buf), "%llu", x);
   return !strcmp(s, buf);
}

/* The errors an A record names (src/launch/inputs.ts RECORDED_ERRORS). */
static bool errno_is(const char *name, int err)
{
   static const struct { const char *name; int err; } t[] = {
      { "ENOENT", ENOENT }, { "ENOTDIR", ENOTDIR }, { "EACCES", EACCES }, { "ELOOP", ELOOP },
   };
   for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
      if (!strcmp(name, t[i].name))
         return err == t[i].err;
   return false;
}

static bool input_holds(char **v)
{
   struct stat st;
   char buf[PATH_MAX + 1];
   const char *what = NULL;
   switch (v[0][0]) {
   case 'F':
   case 'L':
      if ((v[0][0] == 'F' ? stat(v[1], &st) : lstat(v[1], &st)) < 0 || (v[0][0] == 'F' && S_ISDIR(st.st_mode)) ||
          !num_is(v[2], st.st_dev) || !num_is(v[3], st.st_ino) || !num_is(v[4], (unsigned long long)st.st_size) ||
          !num_is(v[5], (unsigned long long)ns_of(st.st_mtim)) || !num_is(v[6], (unsigned long long)ns_of(st.st_ctim)))
         what = "changed";
      break;
   case 'D':
      if (stat(v[1], &st) < 0 || !S_ISDIR(st.st_mode) || !num_is(v[2], st.st_dev) || !num_is(v[3], st.st_ino) ||
          !num_is(v[4], st.st_mode & 07777) || !num_is(v[5], st.st_uid))
         what = "changed";
      break;
   case 'A':
      if (stat(v[1], &st) == 0 || !errno_is(v[2], errno))
         what = "appeared (or fails otherwise)";
      break;
   case 'R':
      if (!realpath(v[1], buf) || strcmp(buf, v[2]))
         what = "resolves elsewhere";
      break;
   case 'K': {
      ssize_t n = readlink(v[1], buf, sizeof(buf) - 1);
      if (n < 0 || (buf[n] = '\0', strcmp(buf, v[2])))
         what = "points elsewhere";
      break;
   }
   case 'E':
      if (!getenv(v[1]) || strcmp(getenv(v[1]), v[2])) {
         NOTE("miss ($%s changed)", v[1]);
         return false;
      }
      break;
   case 'U':
      if (getenv(v[1])) {
         NOTE("miss ($%s is set)", v[1]);
         return false;
      }
      break;
   default:
      NOTE("miss (an entry recorded an unusable input)");
      return false;
   }
   if (what) {
      NOTE("miss (%s %s)", v[1], what);
      return false;
   }
   return true;
}

/* Split BUF[0..LEN) (NUL-ended words) into a NULL-terminated list; NULL if malformed. */
static char **split(char *buf, size_t len, size_t *n)
{
   if (len == 0 || buf[len - 1] != '\0')
      return NULL;
   size_t count = 0;
   for (size_t i = 0; i < len; i++)
      count += buf[i] == '\0';
   char **v = xcalloc(count + 1, sizeof(char *));
   size_t k = 0;
   for (char *s = buf; s < buf + len; s += strlen(s) + 1)
      v[k++] = s;
   *n = k;
   return v;
}

/* "NAME COUNT" at V[*i], then COUNT words: their start, or NULL. */
static char **section(char **v, size_t n, size_t *i, const char *name, size_t *count)
{
   unsigned long long c;
   if (*i + 2 > n || strcmp(v[*i], name) || !plan_number(v[*i + 1], 10, n, &c) || *i + 2 + c > n)
      return NULL;
   char **start = v + *i + 2;
   *i += 2 + (size_t)c;
   *count = (size_t)c;
   return start;
}

/* Walk input records V[0..N): each a known kind with its arguments. */
static bool inputs_wellformed(char **v, size_t n)
{
   for (size_t i = 0; i < n;) {
      int a = input_arity(v[i]);
      if (a < 0 || i + 1 + (size_t)a > n)
         return false;
      i += 1 + (size_t)a;
   }
   return true;
}

static size_t records(char **v, size_t n)
{
   size_t r = 0;
   for (size_t i = 0; i < n; i += 1 + (size_t)input_arity(v[i]))
      r++;
   return r;
}

static char **lookup(struct plancache *pc, int *n_out)
{
   int fd = openat(pc->dirfd, pc->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
   if (fd < 0) {
      if (errno == ENOENT)
         NOTE("miss (no entry %s)", pc->name);
      else
         NOTE("refused %s/%s (cannot open it: %s); planning anew", pc->dir, pc->name, strerror(errno));
      return NULL;
   }
   struct stat st;
   if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 07077) ||
       st.st_size > (off_t)PLANCACHE_ENTRY_MAX) {
      NOTE("refused %s/%s (not a private regular file of ours: owner %u, mode %04o); planning anew", pc->dir, pc->name,
           (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
      close(fd);
      return NULL;
   }
   size_t len;
   char *buf = read_capped(fd, PLANCACHE_ENTRY_MAX, (size_t)st.st_size + 1, "a cached plan", &len);
   close(fd);
   size_t n, i = 2, nk, ni, np, ne;
   char **v = buf ? split(buf, len, &n) : NULL;
   if (!v || n < 2) {
      NOTE("refused %s/%s (malformed or not whole); planning anew", pc->dir, pc->name);
      return NULL;
   }
   if (strcmp(v[0], PLANCACHE_MAGIC) || strcmp(v[1], PLANCACHE_VERSION)) {
      NOTE("refused %s/%s (not a plan cache entry of version %s); planning anew", pc->dir, pc->name, PLANCACHE_VERSION);
      return NULL;
   }
   /* The checksum: the last word, FNV-1a of every byte before it ("end 0" included). */
   char sum[20];
   size_t body = (size_t)(v[n - 1] - buf);
   snprintf(sum, sizeof(sum), "%016llx", (unsigned long long)fnv(FNV0, buf, body));
   char **key = section(v, n, &i, "key", &nk);
   char **in = key ? section(v, n, &i, "inputs", &ni) : NULL;
   char **plan = in ? section(v, n, &i, "plan", &np) : NULL;
   char **end = plan ? section(v, n, &i, "end", &ne) : NULL;
   if (!end || ne != 0 || i != n - 1 || strcmp(v[n - 1], sum) || !inputs_wellformed(in, ni)) {
      NOTE("refused %s/%s (malformed or not whole); planning anew", pc->dir, pc->name);
      return NULL;
   }
   if (nk != pc->n_key) {
      NOTE("miss (another key under the same name)");
      return NULL;
   }
   for (size_t k = 0; k < nk; k++)
      if (strcmp(key[k], pc->key[k])) {
         NOTE("miss (another key under the same name)");
         return NULL;
      }
   for (size_t k = 0; k < ni; k += 1 + (size_t)input_arity(in[k]))
      if (!input_holds(in + k))
         return NULL;
   char **words = xcalloc(np + 1, sizeof(char *));
   memcpy(words, plan, np * sizeof(char *));
   *n_out = (int)np;
   NOTE("hit (%s/%s, %zu inputs unchanged): Node not started", pc->dir, pc->name, records(in, ni));
   g_hit = words;
   g_n_hit = np;
   return words;
}

/* The rendezvous of concurrent first launches: true when this launch is to plan. */
static bool take_turn(struct plancache *pc)
{
   struct sockaddr_un a;
   memset(&a, 0, sizeof(a));
   a.sun_family = AF_UNIX;
   int len = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "ctr-plan.%u.%s", (unsigned)getuid(), pc->name + 2);
   socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
   struct timespec t;
   clock_gettime(CLOCK_MONOTONIC, &t);
   long deadline = t.tv_sec * 1000L + t.tv_nsec / 1000000L + PLANCACHE_WAIT_MS;
   for (int attempt = 0; attempt < 100; attempt++) {
      int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (s < 0)
         return true;
      if (bind(s, (struct sockaddr *)&a, alen) == 0 && listen(s, 4096) == 0) {
         pc->lock = s;
         return true;
      }
      if (connect(s, (struct sockaddr *)&a, alen) < 0) {
         close(s); /* bound but not listening yet, or just gone: again */
         usleep(1000);
         continue;
      }
      struct ucred cr;
      socklen_t crlen = sizeof(cr);
      if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 || cr.uid != getuid()) {
         close(s);
         debug("plan cache: the rendezvous %s is another user's; planning alone", a.sun_path + 1);
         return true;
      }
      debug("plan cache: pid %d is planning the same launch; waiting for its plan", (int)cr.pid);
      /* Never accepted: reset (POLLHUP/POLLERR) when the planner closes its socket. */
      struct pollfd pf = { .fd = s, .events = POLLIN };
      for (;;) {
         clock_gettime(CLOCK_MONOTONIC, &t);
         long left = deadline - (t.tv_sec * 1000L + t.tv_nsec / 1000000L);
         if (left <= 0 || poll(&pf, 1, (int)left) != -1 || errno != EINTR)
            break;
      }
      close(s);
      pc->waited = true;
      return false;
   }
   return true;
}

/* Keep at most PLANCACHE_MAX entries (the oldest go), and no stale temporary file. */
struct entry {
   char name[32];
   long long t;
};

static int newest_first(const void *a, const void *b)
{
   long long x = ((const struct entry *)a)->t, y = ((const struct entry *)b)->t;
   return x < y ? 1 : x > y ? -1 : 0;
}

static void prune(struct plancache *pc)
{
   int fd = dup(pc->dirfd);
   DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
   if (!d)
      return;
   struct entry *e = NULL;
   size_t n = 0;
   long long now = (long long)time(NULL);
   struct dirent *de;
   while ((de = readdir(d)) && n < 4096) {
      struct stat st;
      size_t len = strlen(de->d_name);
      bool tmp = !strncmp(de->d_name, "t-", 2);
      if ((strncmp(de->d_name, "p-", 2) && !tmp) || len >= sizeof(e->name) ||
          fstatat(pc->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
         continue;
      if (tmp) {
         if (now - st.st_mtim.tv_sec > 60)
            unlinkat(pc->dirfd, de->d_name, 0);
         continue;
      }
      e = realloc(e, (n + 1) * sizeof(*e));
      if (!e)
         DIE_PLAIN("out of memory");
      memcpy(e[n].name, de->d_name, len + 1);
      e[n++].t = ns_of(st.st_mtim);
   }
   closedir(d);
   qsort(e, n, sizeof(*e), newest_first);
   for (size_t i = PLANCACHE_MAX; i < n; i++)
      unlinkat(pc->dirfd, e[i].name, 0);
   free(e);
}

/* Nothing of the cache stays open into the container (the FUSE server and the holder
 * are forked, not exec'd: O_CLOEXEC does not close these there). */
static void plancache_close(struct plancache *pc)
{
   if (pc->lock >= 0)
      close(pc->lock);
   if (pc->dirfd >= 0)
      close(pc->dirfd);
   pc->lock = pc->dirfd = -1;
}

char **plancache_begin(struct plancache *pc, int argc, char **argv, int *n)
{
   memset(pc, 0, sizeof(*pc));
   pc->dirfd = pc->lock = pc->inputs[0] = pc->inputs[1] = -1;
   g_note[0] = '\0';
   if (off_by_request(argc, argv) || (pc->dirfd = open_dir(pc->dir, sizeof(pc->dir))) < 0)
      return NULL;
   make_key(pc, argc, argv);
   char **v = lookup(pc, n);
   if (v) {
      plancache_close(pc);
      return v;
   }
   char why[sizeof(g_note)];
   snprintf(why, sizeof(why), "%s", g_note);
   if (!take_turn(pc) || pc->lock >= 0) {
      /* Waited for another launch's plan, or took the turn just after one stored. */
      if ((v = lookup(pc, n))) {
         if (pc->waited)
            NOTE("hit (%s/%s, planned by a concurrent launch): Node not started", pc->dir, pc->name);
         plancache_close(pc);
         return v;
      }
      NOTE("%s", why);
   }
   if (pipe2(pc->inputs, O_CLOEXEC) < 0)
      pc->inputs[0] = pc->inputs[1] = -1;
   clock_gettime(CLOCK_REALTIME, &pc->t0);
   return NULL;
}

void plancache_child(const struct plancache *pc)
{
   if (pc->inputs[1] < 0)
      return;
   char fd[16];
   snprintf(fd, sizeof(fd), "%d", pc->inputs[1]);
   if (setenv("CTR_PLAN_INPUTS_FD", fd, 1) < 0 || fcntl(pc->inputs[1], F_SETFD, 0) < 0)
      _exit(EXIT_LAUNCH_FAILED);
}

void plancache_forked(struct plancache *pc)
{
   if (pc->inputs[1] >= 0)
      close(pc->inputs[1]);
   pc->inputs[1] = -1;
}

static void append(char **buf, size_t *len, size_t *cap, const char *s)
{
   size_t l = strlen(s) + 1;
   if (*len + l > *cap) {
      *cap = (*len + l) * 2;
      *buf = realloc(*buf, *cap);
      if (!*buf)
         DIE_PLAIN("out of memory");
   }
   memcpy(*buf + *len, s, l);
   *len += l;
}

static void append_section(char **buf, size_t *len, size_t *cap, const char *name, char **v, size_t n)
{
   char c[24];
   snprintf(c, sizeof(c), "%zu", n);
   append(buf, len, cap, name);
   append(buf, len, cap, c);
   for (size_t i = 0; i < n; i++)
      append(buf, len, cap, v[i]);
}

/* Why the inputs V[0..N) can't be kept, or NULL. */
static const char *unkeepable(const struct plancache *pc, char **v, size_t n)
{
   static char why[PATH_MAX + 64];
   if (!inputs_wellformed(v, n))
      return "the planner's inputs are malformed";
   long long racy = ns_of(pc->t0) - PLANCACHE_RACY_NS;
   for (size_t i = 0; i < n; i += 1 + (size_t)input_arity(v[i])) {
      if (v[i][0] == 'X') {
         snprintf(why, sizeof(why), "planning read what can't be recorded (%s)", v[i + 1]);
         return why;
      }
      if ((v[i][0] == 'F' || v[i][0] == 'L') && (atoll(v[i + 5]) >= racy || atoll(v[i + 6]) >= racy)) {
         snprintf(why, sizeof(why), "%s changed just before planning", v[i + 1]);
         return why;
      }
   }
   return NULL;
}

void plancache_store(struct plancache *pc, char *plan, size_t plan_len)
{
   if (pc->inputs[0] < 0) {
      plancache_close(pc);
      return;
   }
   size_t len, n, np;
   char *buf = read_capped(pc->inputs[0], PLANCACHE_ENTRY_MAX, 4096, "the planner's inputs", &len);
   close(pc->inputs[0]);
   pc->inputs[0] = -1;
   char **v = buf ? split(buf, len, &n) : NULL;
   char **p = split(plan, plan_len, &np);
   const char *why = !v || n < 1 || strcmp(v[0], PLANCACHE_INPUTS_VERSION) ? "the planner sent no inputs of version "
                     PLANCACHE_INPUTS_VERSION : unkeepable(pc, v + 1, n - 1);
   if (why) {
      NOTE_AND("; not stored: %s", why);
   } else {
      size_t cap = 4096, blen = 0;
      char *e = xcalloc(1, cap);
      append(&e, &blen, &cap, PLANCACHE_MAGIC);
      append(&e, &blen, &cap, PLANCACHE_VERSION);
      append_section(&e, &blen, &cap, "key", pc->key, pc->n_key);
      append_section(&e, &blen, &cap, "inputs", v + 1, n - 1);
      append_section(&e, &blen, &cap, "plan", p, np);
      append_section(&e, &blen, &cap, "end", NULL, 0);
      char sum[20];
      snprintf(sum, sizeof(sum), "%016llx", (unsigned long long)fnv(FNV0, e, blen));
      append(&e, &blen, &cap, sum);
      char tmp[64];
      snprintf(tmp, sizeof(tmp), "t-%d-%s", (int)getpid(), pc->name + 2);
      int fd = blen > PLANCACHE_ENTRY_MAX ? -1
               : openat(pc->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      bool ok = fd >= 0 && write_all(fd, e, blen);
      if (fd >= 0 && close(fd) < 0)
         ok = false;
      if (ok && renameat(pc->dirfd, tmp, pc->dirfd, pc->name) == 0) {
         NOTE_AND("; planned and stored (%zu inputs)",
                  records(v + 1, n - 1));
         prune(pc);
      } else {
         NOTE_AND("; not stored: %s", strerror(errno));
         if (fd >= 0)
            unlinkat(pc->dirfd, tmp, 0);
      }
      free(e);
   }
   /* Those waiting for this plan look again now. */
   plancache_close(pc);
}
