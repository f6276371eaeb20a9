/* Where plans come from, and what their words mean to the launcher. The vocabulary,
 * with each word's arguments and meaning, is the table in plan_words.def; this file
 * turns a plan into struct plan. plan_scan (plan_words.c) has checked the version and
 * every word's arity before the switch below sees it, so the switch only checks values.
 *
 * Three sources, one format:
 *   ctr-launch --plan FILE ARG...   a plan file ("#!<launcher> --plan\n" then the words,
 *                                   each ending in NUL): executing it runs this; ARG...
 *                                   are appended to the plan's command
 *   ctr-launch --ask NODE BLOB ROOT CTR-ARGS...
 *                                   `ctr exec|run|shell` (bin/ctr): the launcher asks the
 *                                   planner (Node, started from ctr's V8 start-up snapshot
 *                                   BLOB) for the plan, which Node writes to the
 *                                   descriptor named by CTR_PLAN_FD, words and command as
 *                                   in a plan file, and exits. So no Node process waits
 *                                   beside the container, the ranks' descriptors
 *                                   (PMI_FD...) and parent reach the launcher untouched,
 *                                   and Node's own exit is not on the command's path.
 *   ctr-launch WORD... [-- CMD...]  the words as arguments (plain Node's runLauncher)
 *
 * Any failure is one line, "ctr: error: launch plan: ...", and exit 255. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"
#include "plan_words.h"

/* Read FD to its end, refusing more than PLAN_MAX_BYTES rather than allocating it. */
static char *read_plan_fd(int fd, const char *what, size_t *len)
{
   char *buf = read_capped(fd, PLAN_MAX_BYTES, 1 << 16, what, len);
   if (!buf)
      DIE_PLAIN("launch plan: %s: over the limit of %u MiB", what, PLAN_MAX_BYTES >> 20);
   return buf;
}

char **plan_file_words(const char *path, int *n, const char **launcher)
{
   int fd = open(path, O_RDONLY | O_CLOEXEC);
   struct stat st;
   if (fd < 0 || fstat(fd, &st) < 0)
      DIE("launch plan: cannot read plan file %s", path);
   if (st.st_size > (off_t)PLAN_MAX_BYTES)
      DIE_PLAIN("launch plan: %s: %lld bytes, over the limit of %u MiB", path, (long long)st.st_size,
                PLAN_MAX_BYTES >> 20);
   size_t len;
   char *buf = read_plan_fd(fd, path, &len);
   close(fd);
   struct plan_words w;
   char err[PLAN_ERR_MAX];
   if (plan_split(buf, len, &w, err) < 0)
      DIE_PLAIN("launch plan: %s: %s", path, err);
   if (launcher)
      *launcher = w.shebang;
   *n = w.n;
   return w.v;
}

static pid_t g_planner;

/* --ask: run the planner with the plan descriptor as CTR_PLAN_FD, read the plan, reap
 * the planner. A planner that fails has said why on stderr: its status is ours. One that
 * succeeds without a plan (nothing to launch) ends us with 0. */
static char **planner_words(int argc, char **argv, int *n)
{
   static struct plancache pc;
   char **cached = plancache_begin(&pc, argc, argv, n);
   if (cached)
      return cached;
   int fds[2];
   if (pipe2(fds, O_CLOEXEC) < 0)
      DIE("cannot make a pipe for the planner");
   pid_t pid = fork();
   if (pid < 0)
      DIE("cannot fork the planner");
   if (pid == 0) {
      /* Node parses every certificate NODE_EXTRA_CA_CERTS names at start-up (~70 ms for
       * Debian's bundle); planning opens no connection. The container still gets it. */
      unsetenv("NODE_EXTRA_CA_CERTS");
      char fd[16];
      snprintf(fd, sizeof(fd), "%d", fds[1]);
      if (setenv("CTR_PLAN_FD", fd, 1) < 0 || fcntl(fds[1], F_SETFD, 0) < 0)
         DIE("cannot pass the plan descriptor to node");
      plancache_child(&pc);
      /* node --snapshot-blob BLOB -- ROOT CTR-ARGS...: without "--", Node 20 acts on
       * some of its own options even after the script (`ctr exec --env-file F` would
       * have Node read F); Node drops the "--", so process.argv is [node, ROOT, ...]. */
      char **nargv = xcalloc((size_t)argc + 3, sizeof(char *));
      nargv[0] = argv[2];
      nargv[1] = "--snapshot-blob";
      nargv[2] = argv[3];
      nargv[3] = "--";
      memcpy(nargv + 4, argv + 4, (size_t)(argc - 4) * sizeof(char *));
      execv(argv[2], nargv);
      DIE("cannot run node (%s)", argv[2]);
   }
   close(fds[1]);
   plancache_forked(&pc);
   size_t len;
   char *buf = read_plan_fd(fds[0], "the plan from the planner", &len);
   close(fds[0]);
   if (len > 0 && buf[len - 1] == '\0') {
      /* A whole plan: Node closes the descriptor once it is written, so go on while it
       * exits, and reap it once the container is built (planner_reap). What planning
       * read follows on its own descriptor; the plan is kept with it (split below cuts
       * BUF, so it is stored first). */
      g_planner = pid;
      plancache_store(&pc, buf, len);
   } else {
      /* No plan, or not all of one: the planner failed (and said why), or had nothing
       * to launch. */
      int status;
      while (waitpid(pid, &status, 0) < 0)
         if (errno != EINTR)
            DIE("cannot wait for the planner");
      if (WIFSIGNALED(status))
         exit(128 + WTERMSIG(status));
      if (WEXITSTATUS(status) != 0)
         exit(WEXITSTATUS(status));
      if (len == 0)
         exit(0);
   }
   struct plan_words w;
   char err[PLAN_ERR_MAX];
   if (plan_split(buf, len, &w, err) < 0)
      DIE_PLAIN("launch plan: from the planner: %s", err);
   *n = w.n;
   return w.v;
}

/* Reap the planner that --ask left exiting (main, before the command starts). */
void planner_reap(void)
{
   if (g_planner <= 0)
      return;
   while (waitpid(g_planner, NULL, 0) < 0 && errno == EINTR)
      ;
   g_planner = 0;
}

static void *grow(void *v, size_t n, size_t size)
{
   v = realloc(v, (n + 1) * size);
   if (!v)
      DIE_PLAIN("out of memory");
   return v;
}

static void add_env(struct plan *p, char op, const char *name, const char *value)
{
   p->env = grow(p->env, p->n_env, sizeof(*p->env));
   p->env[p->n_env++] = (struct env_op){ op, name, value };
}

static struct bind *add_bind(struct plan *p, enum bind_kind kind, const char *dst)
{
   p->binds = grow(p->binds, p->n_binds, sizeof(*p->binds));
   struct bind *b = &p->binds[p->n_binds++];
   memset(b, 0, sizeof(*b));
   b->kind = kind;
   b->dst = dst;
   return b;
}

/* A path or name: an empty one would mean the working directory, or nothing. */
static const char *nonempty(enum plan_word id, const char *s)
{
   if (!*s)
      DIE_PLAIN("launch plan: %s %s: an argument is empty", plan_word_defs[id].name, plan_word_defs[id].args);
   return s;
}

static unsigned long long number(enum plan_word id, const char *s, int base, unsigned long long min,
                                 unsigned long long max)
{
   unsigned long long x;
   if (!plan_number(s, base, max, &x) || x < min)
      DIE_PLAIN("launch plan: %s: %.40s is not a%s number from %llu to %llu", plan_word_defs[id].name, s,
                base == 8 ? "n octal" : "", min, max);
   return x;
}

/* [A-Za-z_][A-Za-z0-9_]*: a name a shell can expand. */
static bool env_name_ok(const char *s)
{
   if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
      return false;
   for (s++; *s; s++)
      if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
         return false;
   return true;
}

/* --subids: each range inside the 32-bit id space, and not empty. */
static void subids(struct plan *p, char **a)
{
   unsigned long long v[4];
   for (int k = 0; k < 4; k++)
      v[k] = number(PW_SUBIDS, a[2 + k], 10, k & 1, UINT32_MAX);
   if (v[0] + v[1] - 1 > UINT32_MAX || v[2] + v[3] - 1 > UINT32_MAX)
      DIE_PLAIN("launch plan: --subids: a range goes past id %lu", (unsigned long)UINT32_MAX);
   p->newuidmap = nonempty(PW_SUBIDS, a[0]);
   p->newgidmap = nonempty(PW_SUBIDS, a[1]);
   p->subuid_start = v[0], p->subuid_count = v[1];
   p->subgid_start = v[2], p->subgid_count = v[3];
}

/* The cgroup words: DIR absolute and named by a --cgroup before any word about it, FILE
 * a name in the cgroup's directory (it is opened there, and nowhere else). */
static void cgroup_check_plan(const struct plan *p)
{
   for (size_t i = 0; i < p->n_cgroups; i++) {
      const struct cgroup_op *c = &p->cgroups[i];
      if (c->op == 'c') {
         size_t n = strlen(c->dir);
         if (c->dir[0] != '/' || strstr(c->dir, "/../") || (n >= 3 && !strcmp(c->dir + n - 3, "/..")))
            DIE_PLAIN("launch plan: --cgroup %.200s: not an absolute path without ..", c->dir);
         for (size_t k = 0; k < i; k++)
            if (p->cgroups[k].op == 'c' && !strcmp(p->cgroups[k].dir, c->dir))
               DIE_PLAIN("launch plan: --cgroup %.200s: given twice", c->dir);
         continue;
      }
      bool named = false;
      for (size_t k = 0; k < i && !named; k++)
         named = p->cgroups[k].op == 'c' && !strcmp(p->cgroups[k].dir, c->dir);
      const char *word = c->op == 's' ? "--cgroup-set" : "--cgroup-oom";
      if (!named)
         DIE_PLAIN("launch plan: %s %.200s: no --cgroup %.200s before it", word, c->dir, c->dir);
      if (strchr(c->file, '/') || !strcmp(c->file, ".") || !strcmp(c->file, ".."))
         DIE_PLAIN("launch plan: %s %.200s: %.100s is not a file name", word, c->dir, c->file);
   }
}

/* A host name the kernel takes (1..64 bytes) and resolvers accept: letters, digits,
 * '-' and '.', not starting with either. */
static const char *hostname_arg(const char *s)
{
   size_t n = strlen(s);
   bool ok = n >= 1 && n <= 64 && s[0] != '-' && s[0] != '.';
   for (size_t i = 0; ok && i < n; i++)
      ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
           s[i] == '-' || s[i] == '.';
   if (!ok)
      DIE_PLAIN("launch plan: --hostname: not a host name (1 to 64 letters, digits, '-' or '.')");
   return s;
}

/* A 64-bit mask in hex: 1 to 16 digits 0-9a-f, nothing else. */
static unsigned long long hex_mask(enum plan_word id, const char *s)
{
   size_t n = strspn(s, "0123456789abcdef");
   if (n == 0 || n > 16 || s[n])
      DIE_PLAIN("launch plan: %s: %.40s is not a hex mask (1 to 16 digits 0-9a-f)", plan_word_defs[id].name, s);
   return strtoull(s, NULL, 16);
}

static void one_word(struct plan *p, enum plan_word id, char **a)
{
   struct bind *b;
   switch (id) {
   case PW_PLAN_VERSION: /* checked by plan_scan */
      break;
   case PW_IMAGE:
   case PW_IMAGE_DIR:
      p->image = nonempty(id, a[0]);
      p->image_is_dir = id == PW_IMAGE_DIR;
      break;
   case PW_OFFSET:
      p->offset = number(id, a[0], 10, 0, ULLONG_MAX);
      break;
   case PW_WRITABLE:
      p->writable_image = true;
      break;
   case PW_SQUASHFUSE:
      p->squashfuse = nonempty(id, a[0]);
      break;
   case PW_MAP_ROOT:
      p->map_root = true;
      break;
   case PW_SUBIDS:
      subids(p, a);
      break;
   case PW_FAKE_IDS:
      p->fake_ids = true;
      break;
   case PW_HOST_ROOT:
      p->host_root = true;
      break;
   case PW_WRITABLE_TMPFS:
      p->writable_tmpfs = true;
      break;
   case PW_WRITABLE_TMPFS_SIZE:
      p->tmpfs_size = number(id, a[0], 10, 0, ULLONG_MAX);
      break;
   case PW_PID_NS:
      p->pid_ns = true;
      break;
   case PW_PID_NS_IN_STEP:
      p->pid_ns_in_step = true;
      break;
   case PW_CHECKPOINTABLE:
      p->checkpointable = true;
      break;
   case PW_CRIU:
      for (int k = 0; k < 3; k++)
         p->criu[k] = nonempty(id, a[k]);
      break;
   case PW_BIND:
      b = add_bind(p, BIND_DIR_OR_FILE, nonempty(id, a[1]));
      b->src = nonempty(id, a[0]);
      if (!plan_bind_mode(a[2], &b->ro, &b->optional))
         DIE_PLAIN("launch plan: --bind %.100s: bad mode \"%.10s\" (ro, rw, ro? or rw?)", a[0], a[2]);
      break;
   case PW_IMAGE_BIND: {
      size_t n = 0;
      for (size_t i = 0; i < p->n_binds; i++)
         n += p->binds[i].kind == BIND_IMAGE;
      if (n >= MAX_IMAGE_BINDS)
         DIE_PLAIN("launch plan: --image-bind: more than %d image binds", MAX_IMAGE_BINDS);
      if (a[2][0] != '/')
         DIE_PLAIN("launch plan: --image-bind %.100s: subpath \"%.100s\" is not absolute", a[0], a[2]);
      b = add_bind(p, BIND_IMAGE, nonempty(id, a[3]));
      b->src = nonempty(id, a[0]);
      b->offset = number(id, a[1], 10, 0, ULLONG_MAX);
      b->subpath = a[2];
      b->image_n = n;
      b->ro = true;
      break;
   }
   case PW_BIND_ENV: {
      bool ro, optional;
      if (!plan_bind_mode(a[1], &ro, &optional))
         DIE_PLAIN("launch plan: --bind-env %.100s: bad mode \"%.10s\" (ro, rw, ro? or rw?)", a[0], a[1]);
      const char *v = getenv(nonempty(id, a[0]));
      if (!v || v[0] != '/')
         break;
      char *path = xasprintf("%s", v);
      for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--) /* PMIx's "pmix.J.S/" */
         path[n - 1] = '\0';
      b = add_bind(p, BIND_DIR_OR_FILE, path);
      b->src = path;
      b->ro = ro;
      b->optional = optional;
      break;
   }
   case PW_TMPFS:
      b = add_bind(p, BIND_TMPFS, nonempty(id, a[0]));
      b->mode = (mode_t)number(id, a[1], 8, 0, 07777);
      break;
   case PW_FILE:
      b = add_bind(p, BIND_FILE_CONTENT, nonempty(id, a[0]));
      b->content = a[1];
      break;
   case PW_PASSWD_LINE:
   case PW_GROUP_LINE:
      b = add_bind(p, BIND_FILE_MERGE, id == PW_PASSWD_LINE ? "/etc/passwd" : "/etc/group");
      b->content = nonempty(id, a[0]);
      break;
   case PW_CHDIR:
      p->chdir = nonempty(id, a[0]);
      break;
   case PW_CLEARENV:
      p->clearenv = true;
      break;
   case PW_KEEPENV:
      add_env(p, 'k', nonempty(id, a[0]), NULL);
      break;
   case PW_UNSETENV:
      add_env(p, 'u', nonempty(id, a[0]), NULL);
      break;
   case PW_SETENV:
      add_env(p, 's', nonempty(id, a[0]), a[1]);
      break;
   case PW_ENV_OVERRIDE:
      add_env(p, 'o', nonempty(id, a[0]), a[1]);
      break;
   case PW_ENV_PREFIX:
      p->env_prefixes = grow(p->env_prefixes, p->n_env_prefixes, sizeof(char *));
      p->env_prefixes[p->n_env_prefixes++] = nonempty(id, a[0]);
      break;
   case PW_DROP_ENV_PREFIX:
      p->drop_prefixes = grow(p->drop_prefixes, p->n_drop_prefixes, sizeof(char *));
      p->drop_prefixes[p->n_drop_prefixes++] = nonempty(id, a[0]);
      break;
   case PW_NO_EVAL:
      p->no_eval = true;
      break;
   case PW_CHDIR_OPTIONAL:
      p->chdir_optional = true;
      break;
   case PW_UMASK:
      p->set_umask = true;
      p->umask = (mode_t)number(id, a[0], 8, 0, 0777);
      break;
   case PW_ACTION:
      if (!strcmp(a[0], "exec"))
         p->action = ACTION_EXEC;
      else if (!strcmp(a[0], "run"))
         p->action = ACTION_RUN;
      else if (!strcmp(a[0], "shell"))
         p->action = ACTION_SHELL;
      else
         DIE_PLAIN("launch plan: --action takes exec, run or shell, not %.40s", a[0]);
      break;
   case PW_JOIN:
      if (!strcmp(a[0], "auto"))
         p->join = JOIN_AUTO;
      else if (!strcmp(a[0], "on"))
         p->join = JOIN_ON;
      else if (!strcmp(a[0], "off"))
         p->join = JOIN_OFF;
      else
         DIE_PLAIN("launch plan: --join takes auto, on or off, not %.40s", a[0]);
      break;
   case PW_JOIN_TAG:
      p->join_tag = nonempty(id, a[0]);
      break;
   case PW_JOIN_COUNT:
      p->join_count = (int)number(id, a[0], 10, 1, INT_MAX);
      break;
   case PW_JOIN_KEEP:
      if (a[0][0] != '/')
         DIE_PLAIN("launch plan: --join-keep: %.100s is not an absolute path", a[0]);
      p->join_keep = a[0];
      break;
   case PW_JOIN_INSTANCE:
      p->join_instance = true;
      break;
   case PW_READY_FD:
      p->ready_fd = (int)number(id, a[0], 10, 3, INT_MAX);
      break;
   case PW_NEW_KEYRING:
      p->new_keyring = true;
      break;
   case PW_DEBUG:
      p->debug = g_debug = 1;
      break;
   case PW_ENV_PREPEND:
      /* the name reaches the env-script wrapper's eval: a variable name, nothing else */
      if (!env_name_ok(a[0]))
         DIE_PLAIN("launch plan: --env-prepend: %.100s is not a variable name", a[0]);
      add_env(p, 'p', a[0], a[1]);
      break;
   case PW_CGROUP:
   case PW_CGROUP_SET:
   case PW_CGROUP_OOM:
      p->cgroups = grow(p->cgroups, p->n_cgroups, sizeof(*p->cgroups));
      p->cgroups[p->n_cgroups++] = (struct cgroup_op){
         id == PW_CGROUP ? 'c' : id == PW_CGROUP_SET ? 's' : 'o', nonempty(id, a[0]),
         id == PW_CGROUP ? NULL : nonempty(id, a[1]), id == PW_CGROUP ? NULL : a[2] };
      break;
   case PW_NET_NS:
      p->net_ns = true;
      break;
   case PW_HOSTNAME:
      p->hostname = hostname_arg(a[0]);
      break;
   case PW_SLIRP4NETNS:
      p->slirp4netns = nonempty(id, a[0]);
      break;
   case PW_OVERLAY_LOWER:
      if (p->n_lowers >= MAX_LOWERS)
         DIE_PLAIN("launch plan: --overlay-lower: more than %d layers", MAX_LOWERS);
      p->lowers = grow(p->lowers, p->n_lowers, sizeof(*p->lowers));
      p->lowers[p->n_lowers].path = nonempty(id, a[0]);
      p->lowers[p->n_lowers++].offset = number(id, a[1], 10, 0, ULLONG_MAX);
      break;
   case PW_OVERLAY_DIR:
      p->overlay_dir = nonempty(id, a[0]);
      break;
   case PW_OVERLAY_IMAGE:
      p->overlay_image = nonempty(id, a[0]);
      p->fuse2fs = nonempty(id, a[1]);
      p->fuse_overlayfs = nonempty(id, a[2]);
      break;
   case PW_NO_MOUNTPOINTS:
      p->no_mountpoints = true;
      break;
   case PW_CAPS:
      p->set_caps = true;
      p->cap_drop = hex_mask(id, a[0]);
      p->cap_add = hex_mask(id, a[1]);
      if (p->cap_drop & p->cap_add)
         DIE_PLAIN("launch plan: --caps: a capability both dropped and added");
      break;
   case PW_RUNSCRIPT_TIMEOUT:
      p->runscript_timeout_ms = (unsigned)number(id, a[0], 10, 1, INT_MAX);
      break;
   case PW_WRITABLE_TMPFS_FUSE:
      p->tmpfs_fuse = true;
      p->fuse_overlayfs = nonempty(id, a[0]);
      break;
   case PW_NONE:
   case PW_COUNT:
      DIE_PLAIN("launch plan: internal error: word %d", (int)id);
   }
}

int plan_parse_words(struct plan *p, int n, char **v, const char *hint)
{
   char err[PLAN_ERR_MAX];
   int end, r = plan_scan(v, n, &end, err);
   if (r < 0)
      die_errno(0, r == PLAN_BAD_VERSION ? hint : NULL, "launch plan: %s", err);
   /* The plan's own words (before "--") name the container when ranks join. */
   p->words = v;
   p->n_words = end;
   for (int i = 0; i < end; ) {
      enum plan_word id = plan_word_find(v[i]);
      one_word(p, id, v + i + 1);
      i += 1 + plan_word_defs[id].arity;
   }
   if (!p->image && !p->host_root)
      DIE_PLAIN("launch plan: no image given");
   if (p->writable_image && !p->image_is_dir)
      DIE_PLAIN("launch plan: --writable needs a directory image");
   if (p->tmpfs_fuse && !p->writable_tmpfs)
      DIE_PLAIN("launch plan: --writable-tmpfs-fuse needs --writable-tmpfs");
   if (p->no_mountpoints && !p->writable_image)
      DIE_PLAIN("launch plan: --no-mountpoints needs --writable");
   cgroup_check_plan(p);
   criu_check_plan(p);
   if (p->slirp4netns && !p->net_ns)
      DIE_PLAIN("launch plan: --slirp4netns needs --net-ns");
   return end < n ? end + 1 : n;
}

void plan_init(struct plan *p)
{
   memset(p, 0, sizeof(*p));
   p->action = ACTION_EXEC;
   p->ready_fd = -1;
   if (getenv("CTR_DEBUG"))  /* plan files carry no --debug; this turns it on per launch */
      p->debug = g_debug = 1;
   p->squashfuse_exec = getenv("CTR_FUSE") && !strcmp(getenv("CTR_FUSE"), "exec");
}

void plan_parse(struct plan *p, int argc, char **argv)
{
   if (argc >= 2)
      plan_verb(argc, argv); /* --version, --check-plan, --rewrite-image: each exits */
   plan_init(p);
   int n;
   if (argc >= 3 && !strcmp(argv[1], "--plan")) {
      char **v = plan_file_words(argv[2], &n, NULL);
      char *hint = xasprintf("re-create the plan file %s with ctr plan", argv[2]);
      int rest = plan_parse_words(p, n, v, hint);
      free(hint);
      if (rest < n) {
         /* the plan names a command; arguments given at launch are appended to it */
         int k = (n - rest) + (argc - 3);
         p->argv = xcalloc((size_t)k + 1, sizeof(char *));
         memcpy(p->argv, v + rest, (size_t)(n - rest) * sizeof(char *));
         memcpy(p->argv + (n - rest), argv + 3, (size_t)(argc - 3) * sizeof(char *));
      } else
         p->argv = argv + 3;
   } else if (argc >= 5 && !strcmp(argv[1], "--ask")) {
      char **v = planner_words(argc, argv, &n);
      p->argv = v + plan_parse_words(p, n, v, "ctr and its launcher are from different builds: run npm run build");
      plancache_report();
   } else {
      int rest = plan_parse_words(p, argc - 1, argv + 1,
                                  "this launcher is from another build than the ctr that started it: run npm run build");
      p->argv = argv + 1 + rest;
   }
   if (p->action == ACTION_EXEC && !p->argv[0])
      DIE_PLAIN("no command given");
}
