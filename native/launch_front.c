/* The launcher as `ctr`: what bin/ctr does, without a shell.
 *
 * Started under the name ctr or ctr-hpc (native/build/ctr, or make install's
 * PREFIX/bin/ctr, both links to this launcher), it finds node on PATH and ctr's files
 * beside itself (ROOT/native/build/ctr-launch) and, for exec, run and shell from a
 * usable start-up snapshot, goes on as `ctr-launch --ask NODE BLOB ROOT ARGS...` in this
 * same process: a plan-cache hit then costs one exec, as a plan file does, instead of
 * dash reading bin/ctr and then exec'ing the launcher. Everything else (the other
 * commands, --help, CTR_NO_SNAPSHOT=1, a snapshot made by another node) is exec'd
 * exactly as bin/ctr execs it; bin/ctr stays the way in from a checkout that is not
 * built, and its behaviour is the definition this file follows. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"

bool front_named(const char *argv0)
{
   const char *base = strrchr(argv0, '/');
   base = base ? base + 1 : argv0;
   return !strcmp(base, "ctr") || !strcmp(base, "ctr-hpc");
}

/* The first X in PATH that is a regular file and executable, as bin/ctr's loop (and
 * `command -v`) finds it; an empty entry is the current directory. */
static char *find_in_path(const char *name)
{
   const char *path = getenv("PATH");
   if (!path)
      return NULL;
   for (const char *d = path;; ) {
      const char *end = strchrnul(d, ':');
      char *cand = end > d ? xasprintf("%.*s/%s", (int)(end - d), d, name) : xasprintf("./%s", name);
      struct stat st;
      if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
         return cand;
      free(cand);
      if (!*end)
         return NULL;
      d = end + 1;
   }
}

static bool newer(const struct stat *a, const struct stat *b)
{
   return a->st_mtim.tv_sec > b->st_mtim.tv_sec ||
          (a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec > b->st_mtim.tv_nsec);
}

/* The first line of FILE, "" if it can't be read (bin/ctr: IFS= read -r built <FILE). */
static char *first_line(const char *file)
{
   char buf[PATH_MAX + 2] = "";
   FILE *f = fopen(file, "re");
   if (f) {
      if (!fgets(buf, sizeof(buf), f) || !strchr(buf, '\n'))
         buf[0] = '\0';
      fclose(f);
   }
   buf[strcspn(buf, "\n")] = '\0';
   return xasprintf("%s", buf);
}

static _Noreturn void front_exec(char **argv)
{
   execv(argv[0], argv);
   DIE("cannot run %s", argv[0]);
}

char **front_main(int argc, char **argv, int *out_argc)
{
   /* ROOT: this launcher is ROOT/native/build/ctr-launch, whatever link started it. */
   char exe[PATH_MAX];
   ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
   if (n <= 0)
      DIE("cannot find ctr's files: /proc/self/exe");
   exe[n] = '\0';
   char *cut = strstr(exe, "/native/build/");
   if (!cut || strchr(cut + strlen("/native/build/"), '/'))
      DIE_PLAIN("cannot find ctr's files: %s is not ROOT/native/build/ctr-launch", exe);
   char *root = xasprintf("%.*s", (int)(cut - exe), exe);

   char *node = find_in_path("node");
   if (!node)
      DIE_PLAIN("node not found in PATH");
   char *main_js = xasprintf("%s/dist/src/cli/main.js", root);
   if (access(main_js, R_OK) < 0)
      DIE_HINT_PLAIN(xasprintf("run npm run build in %s", root), "ctr is not built: %s missing", main_js);

   const char *cmd = argc > 1 ? argv[1] : "";
   bool plan = !strcmp(cmd, "plan");
   if (plan || !strcmp(cmd, "exec") || !strcmp(cmd, "run") || !strcmp(cmd, "shell")) {
      char *blob = xasprintf("%s/dist/snapshot/ctr.blob", root);
      struct stat sn, sb;
      const char *no_snap = getenv("CTR_NO_SNAPSHOT");
      if ((!no_snap || !*no_snap) && access(blob, R_OK) == 0 && stat(blob, &sb) == 0 &&
          !(stat(node, &sn) == 0 && newer(&sn, &sb))) {
         char *built = first_line(xasprintf("%s/dist/snapshot/node", root));
         bool help = false;
         for (int i = 1; i < argc; i++)
            help |= !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help");
         char *real = realpath(node, NULL);
         if (!help && (!strcmp(built, node) || (real && !strcmp(built, real)))) {
            /* ctr-launch --ask NODE BLOB ROOT ARGS...: here, or by $CTR_LAUNCHER. */
            char **v = xcalloc((size_t)argc + 5, sizeof(char *));
            const char *other = getenv("CTR_LAUNCHER");
            v[0] = other && *other ? (char *)other : argv[0];
            v[1] = "--ask";
            v[2] = node;
            v[3] = blob;
            v[4] = root;
            memcpy(v + 5, argv + 1, (size_t)(argc - 1) * sizeof(char *));
            if (!plan && !(other && *other)) {
               *out_argc = argc + 4;
               return v;
            }
            if (!plan && access(other, X_OK) == 0)
               front_exec(v);
            /* A plan holds no environment: Node needs no CA bundle (~70 ms to parse). */
            unsetenv("NODE_EXTRA_CA_CERTS");
            char **w = xcalloc((size_t)argc + 5, sizeof(char *));
            w[0] = node;
            w[1] = "--snapshot-blob";
            w[2] = blob;
            w[3] = "--";
            w[4] = root;
            memcpy(w + 5, argv + 1, (size_t)(argc - 1) * sizeof(char *));
            front_exec(w);
         }
      }
   }
   char **w = xcalloc((size_t)argc + 3, sizeof(char *));
   w[0] = node;
   w[1] = "--";
   w[2] = main_js;
   memcpy(w + 3, argv + 1, (size_t)(argc - 1) * sizeof(char *));
   front_exec(w);
}
