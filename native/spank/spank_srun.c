/* srun's side (local context, as the user, once per step, before any task starts): run
 * `ctr plan` once and hand the plan to the step in its environment. A wrong image or
 * bind source fails here, on the submit side, before resources are used. Under
 * --multi-prog, once the step exists, put the plan file in front of each command of the
 * configuration srun sends (spank_multiprog.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctr_spank.h"

struct args {
   const char **v;
   size_t n;
};

static int add(struct args *a, const char *s)
{
   const char **v = realloc(a->v, (a->n + 2) * sizeof(*v));
   if (!v || !s)
      return -1;
   v[a->n++] = s;
   v[a->n] = NULL;
   a->v = v;
   return 0;
}

/* `ctr plan -o OUT ...`; NV: with --nv, which only a node itself can plan (its driver);
 * OUT NULL: the arguments after "-o OUT", for the node. */
static int plan_command(struct args *a, const char *out, bool nv)
{
   int rc = 0;
   if (out) {
      if (g_conf.node)
         rc |= add(a, g_conf.node);
      rc |= add(a, g_conf.ctr);
      rc |= add(a, "plan");
      rc |= add(a, "-o");
      rc |= add(a, out);
   }
   rc |= add(a, "--for-nodes"); /* bind sources and cwd: checked on each node */
   for (size_t i = 0; i < g_opts.n_binds; i++)
      rc |= add(a, ctr_sprintf("--bind=%s", g_opts.binds[i]));
   for (size_t i = 0; i < g_opts.n_envs; i++)
      rc |= add(a, ctr_sprintf("--env=%s", g_opts.envs[i]));
   if (g_opts.workdir)
      rc |= add(a, ctr_sprintf("--pwd=%s", g_opts.workdir));
   if (g_opts.writable_tmpfs)
      rc |= add(a, "--writable-tmpfs");
   if (g_opts.home)
      rc |= add(a, ctr_sprintf("--home=%s", g_opts.home));
   if (g_opts.no_home)
      rc |= add(a, "--no-home");
   if (nv)
      rc |= add(a, "--nv");
   if (g_opts.remap_root)
      rc |= add(a, "--fakeroot");
   if (g_opts.entrypoint)
      rc |= add(a, "--action=run");
   rc |= add(a, "--");
   rc |= add(a, g_opts.image);
   return rc;
}

/* Run ctr with srun's stdout and stderr (its error line is the user's message) and no
 * stdin (srun's stdin belongs to the tasks). */
static int run(struct args *a)
{
   pid_t pid = fork();
   if (pid < 0)
      return -1;
   if (pid == 0) {
      int nul = open("/dev/null", O_RDONLY);
      if (nul >= 0)
         dup2(nul, 0);
      execvp(a->v[0], (char **)a->v);
      fprintf(stderr, "ctr: error: cannot run %s: %s\n", a->v[0], strerror(errno));
      _exit(127);
   }
   int status;
   while (waitpid(pid, &status, 0) < 0)
      if (errno != EINTR)
         return -1;
   return status;
}

/* Debian's containerd package installs a `ctr` too (/usr/bin/ctr): if PROG is that one,
 * its `--version` starts "ctr github.com/containerd/containerd" (src/host/ctr-name.ts makes
 * the same check). Reads at most one line of 255 bytes; its stderr goes nowhere. */
static int is_containerd_ctr(const char *prog)
{
   int fd[2];
   if (pipe(fd) < 0)
      return 0;
   pid_t pid = fork();
   if (pid < 0) {
      close(fd[0]);
      close(fd[1]);
      return 0;
   }
   if (pid == 0) {
      int nul = open("/dev/null", O_RDWR);
      if (nul >= 0) {
         dup2(nul, 0);
         dup2(nul, 2);
      }
      dup2(fd[1], 1);
      close(fd[0]);
      execlp(prog, prog, "--version", (char *)NULL);
      _exit(127);
   }
   close(fd[1]);
   char line[256];
   size_t n = 0;
   ssize_t r;
   while (n < sizeof(line) - 1 && (r = read(fd[0], line + n, sizeof(line) - 1 - n)) != 0) {
      if (r < 0 && errno == EINTR)
         continue;
      if (r < 0)
         break;
      n += (size_t)r;
   }
   line[n] = 0;
   close(fd[0]);
   kill(pid, SIGKILL); /* whatever it is, it has said enough */
   while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
   static const char mark[] = "ctr github.com/containerd/containerd";
   return strncmp(line, mark, sizeof(mark) - 1) == 0;
}

/* --ctr-stage=sbcast, inside an allocation: broadcast the image to every node of the job
 * (Slurm's tree of slurmds), to <stage_dir>/ctr.<uid>.<job>.bcast.<dev>-<ino>-<name>;
 * each node's user_init moves it into the job's directory. Returns that path, or NULL
 * when there is no allocation yet (srun makes its own: the nodes copy instead) or the
 * image is no file. */
static char *broadcast(const char *image, bool *failed)
{
   const char *job = getenv("SLURM_JOB_ID");
   char *real = realpath(image, NULL);
   struct stat st;
   *failed = false;
   if (!job || !*job || !real || stat(real, &st) < 0 || !S_ISREG(st.st_mode)) {
      free(real);
      return NULL;
   }
   const char *base = strrchr(real, '/') + 1;
   char *dst = ctr_sprintf("%s/ctr.%u.%s" CTR_BCAST_MARK "%llu-%llu-%s", g_conf.stage_dir, (unsigned)getuid(), job,
                           (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, base);
   struct args a = { 0 };
   if (!dst || add(&a, "sbcast") || add(&a, "--force") || add(&a, "--preserve") || add(&a, real) || add(&a, dst)) {
      free(real);
      free(dst);
      *failed = true;
      return NULL;
   }
   int status = run(&a);
   free(a.v);
   free(real);
   if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      slurm_error("ctr: --ctr-stage=sbcast: sbcast of %s to %s failed; no task was started", image, dst);
      free(dst);
      *failed = true;
      return NULL;
   }
   return dst;
}

/* NUL-separated */
static char *joined_hex(const struct args *a)
{
   size_t len = 0;
   for (size_t i = 0; i < a->n; i++)
      len += strlen(a->v[i]) + 1;
   char *buf = malloc(len + 1), *p = buf;
   if (!buf)
      return NULL;
   for (size_t i = 0; i < a->n; i++)
      p = stpcpy(p, a->v[i]) + 1;
   char *hex = ctr_hex_encode((unsigned char *)buf, len);
   free(buf);
   return hex;
}

static char *hex_of(const char *s)
{
   return ctr_hex_encode((const unsigned char *)(s ? s : ""), s ? strlen(s) : 0);
}

/* The plan went to the step's environment (ctr_srun_multi_prog has work to do). */
static bool planned;

int ctr_srun_plan(spank_t sp)
{
   if (!g_opts.image)
      return 0;
   /* ctr's temporary directory: $CTR_TMPDIR, else $TMPDIR, else /tmp (src/tmp.ts). */
   const char *tmpdir = getenv("CTR_TMPDIR");
   if (!tmpdir || *tmpdir != '/')
      tmpdir = getenv("TMPDIR");
   char *dir = ctr_sprintf("%s/ctr-srun.XXXXXX", tmpdir && *tmpdir == '/' ? tmpdir : "/tmp");
   if (!dir || !mkdtemp(dir)) {
      slurm_error("ctr: cannot create a temporary directory for the plan: %m");
      return -1;
   }
   char *out = ctr_sprintf("%s/plan", dir);
   struct args a = { 0 };
   int rc = -1;
   if (!out || plan_command(&a, out, false) < 0) {
      slurm_error("ctr: out of memory");
      goto done;
   }
   int status = run(&a);
   if (status < 0) {
      slurm_error("ctr: cannot run %s: %m", a.v[0]);
      goto done;
   }
   if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      slurm_error("ctr: could not plan the container for this step (ctr plan %s %d); no task was started",
                  WIFEXITED(status) ? "exited" : "died of signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      if (is_containerd_ctr(g_conf.ctr))
         slurm_error("ctr: hint: %s is containerd's ctr, not ctr's: give the plugin ctr=/full/path/to/ctr-hpc in plugstack.conf", g_conf.ctr);
      goto done;
   }
   bool bcast_failed = false;
   char *bcast = g_opts.stage == STAGE_SBCAST ? broadcast(g_opts.image, &bcast_failed) : NULL;
   if (bcast_failed)
      goto done;
   int stage = g_opts.stage == 0 ? STAGE_NO : bcast ? STAGE_SBCAST : STAGE_COPY;
   struct args node_args = { 0 };
   char *argv_hex = NULL;
   if (g_opts.nv && (plan_command(&node_args, NULL, true) < 0 || !(argv_hex = joined_hex(&node_args)))) {
      slurm_error("ctr: out of memory");
      free(bcast);
      goto done;
   }
   free(node_args.v);
   size_t len;
   char *plan = ctr_read_file(out, &len);
   char *hex = plan ? ctr_hex_encode((unsigned char *)plan, len) : NULL;
   char *name_hex = hex_of(g_opts.name), *bcast_hex = hex_of(bcast);
   /* The plan's --chdir is srun's working directory unless --ctr-workdir named one. */
   char *val = hex && name_hex && bcast_hex
                  ? ctr_sprintf("3:%d%d%d:%s:%s:%s:%s", stage, !g_opts.workdir, g_opts.nv, name_hex, bcast_hex, hex,
                                argv_hex ? argv_hex : "")
                  : NULL;
   free(name_hex);
   free(bcast_hex);
   free(bcast);
   free(argv_hex);
   if (!val)
      slurm_error("ctr: cannot read the plan %s: %m", out);
   else if (setenv(CTR_PLAN_ENV, val, 1) < 0) /* before the job's environment exists: srun's own */
      slurm_error("ctr: cannot pass the plan to the step: %m");
   else
      rc = 0, planned = true;
   free(plan);
   free(hex);
   free(val);
done:
   if (out)
      unlink(out);
   rmdir(dir);
   free(out);
   free(dir);
   return rc;
}

/* local_user_init: the step exists (its job and step ids are known) and srun has not
 * sent its argv yet. Under --multi-prog that argv is [CONF, CONF's text, ARGS...] (srun
 * read the file into argv[1]): put the plan file each node writes for this step in
 * front of every command of the text (spank_multiprog.c says why). A step is taken to
 * be --multi-prog when argv[1] is exactly the contents of the file argv[0]: srun's own
 * options are not SPANK items. */
int ctr_srun_multi_prog(spank_t sp)
{
   int argc;
   char **argv;
   if (!planned || spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 2 || !argv[0] || !argv[1])
      return 0;
   size_t len;
   char *text = ctr_read_file(argv[0], &len);
   bool multi = text && len == strlen(argv[1]) && !memcmp(text, argv[1], len);
   free(text);
   if (!multi)
      return 0;
   uid_t uid;
   uint32_t job, step;
   if (spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS || spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
       spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS) {
      slurm_error("ctr: --multi-prog: cannot get the step's ids from Slurm; no task was started");
      return -1;
   }
   char *plan = ctr_plan_path(uid, job, step);
   if (!plan) {
      slurm_error("ctr: out of memory");
      return -1;
   }
   if (!ctr_mp_path_ok(plan)) {
      slurm_error("ctr: --multi-prog: the plan file's path %s would not stay one word of %s; no task was started", plan, argv[0]);
      slurm_error("ctr: hint: give the plugin a stage_dir of letters, digits and /._+-=,:@ in plugstack.conf");
      free(plan);
      return -1;
   }
   char *conf = ctr_mp_rewrite(argv[1], plan);
   free(plan);
   if (!conf) {
      slurm_error("ctr: out of memory");
      return -1;
   }
   argv[1] = conf; /* srun's own array, which it sends as it is; srun never frees argv[1] */
   return 0;
}
