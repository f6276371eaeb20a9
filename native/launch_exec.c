/* The environment and the exec, inside the container.
 *
 * The planner decides the policy (what passes from the host, what is set); here it is
 * carried out against the environment this process actually has, at launch time, so a
 * plan computed once still gives each rank of a job its own PMI/PMIx variables.
 *
 * Images from Apptainer/Singularity keep their environment in shell scripts, the files
 * /.singularity.d/env/NN-name.sh. Scripts made only of plain assignments are applied here,
 * with shell semantics and no shell (launch_envscript.c); any other is sourced by the
 * image's own /bin/sh. Either way the overrides (--env, APPTAINERENV_*) come after them,
 * the precedence Apptainer gives. Images without them are exec'd directly. */
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/keyctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch.h"

extern char **environ;

#define ENV_DIR "/.singularity.d/env"
#define RUNSCRIPT "/.singularity.d/runscript"

static char **overrides;  /* "NAME=VALUE", applied after the image's env scripts */
static size_t n_overrides;

static char **prepends;   /* "NAME=VALUE": VALUE put first on NAME, after the overrides */
static size_t n_prepends;

static void add_override(const char *name, const char *value)
{
   overrides = realloc(overrides, (n_overrides + 1) * sizeof(char *));
   if (!overrides)
      DIE_PLAIN("out of memory");
   overrides[n_overrides++] = xasprintf("%s=%s", name, value);
}

static void add_prepend(const char *name, const char *value)
{
   prepends = realloc(prepends, (n_prepends + 1) * sizeof(char *));
   if (!prepends)
      DIE_PLAIN("out of memory");
   prepends[n_prepends++] = xasprintf("%s=%s", name, value);
}

/* The direct path's prepends: VALUE, then the list NAME already holds (unless VALUE
 * already leads it). */
static void apply_prepends(void)
{
   for (size_t i = 0; i < n_prepends; i++) {
      char *name = strndup(prepends[i], (size_t)(strchr(prepends[i], '=') - prepends[i]));
      const char *value = prepends[i] + strlen(name) + 1, *old = getenv(name);
      size_t vl = strlen(value);
      if (!old || !*old)
         setenv(name, value, 1);
      else if (strncmp(old, value, vl) || (old[vl] && old[vl] != ':')) {
         char *both = xasprintf("%s:%s", value, old);
         setenv(name, both, 1);
         free(both);
      }
      free(name);
   }
}

void env_compose(const struct plan *p)
{
   /* Prefixed host variables, e.g. APPTAINERENV_FOO=bar -> FOO=bar, even with
    * --cleanenv; the prefixed name itself does not enter the container. */
   for (size_t k = 0; k < p->n_env_prefixes; k++) {
      const char *pre = p->env_prefixes[k];
      size_t pl = strlen(pre);
      for (size_t i = 0; environ[i]; ) {
         char *eq = strchr(environ[i], '=');
         if (eq && !strncmp(environ[i], pre, pl) && eq > environ[i] + pl) {
            char *name = strndup(environ[i] + pl, (size_t)(eq - environ[i] - pl));
            char *full = strndup(environ[i], (size_t)(eq - environ[i]));
            add_override(name, eq + 1);
            unsetenv(full); /* shifts environ down: don't advance */
            free(full);
            free(name);
         } else
            i++;
      }
   }
   if (p->clearenv) {
      char **kept = xcalloc(p->n_env + 1, sizeof(char *));
      size_t n = 0;
      for (size_t i = 0; i < p->n_env; i++) {
         const char *v = p->env[i].op == 'k' ? getenv(p->env[i].name) : NULL;
         if (v)
            kept[n++] = xasprintf("%s=%s", p->env[i].name, v);
      }
      clearenv();
      for (size_t i = 0; i < n; i++)
         putenv(kept[i]);
      free(kept);
   }
   for (size_t i = 0; i < p->n_env; i++) {
      const struct env_op *e = &p->env[i];
      if (e->op == 'u')
         unsetenv(e->name);
      else if (e->op == 's')
         setenv(e->name, e->value, 1);
      else if (e->op == 'o')
         add_override(e->name, e->value);
      else if (e->op == 'p')
         add_prepend(e->name, e->value);
   }
}

/* Sourced by the image's /bin/sh: $1 is the number of overrides that follow, then the
 * number of prepends (NAME=VALUE; NAME checked by the plan parser, so eval only reads a
 * variable), then the command. A missing command is reported the way the direct path
 * reports it. */
static const char WRAPPER[] =
   "__ctr_n=$1; shift\n"
   "for __ctr_f in " ENV_DIR "/*.sh; do [ -f \"$__ctr_f\" ] && [ -r \"$__ctr_f\" ] && . \"$__ctr_f\"; done\n"
   "while [ \"$__ctr_n\" -gt 0 ]; do export \"$1\"; shift; __ctr_n=$((__ctr_n-1)); done\n"
   "__ctr_n=$1; shift\n"
   "while [ \"$__ctr_n\" -gt 0 ]; do __ctr_k=${1%%=*}; __ctr_v=${1#*=}; eval \"__ctr_o=\\${$__ctr_k-}\";"
   " case $__ctr_o in \"\") export \"$__ctr_k=$__ctr_v\" ;; \"$__ctr_v\"|\"$__ctr_v\":*) ;;"
   " *) export \"$__ctr_k=$__ctr_v:$__ctr_o\" ;; esac; shift; __ctr_n=$((__ctr_n-1)); done\n"
   "unset __ctr_n __ctr_f __ctr_k __ctr_v __ctr_o\n"
   "case $1 in */*) [ -e \"$1\" ] ;; *) command -v \"$1\" >/dev/null 2>&1 ;; esac ||"
   " { echo \"ctr: error: command not found in image: $1\" >&2; exit 127; }\n"
   "case $1 in */*) [ -f \"$1\" ] && [ -x \"$1\" ] ||"
   " { echo \"ctr: error: cannot execute $1: Permission denied\" >&2; exit 126; } ;; esac\n"
   "exec \"$@\"\n";

/* Whether the command must go through the image's /bin/sh to source the env scripts:
 * not when there are none, nor when they are plain assignments (launch_envscript.c
 * applies those itself, saving a shell's exec on every launch). */
static bool need_shell_for_env_scripts(void)
{
   glob_t g;
   if (glob(ENV_DIR "/*.sh", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
      globfree(&g);
      return false;
   }
   bool simple = env_scripts_apply_simple(g.gl_pathv, g.gl_pathc);
   globfree(&g);
   return !simple && access("/bin/sh", X_OK) == 0;
}

static size_t count(char **v)
{
   size_t n = 0;
   while (v[n])
      n++;
   return n;
}

/* The command line for the action: exec runs argv; run the image's runscript with argv
 * as its arguments; shell the image's bash (or sh). */
static char **action_argv(const struct plan *p)
{
   size_t n = count(p->argv);
   char **v = xcalloc(n + 3, sizeof(char *));
   size_t k = 0;
   if (p->action == ACTION_RUN) {
      if (access(RUNSCRIPT, F_OK) < 0)
         DIE_PLAIN("image %s has no runscript (" RUNSCRIPT "): use ctr exec IMAGE COMMAND", p->image);
      if (access(RUNSCRIPT, X_OK) < 0)
         v[k++] = "/bin/sh";
      v[k++] = RUNSCRIPT;
   } else if (p->action == ACTION_SHELL) {
      v[k++] = access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
   }
   memcpy(v + k, p->argv, n * sizeof(char *));
   return v;
}

/* Last, so that nothing the launcher does itself passes through it. Ids are faked only
 * where the namespace maps one id: when --subids could not be used (launch_ns.c). */
static void install_filter(const struct plan *p)
{
   /* --contain: the user's session keyring (Kerberos and AFS tokens, keys added with
    * keyctl) is not the container's business; it starts with an empty one, as runc and
    * crun do. Otherwise it is kept, as Apptainer does, so a job's tokens still work. */
   if (p->new_keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0)
      DIE("cannot give the container a session keyring of its own");
   seccomp_install(p->fake_ids && ns_id_range("uid") <= 1);
}

void exec_command(const struct plan *p)
{
   char **argv = action_argv(p);
   if (need_shell_for_env_scripts()) {
      size_t n = count(argv);
      char **w = xcalloc(n_overrides + n_prepends + n + 7, sizeof(char *));
      size_t k = 0;
      w[k++] = "/bin/sh";
      w[k++] = "-c";
      w[k++] = (char *)WRAPPER;
      w[k++] = "ctr";
      w[k++] = xasprintf("%zu", n_overrides);
      for (size_t i = 0; i < n_overrides; i++)
         w[k++] = overrides[i];
      w[k++] = xasprintf("%zu", n_prepends);
      for (size_t i = 0; i < n_prepends; i++)
         w[k++] = prepends[i];
      memcpy(w + k, argv, n * sizeof(char *));
      debug("exec via /bin/sh to source " ENV_DIR "/*.sh, then %s", argv[0]);
      install_filter(p);
      execv("/bin/sh", w);
      die_code(EXIT_CMD_NOT_EXEC, "cannot run /bin/sh in the image: %s", strerror(errno));
   }
   for (size_t i = 0; i < n_overrides; i++)
      putenv(overrides[i]);
   apply_prepends();
   debug("exec %s", argv[0]);
   install_filter(p);
   execvp(argv[0], argv);
   int err = errno;
   if (err == ENOENT || err == ENOTDIR)
      die_code(EXIT_CMD_NOT_FOUND, "command not found in image: %s", argv[0]);
   if (err == ENOEXEC)
      die_code(EXIT_CMD_NOT_EXEC,
               "cannot execute %s: exec format error (built for another architecture?)", argv[0]);
   die_code(EXIT_CMD_NOT_EXEC, "cannot execute %s: %s", argv[0], strerror(err));
}
