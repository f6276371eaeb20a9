/* The step's side (remote context). user_init runs once per node per step in slurmstepd,
 * as the user, before the tasks are forked; task_init runs in each forked task, as the
 * user, just before Slurm's own execve; exit runs in slurmstepd when the step ends. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctr_spank.h"
#include "../plan_words.h"

#define PLAN_ENV_MAX (1 << 20)

/* Set by user_init in slurmstepd; the forked tasks inherit them. */
static char *plan_path;   /* this step's plan file on this node */
static char *job_dir;
static const char *launcher; /* the plan file's #! interpreter */
static struct plan_words words; /* its words (checked by task_init) */
static int words_end;     /* where its own words end ("--") */
static bool multi_prog;   /* srun --multi-prog: the tasks' argv start with the plan file */
/* A failure in user_init is reported by every task (naming it), which then fails: Slurm
 * 22.05's srun exits 0 when a step fails before its tasks start. */
static bool failed;
static char failure[1024];

#define FAIL(...) do { snprintf(failure, sizeof(failure), __VA_ARGS__); failed = true; return 0; } while (0)

/* The plan's words, as the launcher will parse them (plan_words.c): one way to read a
 * plan, so a word's argument that looks like another word is never taken for it. */
static int scan(char *buf, size_t len, char *err)
{
   int r = plan_split(buf, len, &words, err);
   if (r == PLAN_OK)
      r = plan_scan(words.v, words.n, &words_end, err);
   if (r == PLAN_OK && !words.shebang)
      r = PLAN_BAD, snprintf(err, PLAN_ERR_MAX, "no #! line");
   launcher = words.shebang;
   return r;
}

static int ensure_job_dir(const char *dir, uid_t uid)
{
   if (mkdir(dir, 0700) == 0)
      return 0;
   struct stat st;
   if (errno != EEXIST)
      return -1;
   if (lstat(dir, &st) < 0)
      return -1;
   if (!S_ISDIR(st.st_mode) || st.st_uid != uid) {
      errno = EEXIST;  /* someone else's, or not a directory: don't use it */
      return -1;
   }
   return 0;
}

/* Copy SRC to DST (through DST.tmp.PID, renamed: a reader never sees half a copy),
 * keeping its times; the copy is read-only. */
static int copy_image(int in, const struct stat *s, const char *dst)
{
   char *tmp = ctr_sprintf("%s.tmp.%d", dst, (int)getpid());
   int out = -1;
   if (!tmp)
      return -1;
   if ((out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
      goto fail;
   for (off_t left = s->st_size, at = 0; left > 0; ) {
      ssize_t n = sendfile(out, in, &at, left > (1 << 30) ? (1 << 30) : (size_t)left);
      if (n < 0 && errno == EINTR)
         continue;
      if (n <= 0) {
         if (n == 0)
            errno = EIO;
         goto fail;
      }
      left -= n;
   }
   struct timespec times[2] = { s->st_atim, s->st_mtim };
   if (futimens(out, times) < 0 || fchmod(out, 0400) < 0 || close(out) < 0) {
      out = -1;
      goto fail;
   }
   out = -1;
   if (rename(tmp, dst) < 0)
      goto fail;
   free(tmp);
   return 0;
fail:;
   int e = errno;
   if (out >= 0)
      close(out);
   unlink(tmp);
   free(tmp);
   errno = e;
   return -1;
}

/* --ctr-stage=sbcast: srun's broadcast copy BCAST becomes the staged copy DST when it is
 * the user's own file of the source's size and mtime (sbcast --preserve); moved, so
 * there is one copy. */
static int take_broadcast(const char *bcast, const struct stat *s, const char *dst)
{
   struct stat b;
   int fd = open(bcast, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
   if (fd < 0 || fstat(fd, &b) < 0 || !S_ISREG(b.st_mode) || b.st_uid != getuid() || b.st_size != s->st_size ||
       b.st_mtim.tv_sec != s->st_mtim.tv_sec || fchmod(fd, 0400) < 0 || rename(bcast, dst) < 0) {
      if (fd >= 0)
         close(fd);
      return -1;
   }
   close(fd);
   return 0;
}

/* Copy the image to the node-local job directory, unless a copy of the same source is
 * there already (an earlier step of the job). A copy is known by the source's identity
 * (device, inode, size, mtime), kept beside it in .NAME.src: two images of one name in
 * one job (same size and mtime, even) are two copies, the second named DEV-INO-NAME.
 * Returns the copy's path. */
static char *stage_image(const char *src, const char *dir, const char *bcast)
{
   const char *base = strrchr(src, '/');
   base = base ? base + 1 : src;
   struct stat s, d;
   int in = open(src, O_RDONLY | O_CLOEXEC);
   if (in < 0 || fstat(in, &s) < 0) {
      int e = errno;
      if (in >= 0)
         close(in);
      errno = e;
      return NULL;
   }
   char *id = ctr_sprintf("%llu:%llu:%lld:%lld.%09ld\n", (unsigned long long)s.st_dev, (unsigned long long)s.st_ino,
                          (long long)s.st_size, (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
   char *dst = NULL;
   for (int attempt = 0; id && attempt < 2; attempt++) {
      free(dst);
      char *name = attempt ? ctr_sprintf("%llu-%llu-%s", (unsigned long long)s.st_dev, (unsigned long long)s.st_ino, base)
                           : ctr_sprintf("%s", base);
      dst = name ? ctr_sprintf("%s/%s", dir, name) : NULL;
      char *idf = name ? ctr_sprintf("%s/.%s.src", dir, name) : NULL;
      free(name);
      if (!dst || !idf) {
         free(idf);
         break;
      }
      size_t n;
      char *had = lstat(dst, &d) == 0 && S_ISREG(d.st_mode) ? ctr_read_file(idf, &n) : NULL;
      bool same = had && !strcmp(had, id) && d.st_size == s.st_size;
      bool taken = had || (lstat(dst, &d) == 0);
      free(had);
      if (same || (!taken || attempt == 1)) {
         int rc = same ? 0 : bcast ? take_broadcast(bcast, &s, dst) : copy_image(in, &s, dst);
         if (bcast && rc < 0 && !same) /* not there, or not what srun sent: copy */
            rc = copy_image(in, &s, dst);
         if (rc == 0 && !same)
            rc = ctr_write_file_atomic(idf, id, strlen(id), 0400);
         free(idf);
         if (rc < 0)
            break;
         close(in);
         free(id);
         return dst;
      }
      free(idf);  /* another image's copy: try the name of this one's identity */
   }
   int e = errno ? errno : ENOMEM;
   close(in);
   free(id);
   free(dst);
   errno = e;
   return NULL;
}

/* srun's working directory, which the plan enters, may not exist on this node: then Slurm
 * starts the tasks in /tmp ("couldn't chdir ... going to /tmp instead"), and so does the
 * container (the planner made the directory's bind optional). Said once per node by
 * the node's first task. */
static char *cwd_missing;
static int cwd_errno;

static void cwd_fallback(void)
{
   int at = plan_find(words.v, words_end, PW_CHDIR);
   struct stat st;
   if (at < 0)
      return;
   const char *dir = words.v[at + 1];
   if (stat(dir, &st) < 0)
      cwd_errno = errno;
   else if (!S_ISDIR(st.st_mode))
      cwd_errno = ENOTDIR;
   else
      return;
   cwd_missing = strdup(dir);
   words.v[at + 1] = "/tmp";
}

static const char *node_name(spank_t sp)
{
   static char name[256];
   if (spank_getenv(sp, "SLURMD_NODENAME", name, sizeof(name)) != ESPANK_SUCCESS &&
       gethostname(name, sizeof(name)) < 0)
      strcpy(name, "?");
   return name;
}

/* What `ctr plan --nv` said on this node (the driver's warning): the node's first task
 * prints it, naming the node. */
static char *node_notes;

/* --ctr-nv: the driver is this node's, so this node plans (once per step, with the
 * arguments srun planned with, and --nv), in the directory the tasks start in, with the
 * job's environment; its plan replaces srun's. */
static int plan_on_node(spank_t sp, char *argbuf, size_t len, uint32_t step)
{
   char **env = NULL;
   if (spank_get_item(sp, S_JOB_ENV, &env) != ESPANK_SUCCESS)
      env = NULL;
   size_t n = 0;
   for (size_t i = 0; i < len; i += strlen(argbuf + i) + 1)
      n++;
   char **av = calloc(n + 6, sizeof(char *));
   char *out = ctr_sprintf("%s/step%u.nv.plan", job_dir, (unsigned)step);
   if (!av || !out) {
      snprintf(failure, sizeof(failure), "out of memory");
      failed = true;
      return -1;
   }
   size_t k = 0;
   if (g_conf.node)
      av[k++] = (char *)g_conf.node;
   av[k++] = (char *)g_conf.ctr;
   av[k++] = "plan";
   av[k++] = "-o";
   av[k++] = out;
   for (size_t i = 0; i < len; i += strlen(argbuf + i) + 1)
      av[k++] = argbuf + i;
   int at = plan_find(words.v, words_end, PW_CHDIR);
   const char *dir = at >= 0 ? words.v[at + 1] : "/";
   int err[2];
   if (pipe2(err, O_CLOEXEC) < 0) {
      snprintf(failure, sizeof(failure), "cannot plan --nv here: %s", strerror(errno));
      failed = true;
      return -1;
   }
   pid_t pid = fork();
   if (pid == 0) {
      int nul = open("/dev/null", O_RDWR);
      dup2(nul, 0);
      dup2(nul, 1);
      dup2(err[1], 2);
      if (chdir(dir) < 0 && chdir("/tmp") < 0)
         _exit(127);
      if (env)
         execvpe(av[0], av, env);
      else
         execvp(av[0], av);
      fprintf(stderr, "ctr: error: cannot run %s: %s\n", av[0], strerror(errno));
      _exit(127);
   }
   close(err[1]);
   char said[2048];
   size_t got = 0;
   ssize_t r;
   while (pid > 0 && (r = read(err[0], said + got, sizeof(said) - 1 - got)) != 0) {
      if (r < 0 && errno == EINTR)
         continue;
      if (r < 0 || (got += (size_t)r) == sizeof(said) - 1)
         break;
   }
   said[got] = '\0';
   close(err[0]);
   int status = -1;
   while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
      ;
   size_t plen;
   char *plan = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ctr_read_file(out, &plen) : NULL;
   unlink(out);
   free(out);
   free(av);
   char *nl = strchr(said, '\n');
   if (!plan) {
      if (nl)
         *nl = '\0';
      snprintf(failure, sizeof(failure), "ctr plan --nv on this node failed: %.900s", *said ? said : "(no message)");
      failed = true;
      return -1;
   }
   node_notes = *said ? strdup(said) : NULL;
   char why[PLAN_ERR_MAX];
   free(words.v);
   memset(&words, 0, sizeof(words));
   if (scan(plan, plen, why) < 0) {
      snprintf(failure, sizeof(failure), "the plan made here with --nv: %s", why);
      failed = true;
      return -1;
   }
   return 0;
}

int ctr_stepd_user_init(spank_t sp)
{
   char *env = malloc(PLAN_ENV_MAX);
   if (!env) {
      slurm_error("ctr: out of memory");
      return -1;
   }
   spank_err_t e = spank_getenv(sp, CTR_PLAN_ENV, env, PLAN_ENV_MAX);
   if (e == ESPANK_ENV_NOEXIST) {
      free(env);
      return 0;
   }
   if (e != ESPANK_SUCCESS) {
      free(env);
      FAIL("cannot read the plan from the environment: %s", spank_strerror(e));
   }
   spank_unsetenv(sp, CTR_PLAN_ENV); /* the tasks don't need it */

   uid_t uid;
   uint32_t job, step, ntasks;
   int argc;
   char **argv;
   if (spank_get_item(sp, S_JOB_UID, &uid) || spank_get_item(sp, S_JOB_ID, &job) ||
       spank_get_item(sp, S_JOB_STEPID, &step) || spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &ntasks) ||
       spank_get_item(sp, S_JOB_ARGV, &argc, &argv) || argc < 1) {
      free(env);
      FAIL("cannot get the step's details from Slurm");
   }

   int stage, cwd, nv;
   size_t len;
   char *field[4];
   if (strncmp(env, "3:", 2) || env[2] < '0' || env[2] > '2' || (env[3] != '0' && env[3] != '1') ||
       (env[4] != '0' && env[4] != '1') || env[5] != ':') {
      free(env);
      FAIL("the plan in %s is not one this plugin wrote", CTR_PLAN_ENV);
   }
   stage = env[2] - '0';
   cwd = env[3] == '1';
   nv = env[4] == '1';
   char *at = env + 6;
   for (int i = 0; i < 4; i++) {
      field[i] = at;
      at = i < 3 ? strchr(at, ':') : NULL;
      if (i < 3 && !at) {
         free(env);
         FAIL("the plan in %s is damaged", CTR_PLAN_ENV);
      }
      if (at)
         *at++ = '\0';
   }
   size_t nlen, blen, alen;
   char *name = (char *)ctr_hex_decode(field[0], &nlen), *bcast = (char *)ctr_hex_decode(field[1], &blen);
   char *buf = (char *)ctr_hex_decode(field[2], &len), *nv_argv = (char *)ctr_hex_decode(field[3], &alen);
   char why[PLAN_ERR_MAX];
   free(env);
   if (!buf || !name || !bcast || !nv_argv || (*name && !ctr_name_ok(name)))
      FAIL("the plan in %s is damaged", CTR_PLAN_ENV);
   if (scan(buf, len, why) < 0)
      FAIL("the plan in %s: %s", CTR_PLAN_ENV, why);

   if (cwd)
      cwd_fallback();

   job_dir = ctr_job_dir(uid, job);
   if (!job_dir || ensure_job_dir(job_dir, uid) < 0) {
      FAIL("cannot make the job's directory %s: %s", job_dir, strerror(errno));
   }
   if (nv && plan_on_node(sp, nv_argv, alen, step) < 0)
      return 0;
   int image = stage ? plan_find(words.v, words_end, PW_IMAGE) : -1;
   if (image >= 0) {
      char *copy = stage_image(words.v[image + 1], job_dir, stage == STAGE_SBCAST && *bcast ? bcast : NULL);
      if (!copy)
         FAIL("cannot stage image %s into %s: %s", words.v[image + 1], job_dir, strerror(errno));
      words.v[image + 1] = copy;
   }
   if (stage == STAGE_SBCAST && *bcast)
      unlink(bcast); /* a later step's broadcast, the copy being there already */
   char *path = ctr_plan_path(uid, job, step);
   if (!path)
      FAIL("out of memory");
   /* --multi-prog: srun put this plan file in front of each command of the
    * configuration (spank_multiprog.c), from which slurmstepd has made the tasks' argv.
    * Checked here, before any task starts: no task of the step runs outside. */
   if (argc >= 2 && argv[1] && ctr_mp_marked(argv[1])) {
      char *named;
      int bad = ctr_mp_check(argv[1], path, &named);
      if (bad < 0)
         FAIL("--multi-prog: srun put the plan file %s in front of the commands, this node writes it to %s: give srun "
              "and the nodes the same stage_dir in plugstack.conf", named ? named : "(none)", path);
      if (bad > 0)
         FAIL("--multi-prog: line %d of the configuration srun sent does not start its command with the plan file %s",
              bad, path);
      multi_prog = true;
   }
   /* This node's rank count, so the shared container lives exactly as long as its
    * ranks (a named one: the job, its directory); then the step's command, which the
    * tasks' own arguments follow (under --multi-prog the plan has no command: a task's
    * arguments are its command). */
   static char count[16];
   snprintf(count, sizeof(count), "%u", (unsigned)ntasks);
   char **v = realloc(words.v, ((size_t)words_end + 9) * sizeof(char *));
   if (!v)
      FAIL("out of memory");
   int n = words_end;
   v[n++] = (char *)plan_word_defs[PW_JOIN_COUNT].name;
   v[n++] = count;
   if (*name) {
      /* The job's directory stays while the job runs (the mark keeps it from being
       * empty at step end); the job epilog removes it, and stops the holder. */
      char *mark = ctr_sprintf("%s/name.%s", job_dir, name);
      if (!mark || ctr_write_file_atomic(mark, "", 0, 0400) < 0)
         FAIL("cannot mark the named container %s in %s: %s", name, job_dir, strerror(errno));
      free(mark);
      v[n++] = (char *)plan_word_defs[PW_JOIN_TAG].name;
      v[n++] = ctr_sprintf("%u.name.%s", (unsigned)job, name);
      v[n++] = (char *)plan_word_defs[PW_JOIN_KEEP].name;
      v[n++] = job_dir;
   }
   v[n++] = "--";
   if (!multi_prog)
      v[n++] = argv[0];
   v[n] = NULL;
   words.v = v;
   words.n = n;
   size_t plan_len;
   char *plan_buf = plan_serialize(launcher, words.v, words.n, &plan_len);
   if (!plan_buf)
      FAIL("out of memory");
   plan_path = path;
   if (ctr_write_file_atomic(plan_path, plan_buf, plan_len, 0500) < 0) {
      int err = errno;
      free(plan_path);
      plan_path = NULL;
      free(plan_buf);
      FAIL("cannot write the plan file in %s: %s", job_dir, strerror(err));
   }
   free(plan_buf);
   return 0;
}

struct where {
   const char *node;
   uint32_t task;
};

static void problem(void *ctx, const char *what, const char *path, int err)
{
   struct where *w = ctx;
   if (path)
      slurm_error("ctr: node %s task %u: %s %s: %s", w->node, (unsigned)w->task, what, path, strerror(err));
   else
      slurm_error("ctr: node %s task %u: %s: not in the plan", w->node, (unsigned)w->task, what);
}

/* What this node must have for the plan to run (plan_check, as `ctr-launch --check-plan`
 * does): checked per task so that the message names the node and the task (the
 * launcher's own errors come later, on the task's stderr, and Slurm names the task that
 * exited). Which FUSE server the launcher has is not known here: squashfuse_ll is
 * checked when the plan names it. */
static int preflight(const char *node, uint32_t task)
{
   struct where w = { node, task };
   if (access(launcher, X_OK) < 0) {
      problem(&w, "the launcher", launcher, errno);
      return -1;
   }
   return plan_check(words.v, words_end, PLAN_SQFUSE_IF_NAMED, problem, &w) ? -1 : 0;
}

int ctr_stepd_task_init(spank_t sp)
{
   if (!plan_path && !failed)
      return 0;
   uint32_t task = 0;
   int argc;
   char **argv;
   spank_get_item(sp, S_TASK_GLOBAL_ID, &task);
   const char *node = node_name(sp);
   if (failed) {
      slurm_error("ctr: node %s task %u: %s", node, (unsigned)task, failure);
      return -1;
   }
   uint32_t local = 0;
   spank_get_item(sp, S_TASK_ID, &local);
   if (cwd_missing && local == 0)
      slurm_error("ctr: node %s: working directory %s: %s here; the tasks start in /tmp, as Slurm's do", node,
                  cwd_missing, strerror(cwd_errno));
   for (char *l = local == 0 ? node_notes : NULL, *nl; l && *l; l = nl ? nl + 1 : NULL) {
      nl = strchr(l, '\n');
      int len = nl ? (int)(nl - l) : (int)strlen(l);
      fprintf(stderr, "ctr: node %s: %.*s\n", node, len, strncmp(l, "ctr: ", 5) ? l : l + 5);
   }
   if (preflight(node, task) < 0)
      return -1;
   if (multi_prog)
      return 0; /* its argv is [PLAN, CMD, ARGS...] already */
   if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1) {
      slurm_error("ctr: node %s task %u: cannot get the task's command from Slurm", node, (unsigned)task);
      return -1;
   }
   /* Slurm execs argv[0] with argv: the plan file's #! line makes that
    * `ctr-launch --plan PLAN argv[1]...`, and the plan ends with the command itself. */
   argv[0] = plan_path;
   return 0;
}

int ctr_stepd_exit(spank_t sp)
{
   if (plan_path)
      unlink(plan_path);
   if (job_dir)
      rmdir(job_dir); /* only when empty: staged images stay for the job's next steps */
   return 0;
}
