/* The plugin's options, for srun, sbatch and salloc, and the CTR_* variables that stand in
 * for them (an option given on the command line wins). Registered with
 * spank_option_register() in slurm_spank_init: a static spank_options[] table is only
 * seen by srun, and sbatch would reject the options. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctr_spank.h"

struct ctr_opts g_opts = { .stage = -1 };
struct ctr_conf g_conf = { .ctr = "ctr", .node = NULL, .stage_dir = "/tmp" };

enum { O_IMAGE, O_BIND, O_WORKDIR, O_ENV, O_WRITABLE_TMPFS, O_HOME, O_NO_HOME, O_NV, O_STAGE, O_REMAP_ROOT, O_ENTRYPOINT,
       O_NAME, O_MOUNT_HOME, O_COUNT };

static bool given[O_COUNT];

bool ctr_name_ok(const char *name)
{
   size_t n = strlen(name);
   if (n == 0 || n > 64 || name[0] == '.' || name[0] == '-')
      return false;
   return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int push(const char ***list, size_t *n, const char *v)
{
   const char **l = realloc(*list, (*n + 1) * sizeof(**list));
   if (!l)
      return -1;
   l[(*n)++] = v;
   *list = l;
   return 0;
}

static int yes_no(const char *v)
{
   if (!v || !*v)
      return 1;
   if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "on"))
      return 1;
   if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "off"))
      return 0;
   return -1;
}

static int set(int which, const char *arg)
{
   char *v = arg ? strdup(arg) : NULL;
   if (arg && !v)
      return -1;
   given[which] = true;
   switch (which) {
   case O_IMAGE: g_opts.image = v; break;
   case O_BIND: return push(&g_opts.binds, &g_opts.n_binds, v);
   case O_WORKDIR: g_opts.workdir = v; break;
   case O_ENV:
      if (!v || !strchr(v, '=')) {
         slurm_error("ctr: --ctr-env takes NAME=VALUE, not \"%s\"", arg ? arg : "");
         return -1;
      }
      return push(&g_opts.envs, &g_opts.n_envs, v);
   case O_WRITABLE_TMPFS: g_opts.writable_tmpfs = true; break;
   case O_HOME: g_opts.home = v; break;
   case O_NO_HOME: g_opts.no_home = true; given[O_MOUNT_HOME] = true; break;
   case O_MOUNT_HOME: g_opts.no_home = false; given[O_NO_HOME] = true; break;
   case O_NAME:
      if (!v || !ctr_name_ok(v)) {
         slurm_error("ctr: --ctr-name takes a name of 1 to 64 letters, digits, '.', '_' or '-', not \"%s\"%s", arg ? arg : "",
                     arg && strchr(arg, ':') ? " (pyxis's NAME:FLAG forms are not supported)" : "");
         return -1;
      }
      g_opts.name = v;
      break;
   case O_NV: g_opts.nv = true; break;
   case O_REMAP_ROOT: g_opts.remap_root = true; break;
   case O_ENTRYPOINT: g_opts.entrypoint = true; break;
   case O_STAGE:
      if (v && !strcasecmp(v, "sbcast"))
         g_opts.stage = STAGE_SBCAST;
      else if ((g_opts.stage = yes_no(v)) < 0) {
         slurm_error("ctr: --ctr-stage takes yes, no or sbcast, not \"%s\"", arg);
         return -1;
      }
      break;
   }
   return 0;
}

static int cb(int val, const char *optarg, int remote)
{
   return set(val, optarg);
}

static struct spank_option options[] = {
   { "ctr-image", "IMAGE", "[ctr] run the tasks in this SIF/SquashFS image or directory (env CTR_IMAGE)", 1, O_IMAGE, cb },
   { "ctr-bind", "SRC[:DST[:ro|rw]]", "[ctr] bind host paths, a comma list; repeatable (env CTR_BIND)", 1, O_BIND, cb },
   { "ctr-workdir", "DIR", "[ctr] working directory inside (env CTR_WORKDIR)", 1, O_WORKDIR, cb },
   { "ctr-env", "NAME=VALUE", "[ctr] set a variable inside; repeatable (env CTR_ENV)", 1, O_ENV, cb },
   { "ctr-writable-tmpfs", NULL, "[ctr] a tmpfs overlay over the image (env CTR_WRITABLE_TMPFS=1)", 0, O_WRITABLE_TMPFS, cb },
   { "ctr-home", "SRC[:DST]", "[ctr] bind SRC as the home directory (env CTR_HOME)", 1, O_HOME, cb },
   { "no-ctr-home", NULL, "[ctr] do not bind the home directory (env CTR_NO_HOME=1); as --no-ctr-mount-home", 0, O_NO_HOME, cb },
   { "ctr-mount-home", NULL, "[ctr] bind the home directory, the default (pyxis --container-mount-home; env CTR_MOUNT_HOME=1)", 0, O_MOUNT_HOME, cb },
   { "no-ctr-mount-home", NULL, "[ctr] do not bind the home directory (pyxis --no-container-mount-home; env CTR_MOUNT_HOME=0)", 0, O_NO_HOME, cb },
   { "ctr-name", "NAME", "[ctr] keep each node's container for the job's later steps, which join it (pyxis --container-name; env CTR_NAME)", 1, O_NAME, cb },
   { "ctr-nv", NULL, "[ctr] bind the NVIDIA driver, as ctr --nv (env CTR_NV=1)", 0, O_NV, cb },
   { "ctr-stage", "yes|no|sbcast", "[ctr] copy the image to node-local storage first (sbcast: by Slurm's broadcast); default yes (env CTR_STAGE)", 1, O_STAGE, cb },
   { "ctr-remap-root", NULL, "[ctr] be root (uid 0) inside, as pyxis --container-remap-root (env CTR_REMAP_ROOT=1)", 0, O_REMAP_ROOT, cb },
   { "ctr-entrypoint", NULL, "[ctr] run the image's runscript/entrypoint with the command as its arguments (env CTR_ENTRYPOINT=1)", 0, O_ENTRYPOINT, cb },
};

int ctr_options_register(spank_t sp)
{
   for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
      spank_err_t rc = spank_option_register(sp, &options[i]);
      if (rc != ESPANK_SUCCESS) {
         slurm_error("ctr: cannot register option --%s: %s", options[i].name, spank_strerror(rc));
         return -1;
      }
   }
   return 0;
}

/* srun's side: the CTR_* variables fill in what the command line didn't give. */
int ctr_options_from_env(void)
{
   static const struct { int which; const char *name; } vars[] = {
      { O_IMAGE, "CTR_IMAGE" }, { O_BIND, "CTR_BIND" }, { O_WORKDIR, "CTR_WORKDIR" },
      { O_ENV, "CTR_ENV" }, { O_HOME, "CTR_HOME" }, { O_STAGE, "CTR_STAGE" }, { O_NAME, "CTR_NAME" },
   };
   for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
      const char *v = getenv(vars[i].name);
      if (v && *v && !given[vars[i].which] && set(vars[i].which, v) < 0)
         return -1;
   }
   const char *v;
   if (!given[O_WRITABLE_TMPFS] && (v = getenv("CTR_WRITABLE_TMPFS")) && yes_no(v) == 1)
      g_opts.writable_tmpfs = true;
   if (!given[O_NO_HOME] && (v = getenv("CTR_NO_HOME")) && yes_no(v) == 1)
      g_opts.no_home = true;
   if (!given[O_NO_HOME] && (v = getenv("CTR_MOUNT_HOME")) && yes_no(v) >= 0)
      g_opts.no_home = yes_no(v) == 0;
   if (!given[O_NV] && (v = getenv("CTR_NV")) && yes_no(v) == 1)
      g_opts.nv = true;
   if (!given[O_REMAP_ROOT] && (v = getenv("CTR_REMAP_ROOT")) && yes_no(v) == 1)
      g_opts.remap_root = true;
   if (!given[O_ENTRYPOINT] && (v = getenv("CTR_ENTRYPOINT")) && yes_no(v) == 1)
      g_opts.entrypoint = true;
   return 0;
}

/* plugstack.conf: `required /path/ctr_spank.so [ctr=PATH] [node=PATH] [stage_dir=DIR]` */
int ctr_conf_parse(int ac, char **av)
{
   for (int i = 0; i < ac; i++) {
      if (!strncmp(av[i], "ctr=", 4))
         g_conf.ctr = av[i] + 4;
      else if (!strncmp(av[i], "node=", 5))
         g_conf.node = av[i] + 5;
      else if (!strncmp(av[i], "stage_dir=", 10))
         g_conf.stage_dir = av[i] + 10;
      else {
         slurm_error("ctr: unknown plugstack.conf argument \"%s\" (ctr=, node=, stage_dir=)", av[i]);
         return -1;
      }
   }
   if (g_conf.stage_dir[0] != '/') {
      slurm_error("ctr: stage_dir=%s is not an absolute path", g_conf.stage_dir);
      return -1;
   }
   return 0;
}
