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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "launch.h"

extern char **environ;

#define ENV_DIR "/.singularity.d/env"

/* The overrides: --env, --env-file and the prefixed host variables (APPTAINERENV_X...),
 * applied after the image's env scripts as Apptainer does. Each value is shell-evaluated
 * then (Apptainer's `export X="VALUE"`, with only '"' escaped), unless --no-eval: taken as
 * it is. Four names are not plain variables: PATH replaces the image's PATH, APPEND_PATH
 * and PREPEND_PATH extend it, and a LD_LIBRARY_PATH keeps /.singularity.d/libs last. */
struct override {
   char *name;
   char *value;
};

static struct override *overrides;
static size_t n_overrides;
static char **prepends;   /* "NAME=VALUE": VALUE put first on NAME, after the overrides */
static size_t n_prepends;

static void add_prepend(const char *name, const char *value)
{
   prepends = realloc(prepends, (n_prepends + 1) * sizeof(char *));
   if (!prepends)
      DIE_PLAIN("out of memory");
   prepends[n_prepends++] = xasprintf("%s=%s", name, value);
}

/* The direct path's prepends: VALUE, then the entries the list NAME already holds, less
 * VALUE itself (Apptainer's rule puts /.singularity.d/libs last; --nv wants it first,
 * once). Last of all, after the overrides and the LD_LIBRARY_PATH rules. The wrapper
 * below does the same in sh. */
static void apply_prepends(void)
{
   for (size_t i = 0; i < n_prepends; i++) {
      char *name = strndup(prepends[i], (size_t)(strchr(prepends[i], '=') - prepends[i]));
      const char *value = prepends[i] + strlen(name) + 1, *old = getenv(name);
      size_t vl = strlen(value);
      char *out = xcalloc(vl + (old ? strlen(old) : 0) + 2, 1), *o = stpcpy(out, value);
      for (const char *e = old; e && *e; ) {
         const char *end = strchrnul(e, ':');
         size_t el = (size_t)(end - e);
         if (el && !(el == vl && !strncmp(e, value, vl))) {
            *o++ = ':';
            o = stpncpy(o, e, el);
         }
         e = *end ? end + 1 : end;
      }
      setenv(name, out, 1);
      free(out);
      free(name);
   }
}
static bool no_eval;

#define LIBS_DIR "/.singularity.d/libs"

/* Apptainer's rule: never HOME (the home is --home's business) nor the variables that
 * steer its own shell and apps. */
static char *xstrdup(const char *s)
{
   return xasprintf("%s", s);
}

static bool override_forbidden(const char *name)
{
   static const char *const no[] = { "HOME", "APPTAINER_SHELL", "SINGULARITY_SHELL",
                                     "APPTAINER_APPNAME", "SINGULARITY_APPNAME" };
   for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
      if (!strcmp(name, no[i]))
         return true;
   return false;
}

static struct override *find_override(const char *name)
{
   for (size_t i = 0; i < n_overrides; i++)
      if (!strcmp(overrides[i].name, name))
         return &overrides[i];
   return NULL;
}

/* FROM names where NAME came from, for the warning. REPLACE: a later source wins (--env over
 * APPTAINERENV_); else the first one stays (APPTAINERENV_X over SINGULARITYENV_X). */
static void add_override(const char *from, const char *name, const char *value, bool replace)
{
   if (override_forbidden(name)) {
      warn("%s is ignored: %s cannot be set in the container%s", from, name,
           strcmp(name, "HOME") ? "" : " (use --home)");
      return;
   }
   struct override *o = find_override(name);
   if (o && !replace)
      return;
   if (o) {
      free(o->value);
      o->value = xstrdup(value);
      return;
   }
   overrides = realloc(overrides, (n_overrides + 1) * sizeof(*overrides));
   if (!overrides)
      DIE_PLAIN("out of memory");
   overrides[n_overrides++] = (struct override){ xstrdup(name), xstrdup(value) };
}

static bool has_prefix(const char *s, const char *pre)
{
   return !strncmp(s, pre, strlen(pre));
}

void env_compose(const struct plan *p)
{
   no_eval = p->no_eval;
   /* Prefixed host variables, e.g. APPTAINERENV_FOO=bar -> FOO=bar, even with
    * --cleanenv; the prefixed name itself does not enter the container. The first
    * prefix of the plan's list wins where two give the same NAME. */
   for (size_t k = 0; k < p->n_env_prefixes; k++) {
      const char *pre = p->env_prefixes[k];
      size_t pl = strlen(pre);
      for (size_t i = 0; environ[i]; ) {
         char *eq = strchr(environ[i], '=');
         if (eq && has_prefix(environ[i], pre) && eq > environ[i] + pl) {
            char *name = strndup(environ[i] + pl, (size_t)(eq - environ[i] - pl));
            char *full = strndup(environ[i], (size_t)(eq - environ[i]));
            add_override(full, name, eq + 1, false);
            unsetenv(full); /* shifts environ down: don't advance */
            free(full);
            free(name);
         } else
            i++;
      }
   }
   /* The runtime's own settings on the host (APPTAINER_BIND, SINGULARITY_CACHEDIR...)
    * are not the container's. */
   for (size_t k = 0; k < p->n_drop_prefixes; k++)
      for (size_t i = 0; environ[i]; ) {
         char *eq = strchr(environ[i], '=');
         if (eq && has_prefix(environ[i], p->drop_prefixes[k])) {
            char *full = strndup(environ[i], (size_t)(eq - environ[i]));
            unsetenv(full);
            free(full);
         } else
            i++;
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
         add_override("--env", e->name, e->value, true);
      else if (e->op == 'p')
         add_prepend(e->name, e->value);
   }
   /* A default working directory may have fallen back to / (enter_workdir). */
   char cwd[4096];
   if (p->chdir_optional && getcwd(cwd, sizeof cwd))
      setenv("PWD", cwd, 1);
}

/* VALUE as the shell word Apptainer exports: "..." with '"' escaped (evaluated), or with
 * --no-eval '...' (literal). */
static char *quoted(const char *value)
{
   size_t n = 3;
   for (const char *c = value; *c; c++)
      n += no_eval && *c == '\'' ? 4 : *c == '"' && !no_eval ? 2 : 1;
   char *q = xcalloc(n, 1), *o = q;
   *o++ = no_eval ? '\'' : '"';
   for (const char *c = value; *c; c++) {
      if (no_eval && *c == '\'')
         o = stpcpy(o, "'\\''");
      else {
         if (!no_eval && *c == '"')
            *o++ = '\\';
         *o++ = *c;
      }
   }
   *o++ = no_eval ? '\'' : '"';
   return q;
}

/* The override as a shell statement, for the wrapper below. */
static char *statement(const struct override *o)
{
   char *q = quoted(o->value), *s;
   if (!strcmp(o->name, "APPEND_PATH"))
      s = xasprintf("PATH=\"$PATH\":%s", q);
   else if (!strcmp(o->name, "PREPEND_PATH"))
      s = xasprintf("PATH=%s:\"$PATH\"", q);
   else if (!strcmp(o->name, "LD_LIBRARY_PATH") && *o->value)
      s = xasprintf("export LD_LIBRARY_PATH=%s:" LIBS_DIR, q);
   else
      s = xasprintf("export %s=%s", o->name, q);
   free(q);
   return s;
}

/* APPEND_PATH and PREPEND_PATH apply after PATH, whatever the order they came in. */
static int path_edit(const struct override *o)
{
   return !strcmp(o->name, "APPEND_PATH") || !strcmp(o->name, "PREPEND_PATH");
}

/* Whether an override's value needs a real shell to evaluate: launch_envscript.c knows
 * $NAME, ${NAME} and the escapes of "...", not $(...), backquotes or ${X:-y}. */
static bool value_needs_shell(const char *value)
{
   if (no_eval || !strpbrk(value, "$`\\\"'"))
      return false;
   char *q = quoted(value);
   bool ok = env_quoted_ok(q);
   free(q);
   return !ok;
}

static bool overrides_need_shell(void)
{
   for (size_t i = 0; i < n_overrides; i++)
      if (value_needs_shell(overrides[i].value)) {
         debug("--env %s needs a shell to evaluate", overrides[i].name);
         return true;
      }
   return false;
}

/* Without a shell, after the env scripts: each value evaluated here, then set. */
static void apply_overrides_here(void)
{
   char **values = xcalloc(n_overrides + 1, sizeof(char *));
   for (size_t i = 0; i < n_overrides; i++) {
      char *q = quoted(overrides[i].value);
      values[i] = no_eval || value_needs_shell(overrides[i].value) ? xstrdup(overrides[i].value) : env_eval_quoted(q);
      free(q);
   }
   for (int pass = 0; pass < 2; pass++)
      for (size_t i = 0; i < n_overrides; i++) {
         const struct override *o = &overrides[i];
         if (path_edit(o) != pass)
            continue;
         const char *path = getenv("PATH") ? getenv("PATH") : "";
         char *v = !strcmp(o->name, "APPEND_PATH") ? xasprintf("%s:%s", path, values[i])
                 : !strcmp(o->name, "PREPEND_PATH") ? xasprintf("%s:%s", values[i], path)
                 : !strcmp(o->name, "LD_LIBRARY_PATH") && *values[i] ? xasprintf("%s:" LIBS_DIR, values[i])
                 : xstrdup(values[i]);
         setenv(path_edit(o) ? "PATH" : o->name, v, 1);
         free(v);
      }
}

/* Apptainer's 99-base.sh: the libraries bound into /.singularity.d/libs are found last,
 * whatever LD_LIBRARY_PATH the image or the user gave. Images without that directory are
 * left alone. */
static void keep_libs_dir(void)
{
   if (access(LIBS_DIR, F_OK) < 0)
      return;
   const char *l = getenv("LD_LIBRARY_PATH");
   if (!l || !*l) {
      setenv("LD_LIBRARY_PATH", LIBS_DIR, 1);
      return;
   }
   size_t n = strlen(LIBS_DIR);
   for (const char *c = l; (c = strstr(c, LIBS_DIR)); c += n)
      if ((c == l || c[-1] == ':') && (c[n] == '\0' || c[n] == ':'))
         return;
   char *v = xasprintf("%s:" LIBS_DIR, l);
   setenv("LD_LIBRARY_PATH", v, 1);
   free(v);
}

/* The directories the image's glibc ldconfig searches ("dir: (from ...)" lines of
 * `ldconfig -Nv`), colon-joined with a trailing ':'; "" when there is no ldconfig (musl
 * images) or it says nothing. The output is bounded: the image is not trusted. */
static char *ldconfig_dirs(void)
{
   int fds[2];
   if (access("/sbin/ldconfig", X_OK) < 0 || pipe(fds) < 0)
      return xasprintf("%s", "");
   pid_t pid = fork();
   if (pid < 0)
      DIE("cannot fork to run ldconfig");
   if (pid == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(fds[1], 1);
      if (null >= 0)
         dup2(null, 2);
      close(fds[0]);
      execl("/sbin/ldconfig", "ldconfig", "-Nv", (char *)NULL);
      _exit(127);
   }
   close(fds[1]);
   size_t cap = 1 << 16, n = 0;
   char *out = xcalloc(cap + 1, 1);
   for (ssize_t r; n < cap && (r = read(fds[0], out + n, cap - n)) != 0; )
      if (r > 0)
         n += (size_t)r;
      else if (errno != EINTR)
         break;
   close(fds[0]);
   while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
   char *dirs = xasprintf("%s", "");
   for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
      char *colon = strchr(line, ':');
      if (line[0] == '\t' || line[0] != '/' || !colon)
         continue;
      *colon = '\0';
      char *d = xasprintf("%s%s:", dirs, line);
      free(dirs);
      dirs = d;
   }
   free(out);
   return dirs;
}

static bool libs_dir_empty(void)
{
   glob_t g;
   bool empty = glob(LIBS_DIR "/*", 0, NULL, &g) != 0 || g.gl_pathc == 0;
   globfree(&g);
   return empty;
}

/* Apptainer's action script: an LD_LIBRARY_PATH that is only /.singularity.d/libs gets
 * the image's own library directories in front (so the bound libraries are found last),
 * when that directory has libraries or the user asks to extend the path; then
 * PREPEND_LD_LIBRARY_PATH and APPEND_LD_LIBRARY_PATH. */
static void ld_library_path_rules(void)
{
   const char *pre = getenv("PREPEND_LD_LIBRARY_PATH"), *app = getenv("APPEND_LD_LIBRARY_PATH");
   const char *l = getenv("LD_LIBRARY_PATH");
   if (l && !strcmp(l, LIBS_DIR) && (!libs_dir_empty() || (pre && *pre) || (app && *app))) {
      char *dirs = ldconfig_dirs();
      char *v = xasprintf("%s" LIBS_DIR, dirs);
      setenv("LD_LIBRARY_PATH", v, 1);
      debug("LD_LIBRARY_PATH=%s (ldconfig's directories first)", v);
      free(v);
      free(dirs);
   }
   l = getenv("LD_LIBRARY_PATH");
   if (!l || !*l)
      return;
   char *v = xasprintf("%s%s%s%s%s", pre && *pre ? pre : "", pre && *pre ? ":" : "", l, app && *app ? ":" : "", app && *app ? app : "");
   setenv("LD_LIBRARY_PATH", v, 1);
   free(v);
}

/* Sourced by the image's /bin/sh: $1 is the descriptor to say "env scripts done" on
 * (--runscript-timeout: launch_init.c), or empty; then the number of override statements that follow
 * (statement() above), then the number of prepends (NAME=VALUE; NAME checked by the plan
 * parser, so eval only reads a variable), then the command. A missing command is reported
 * the way the direct path reports it. */
static const char WRAPPER[] =
   "__ctr_t=$1; shift; __ctr_n=$1; shift\n"
   "for __ctr_f in " ENV_DIR "/*.sh; do [ -f \"$__ctr_f\" ] && [ -r \"$__ctr_f\" ] && . \"$__ctr_f\"; done\n"
   "while [ \"$__ctr_n\" -gt 0 ]; do eval \"$1\"; shift; __ctr_n=$((__ctr_n-1)); done\n"
   "export PATH\n"
   "if [ -d " LIBS_DIR " ]; then case :${LD_LIBRARY_PATH:-}: in *:" LIBS_DIR ":*) ;; ::) export LD_LIBRARY_PATH=" LIBS_DIR " ;;"
   " *) export LD_LIBRARY_PATH=\"$LD_LIBRARY_PATH:" LIBS_DIR "\" ;; esac; fi\n"
   "if [ \"${LD_LIBRARY_PATH:-}\" = " LIBS_DIR " ] && { [ -n \"${PREPEND_LD_LIBRARY_PATH:-}${APPEND_LD_LIBRARY_PATH:-}\" ] ||"
   " [ \"$(cd " LIBS_DIR " 2>/dev/null && echo *)\" != '*' ]; } && [ -x /sbin/ldconfig ]; then"
   " LD_LIBRARY_PATH=\"$(/sbin/ldconfig -Nv 2>/dev/null | { __ctr_d=; while IFS= read -r __ctr_l; do"
   " case $__ctr_l in /*:*) __ctr_d=\"$__ctr_d${__ctr_l%%:*}:\" ;; esac; done; printf %s \"$__ctr_d\"; })$LD_LIBRARY_PATH\"; fi\n"
   "if [ -n \"${LD_LIBRARY_PATH:-}\" ]; then"
   " [ -n \"${PREPEND_LD_LIBRARY_PATH:-}\" ] && LD_LIBRARY_PATH=\"$PREPEND_LD_LIBRARY_PATH:$LD_LIBRARY_PATH\";"
   " [ -n \"${APPEND_LD_LIBRARY_PATH:-}\" ] && LD_LIBRARY_PATH=\"$LD_LIBRARY_PATH:$APPEND_LD_LIBRARY_PATH\"; fi\n"
   "__ctr_n=$1; shift\n"
   "set -f; __ctr_i=$IFS\n"
   "while [ \"$__ctr_n\" -gt 0 ]; do __ctr_k=${1%%=*}; __ctr_v=${1#*=}; eval \"__ctr_o=\\${$__ctr_k-}\"; __ctr_r=$__ctr_v;"
   " IFS=:; for __ctr_e in $__ctr_o; do [ -z \"$__ctr_e\" ] || [ \"$__ctr_e\" = \"$__ctr_v\" ] || __ctr_r=\"$__ctr_r:$__ctr_e\"; done;"
   " IFS=$__ctr_i; export \"$__ctr_k=$__ctr_r\"; shift; __ctr_n=$((__ctr_n-1)); done; set +f\n"
   "[ -z \"$__ctr_t\" ] || { echo >&\"$__ctr_t\"; eval \"exec $__ctr_t>&-\"; }\n"
   "unset __ctr_t __ctr_n __ctr_f __ctr_k __ctr_v __ctr_o __ctr_r __ctr_e __ctr_i\n"
   "case $1 in */*) [ -e \"$1\" ] ;; *) command -v \"$1\" >/dev/null 2>&1 ;; esac ||"
   " { echo \"ctr: error: command not found in image: $1\" >&2; exit 127; }\n"
   "case $1 in */*) [ -f \"$1\" ] && [ -x \"$1\" ] ||"
   " { echo \"ctr: error: cannot execute $1: Permission denied\" >&2; exit 126; } ;; esac\n"
   "exec \"$@\"\n";

/* Whether the command must go through the image's /bin/sh: to source the env scripts
 * (not when there are none, nor when they are plain assignments: launch_envscript.c
 * applies those itself, saving a shell's exec on every launch), or to evaluate an
 * override that only a shell can. Without a /bin/sh, overrides are taken literally. */
static bool need_shell(void)
{
   bool has_sh = access("/bin/sh", X_OK) == 0;
   if (overrides_need_shell()) {
      if (has_sh)
         return true;
      warn("the image has no /bin/sh: --env values are taken literally");
      no_eval = true;
   }
   glob_t g;
   bool scripts = glob(ENV_DIR "/*.sh", 0, NULL, &g) == 0 && g.gl_pathc > 0;
   bool simple = !scripts || env_scripts_apply_simple(g.gl_pathv, g.gl_pathc);
   globfree(&g);
   if (!simple && has_sh)
      return true;
   apply_overrides_here();
   return false;
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
   bool fake = p->fake_ids && ns_id_range("uid") <= 1;
   if (p->checkpointable) {
      /* launch_criu.c: CRIU can't suspend a filter without CAP_SYS_ADMIN in the
       * initial namespace. Without a controlling terminal, TIOCSTI needs it too. */
      if (fake)
         DIE_PLAIN("--checkpointable: the --fakeroot seccomp filter (no subordinate ids here) cannot be checkpointed");
      if (setsid() < 0)
         DIE("cannot give the checkpointable command a session of its own");
      return;
   }
   seccomp_install(fake);
}

void exec_command(const struct plan *p)
{
   char **argv = action_argv(p);
   if (p->runscript_timeout_ms && g_scripts_fd < 0)
      debug("--runscript-timeout: not applied, there is no init to keep time (a rank under a job launcher)");
   if (p->set_umask)
      umask(p->umask);
   if (p->criu[0]) {
      install_filter(p);
      criu_exec(p, p->argv);
   }
   if (need_shell()) {
      size_t n = count(argv);
      char **w = xcalloc(n_overrides + n_prepends + n + 8, sizeof(char *));
      size_t k = 0;
      w[k++] = "/bin/sh";
      w[k++] = "-c";
      w[k++] = (char *)WRAPPER;
      w[k++] = "ctr";
      /* --runscript-timeout: the pipe to init stays open in the shell until the wrapper
       * has said the scripts are done, and is closed before the command runs. */
      if (g_scripts_fd >= 0 && fcntl(g_scripts_fd, F_SETFD, 0) < 0)
         DIE("cannot pass the --runscript-timeout pipe to the image's shell");
      w[k++] = g_scripts_fd >= 0 ? xasprintf("%d", g_scripts_fd) : "";
      w[k++] = xasprintf("%zu", n_overrides);
      for (int pass = 0; pass < 2; pass++)
         for (size_t i = 0; i < n_overrides; i++)
            if (path_edit(&overrides[i]) == pass)
               w[k++] = statement(&overrides[i]);
      w[k++] = xasprintf("%zu", n_prepends);
      for (size_t i = 0; i < n_prepends; i++)
         w[k++] = prepends[i];
      memcpy(w + k, argv, n * sizeof(char *));
      debug("exec via /bin/sh to source " ENV_DIR "/*.sh and set the overrides, then %s", argv[0]);
      caps_apply(p);
      install_filter(p);
      execv("/bin/sh", w);
      die_code(EXIT_CMD_NOT_EXEC, "cannot run /bin/sh in the image: %s", strerror(errno));
   }
   keep_libs_dir();
   ld_library_path_rules();
   apply_prepends();
   debug("exec %s", argv[0]);
   caps_apply(p);
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
