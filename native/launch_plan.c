/* The plan vocabulary: a flat list of options, each with a fixed number of arguments.
 *
 *   --image PATH            SquashFS image (a bare SquashFS or a SIF holding one)
 *   --offset N              byte offset of the SquashFS inside PATH
 *   --image-dir PATH        a directory used as the image (mounted read-only)
 *   --writable              the directory image is mounted read-write, and missing
 *                           mount points are made in it (building: %post)
 *   --squashfuse PATH       the squashfuse_ll binary, for a launcher built without the
 *                           in-process FUSE server (or with CTR_FUSE=exec)
 *   --map-root              map the user to uid/gid 0 inside (--fakeroot)
 *   --writable-tmpfs        a tmpfs overlay over the image; changes vanish at exit
 *   --pid-ns                a PID namespace with an init, so nothing outlives the
 *                           command (not for ranks under Slurm/MPI: see launch_init.c)
 *   --bind SRC DST MODE     MODE is rw or ro; rw? / ro? skip a missing SRC silently
 *   --tmpfs DST MODE        an empty tmpfs at DST, root directory mode MODE (octal)
 *   --file DST CONTENT      a new read-only file at DST with CONTENT
 *   --passwd-line LINE      appended to a copy of the image's /etc/passwd, unless the
 *                           image already has an entry of that name
 *   --group-line LINE       the same for /etc/group
 *   --chdir DIR             working directory inside
 *   --clearenv              start from an empty environment (then --keepenv NAME)
 *   --keepenv NAME / --unsetenv NAME / --setenv NAME VALUE
 *   --env-override NAME VALUE   set after the image's /.singularity.d/env scripts
 *   --env-prefix PREFIX     host PREFIXNAME=v becomes an override NAME=v (at launch time,
 *                           so each rank of a job sees its own)
 *   --action exec|run|shell
 *   --join auto|on|off      share one container among the ranks of a job step on this
 *                           node (auto: when the environment names a step; see
 *                           launch_join.c), default off
 *   --join-tag TAG          name the step, for launchers ctr doesn't know
 *   --join-count N          ranks expected on this node (else from the environment)
 *   --debug                 (or CTR_DEBUG set in the environment)
 *   -- CMD [ARG...]
 *
 * A plan file is "#!<launcher> --plan\n" followed by these words, each ending in NUL;
 * executing it runs `<launcher> --plan FILE ARG...`, and ARG... become the command.
 *
 * `ctr exec|run|shell` (bin/ctr) runs `<launcher> --ask NODE BLOB ROOT CTR-ARGS...`: the
 * launcher asks the planner (Node, started from ctr's V8 start-up snapshot BLOB) for the
 * plan, which Node writes to the descriptor named by CTR_PLAN_FD, words and command as
 * in a plan file, and exits. So no Node process waits beside the container, the ranks'
 * descriptors (PMI_FD...) and parent reach the launcher untouched, and Node's own exit
 * is not on the command's path. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

struct words {
   char **v;
   int n;
};

static struct words split_words(char *buf, size_t len);

static struct words plan_file_words(const char *path)
{
   size_t len;
   char *buf = read_file(path, &len);
   if (!buf)
      DIE("cannot read plan file %s", path);
   char *p = buf, *end = buf + len;
   if (len >= 2 && p[0] == '#' && p[1] == '!') {
      p = memchr(p, '\n', len);
      if (!p)
         DIE_PLAIN("plan file %s: no plan after the #! line", path);
      p++;
   }
   if (p < end && end[-1] != '\0')
      DIE_PLAIN("plan file %s: truncated (last word not NUL-terminated)", path);
   return split_words(p, (size_t)(end - p));
}

/* NUL-terminated words in BUF[0..LEN). */
static struct words split_words(char *buf, size_t len)
{
   struct words w = {0};
   char *end = buf + len;
   for (char *q = buf; q < end; q += strlen(q) + 1)
      w.n++;
   w.v = xcalloc((size_t)w.n + 1, sizeof(char *));
   int i = 0;
   for (char *q = buf; q < end; q += strlen(q) + 1)
      w.v[i++] = q;
   return w;
}

static pid_t g_planner;

/* --ask: run the planner with the plan descriptor as CTR_PLAN_FD, read the plan, reap
 * the planner. A planner that fails has said why on stderr: its status is ours. One that
 * succeeds without a plan (nothing to launch) ends us with 0. */
static struct words planner_words(int argc, char **argv)
{
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
         _exit(EXIT_LAUNCH_FAILED);
      /* node --snapshot-blob BLOB ROOT CTR-ARGS... */
      char **nargv = xcalloc((size_t)argc + 2, sizeof(char *));
      nargv[0] = argv[2];
      nargv[1] = "--snapshot-blob";
      nargv[2] = argv[3];
      memcpy(nargv + 3, argv + 4, (size_t)(argc - 4) * sizeof(char *));
      execv(argv[2], nargv);
      fprintf(stderr, "ctr: error: cannot run node (%s): %s\n", argv[2], strerror(errno));
      _exit(EXIT_LAUNCH_FAILED);
   }
   close(fds[1]);
   size_t len;
   char *buf = read_fd(fds[0], "the plan from the planner", &len);
   close(fds[0]);
   if (len > 0 && buf[len - 1] == '\0') {
      /* A whole plan: Node closes the descriptor once it is written, so go on while it
       * exits, and reap it once the container is built (planner_reap). */
      g_planner = pid;
      return split_words(buf, len);
   }
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
   DIE_PLAIN("the planner's plan is truncated (last word not NUL-terminated)");
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

static const char *need(int argc, char **argv, int i, int count)
{
   if (i + count >= argc)
      DIE_PLAIN("launch plan: option %s needs %d argument%s", argv[i], count, count > 1 ? "s" : "");
   return argv[i + 1];
}

static void add_env(struct plan *p, char op, const char *name, const char *value)
{
   p->env = realloc(p->env, (p->n_env + 1) * sizeof(*p->env));
   if (!p->env)
      DIE_PLAIN("out of memory");
   p->env[p->n_env++] = (struct env_op){ op, name, value };
}

static struct bind *add_bind(struct plan *p)
{
   p->binds = realloc(p->binds, (p->n_binds + 1) * sizeof(*p->binds));
   if (!p->binds)
      DIE_PLAIN("out of memory");
   struct bind *b = &p->binds[p->n_binds++];
   memset(b, 0, sizeof(*b));
   return b;
}

/* Parse one list of words; returns the index just past "--", or argc if none. The plan's
 * own words (before "--") are remembered: they name the container when ranks join. */
static int parse_words(struct plan *p, int argc, char **argv)
{
   int i;
   p->words = argv;
   for (i = 0; i < argc; i++) {
      const char *o = argv[i];
      p->n_words = i + 1;
      if (!strcmp(o, "--")) {
         p->n_words = i;
         return i + 1;
      }
      else if (!strcmp(o, "--image"))
         p->image = need(argc, argv, i++, 1);
      else if (!strcmp(o, "--image-dir")) {
         p->image = need(argc, argv, i++, 1);
         p->image_is_dir = true;
      } else if (!strcmp(o, "--offset")) {
         char *end;
         errno = 0;
         p->offset = strtoull(need(argc, argv, i++, 1), &end, 10);
         if (errno || *end)
            DIE_PLAIN("launch plan: bad offset %s", argv[i]);
      } else if (!strcmp(o, "--squashfuse"))
         p->squashfuse = need(argc, argv, i++, 1);
      else if (!strcmp(o, "--map-root"))
         p->map_root = true;
      else if (!strcmp(o, "--writable"))
         p->writable_image = true;
      else if (!strcmp(o, "--pid-ns"))
         p->pid_ns = true;
      else if (!strcmp(o, "--writable-tmpfs"))
         p->writable_tmpfs = true;
      else if (!strcmp(o, "--bind")) {
         need(argc, argv, i, 3);
         struct bind *b = add_bind(p);
         const char *mode = argv[i + 3];
         b->kind = BIND_DIR_OR_FILE;
         b->src = argv[i + 1];
         b->dst = argv[i + 2];
         b->ro = !strncmp(mode, "ro", 2);
         b->optional = mode[2] == '?';
         if (strncmp(mode, "ro", 2) && strncmp(mode, "rw", 2))
            DIE_PLAIN("launch plan: bad bind mode %s", mode);
         i += 3;
      } else if (!strcmp(o, "--tmpfs")) {
         need(argc, argv, i, 2);
         struct bind *b = add_bind(p);
         char *end;
         b->kind = BIND_TMPFS;
         b->dst = argv[i + 1];
         b->mode = (mode_t)strtoul(argv[i + 2], &end, 8);
         if (*end || !*argv[i + 2])
            DIE_PLAIN("launch plan: bad tmpfs mode %s", argv[i + 2]);
         i += 2;
      } else if (!strcmp(o, "--file")) {
         need(argc, argv, i, 2);
         struct bind *b = add_bind(p);
         b->kind = BIND_FILE_CONTENT;
         b->dst = argv[i + 1];
         b->content = argv[i + 2];
         i += 2;
      } else if (!strcmp(o, "--passwd-line") || !strcmp(o, "--group-line")) {
         struct bind *b = add_bind(p);
         b->kind = BIND_FILE_MERGE;
         b->dst = o[2] == 'p' ? "/etc/passwd" : "/etc/group";
         b->content = need(argc, argv, i++, 1);
      }
      else if (!strcmp(o, "--chdir"))
         p->chdir = need(argc, argv, i++, 1);
      else if (!strcmp(o, "--clearenv"))
         p->clearenv = true;
      else if (!strcmp(o, "--keepenv"))
         add_env(p, 'k', need(argc, argv, i, 1), NULL), i++;
      else if (!strcmp(o, "--unsetenv"))
         add_env(p, 'u', need(argc, argv, i, 1), NULL), i++;
      else if (!strcmp(o, "--setenv")) {
         need(argc, argv, i, 2);
         add_env(p, 's', argv[i + 1], argv[i + 2]);
         i += 2;
      } else if (!strcmp(o, "--env-override")) {
         need(argc, argv, i, 2);
         add_env(p, 'o', argv[i + 1], argv[i + 2]);
         i += 2;
      } else if (!strcmp(o, "--env-prefix")) {
         p->env_prefixes = realloc(p->env_prefixes, (p->n_env_prefixes + 1) * sizeof(char *));
         if (!p->env_prefixes)
            DIE_PLAIN("out of memory");
         p->env_prefixes[p->n_env_prefixes++] = need(argc, argv, i++, 1);
      } else if (!strcmp(o, "--action")) {
         const char *a = need(argc, argv, i++, 1);
         if (!strcmp(a, "exec"))
            p->action = ACTION_EXEC;
         else if (!strcmp(a, "run"))
            p->action = ACTION_RUN;
         else if (!strcmp(a, "shell"))
            p->action = ACTION_SHELL;
         else
            DIE_PLAIN("launch plan: unknown action %s", a);
      } else if (!strcmp(o, "--join")) {
         const char *j = need(argc, argv, i++, 1);
         if (!strcmp(j, "auto"))
            p->join = JOIN_AUTO;
         else if (!strcmp(j, "on"))
            p->join = JOIN_ON;
         else if (!strcmp(j, "off"))
            p->join = JOIN_OFF;
         else
            DIE_PLAIN("launch plan: --join takes auto, on or off, not %s", j);
      } else if (!strcmp(o, "--join-tag"))
         p->join_tag = need(argc, argv, i++, 1);
      else if (!strcmp(o, "--join-count")) {
         char *end;
         p->join_count = (int)strtol(need(argc, argv, i++, 1), &end, 10);
         if (*end || p->join_count < 0)
            DIE_PLAIN("launch plan: bad --join-count %s", argv[i]);
      } else if (!strcmp(o, "--debug"))
         p->debug = g_debug = 1;
      else
         DIE_PLAIN("launch plan: unknown option %s", o);
   }
   return i;
}

void plan_parse(struct plan *p, int argc, char **argv)
{
   memset(p, 0, sizeof(*p));
   p->action = ACTION_EXEC;
   if (getenv("CTR_DEBUG"))  /* plan files carry no --debug; this turns it on per launch */
      p->debug = g_debug = 1;
   if (argc >= 3 && !strcmp(argv[1], "--plan")) {
      struct words w = plan_file_words(argv[2]);
      int rest = parse_words(p, w.n, w.v);
      if (rest < w.n) {
         /* the plan names a command; arguments given at launch are appended to it */
         int n = (w.n - rest) + (argc - 3);
         p->argv = xcalloc((size_t)n + 1, sizeof(char *));
         memcpy(p->argv, w.v + rest, (size_t)(w.n - rest) * sizeof(char *));
         memcpy(p->argv + (w.n - rest), argv + 3, (size_t)(argc - 3) * sizeof(char *));
      } else
         p->argv = argv + 3;
   } else if (argc >= 5 && !strcmp(argv[1], "--ask")) {
      struct words w = planner_words(argc, argv);
      int rest = parse_words(p, w.n, w.v);
      p->argv = w.v + rest;
   } else {
      int rest = parse_words(p, argc - 1, argv + 1);
      p->argv = argv + 1 + rest;
   }
   if (!p->image)
      DIE_PLAIN("launch plan: no image given");
   if (p->writable_image && !p->image_is_dir)
      DIE_PLAIN("launch plan: --writable needs a directory image");
   p->squashfuse_exec = getenv("CTR_FUSE") && !strcmp(getenv("CTR_FUSE"), "exec");
   if (p->action == ACTION_EXEC && !p->argv[0])
      DIE_PLAIN("no command given");
}
