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

/* Copy the image to the node-local job directory, unless a copy of the same source is
 * there already (an earlier step of the job). A copy is known by the source's identity
 * (device, inode, size, mtime), kept beside it in .NAME.src: two images of one name in
 * one job (same size and mtime, even) are two copies, the second named DEV-INO-NAME.
 * Returns the copy's path. */
static char *stage_image(const char *src, const char *dir)
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
         int rc = same ? 0 : copy_image(in, &s, dst);
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

   int stage, cwd;
   size_t len;
   char *hex = NULL;
   if (strncmp(env, "2:", 2) || (env[2] != '0' && env[2] != '1') || (env[3] != '0' && env[3] != '1') ||
       env[4] != ':') {
      free(env);
      FAIL("the plan in %s is not one this plugin wrote", CTR_PLAN_ENV);
   }
   stage = env[2] == '1';
   cwd = env[3] == '1';
   hex = env + 5;
   char *buf = (char *)ctr_hex_decode(hex, &len);
   char why[PLAN_ERR_MAX];
   free(env);
   if (!buf)
      FAIL("the plan in %s is damaged", CTR_PLAN_ENV);
   if (scan(buf, len, why) < 0)
      FAIL("the plan in %s: %s", CTR_PLAN_ENV, why);

   if (cwd)
      cwd_fallback();

   job_dir = ctr_job_dir(uid, job);
   if (!job_dir || ensure_job_dir(job_dir, uid) < 0) {
      FAIL("cannot make the job's directory %s: %s", job_dir, strerror(errno));
   }
   int image = stage ? plan_find(words.v, words_end, PW_IMAGE) : -1;
   if (image >= 0) {
      char *copy = stage_image(words.v[image + 1], job_dir);
      if (!copy)
         FAIL("cannot stage image %s into %s: %s", words.v[image + 1], job_dir, strerror(errno));
      words.v[image + 1] = copy;
   }
   /* This node's rank count, so the shared container lives exactly as long as its
    * ranks; then the step's command, which the tasks' own arguments follow. */
   static char count[16];
   snprintf(count, sizeof(count), "%u", (unsigned)ntasks);
   char **v = realloc(words.v, ((size_t)words_end + 5) * sizeof(char *));
   if (!v)
      FAIL("out of memory");
   v[words_end] = (char *)plan_word_defs[PW_JOIN_COUNT].name;
   v[words_end + 1] = count;
   v[words_end + 2] = "--";
   v[words_end + 3] = argv[0];
   v[words_end + 4] = NULL;
   words.v = v;
   words.n = words_end + 4;
   size_t plan_len;
   char *plan_buf = plan_serialize(launcher, words.v, words.n, &plan_len);
   if (!plan_buf)
      FAIL("out of memory");
   plan_path = ctr_sprintf("%s/step%u.plan", job_dir, (unsigned)step);
   if (!plan_path || ctr_write_file_atomic(plan_path, plan_buf, plan_len, 0500) < 0) {
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
   if (preflight(node, task) < 0)
      return -1;
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
