/* ctr's SPANK plugin: `srun --ctr-image=IMAGE CMD` runs every task of the step in a
 * container, through the C launcher alone.
 *
 * Where the work happens (one file per context, routed by spank_dispatch.c):
 *
 *   srun (local, once per step, as the user)          spank_srun.c
 *       runs `ctr plan` (Node) once, and hands the plan to the step in its environment
 *       (CTR_PLAN_ENV, hex of the plan file's bytes): fails before any task starts when
 *       the image or a bind source is wrong.
 *   slurmstepd (remote, once per node per step)        spank_stepd.c: user_init
 *       as the user: takes the plan out of the environment, copies the image to
 *       node-local storage (staging, unless turned off), writes the plan file for this
 *       step with this node's rank count and the step's command.
 *   each task (remote, in the forked task, as the user) spank_stepd.c: task_init
 *       checks what this node must have (image, launcher, bind sources), naming node and
 *       task when something is missing, then points the task's argv[0] at the plan file:
 *       Slurm's own execve then runs `ctr-launch --plan FILE ARG...`, after everything
 *       Slurm does to a task (MPI/PMIx environment, limits, TMPDIR, task prolog).
 *       Every task of the node joins one container (launch_join.c).
 *   srun (local, once per step, after the step exists)   spank_srun.c, spank_multiprog.c
 *       under --multi-prog: puts the plan file in front of each command of the
 *       configuration srun sends, which slurmstepd splits into the tasks' argv.
 *   slurmstepd at step end (remote, root)              spank_stepd.c: exit
 *       removes the plan file.
 *   slurmd job epilog (root)                           spank_slurmd.c
 *       removes the job's node-local directory (staged images).
 *
 * The plugin never runs Node on a compute node. */
#ifndef CTR_SPANK_H
#define CTR_SPANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <slurm/spank.h>

/* The plan, from srun to the step:
 *   "3:<stage 0|1|2><cwd 0|1><nv 0|1>:<name>:<bcast>:<plan>:<argv>", each of the last four
 *   in hex: stage 2 is sbcast (the copy srun broadcast to every node is at <bcast>); cwd 1:
 *   the plan's --chdir is srun's working directory (which a node may lack); nv 1: the
 *   node plans again with --nv (`ctr` with <argv>, NUL-separated), as its driver is its
 *   own; <name>: --ctr-name, the node's container kept for the job's later steps. */
/* A SLURM_ name: srun passes SLURM_* variables to the step even with --export=NONE
 * (which drops everything else of the user's environment). */
#define CTR_PLAN_ENV "SLURM_CTR_SPANK_PLAN"

struct ctr_opts {
   const char *image;
   const char **binds;    /* each a comma list, as given */
   size_t n_binds;
   const char **envs;     /* NAME=VALUE */
   size_t n_envs;
   const char *workdir;
   const char *home;
   bool writable_tmpfs;
   bool no_home;
   bool nv;               /* --ctr-nv: ctr plan --nv */
   int stage;             /* -1 unset, 0 off, 1 on */
   bool remap_root;       /* --ctr-remap-root: fake root (ctr --fakeroot) */
   bool entrypoint;       /* --ctr-entrypoint: the image's runscript, the command its arguments */
   const char *name;      /* --ctr-name: a container kept on each node for the job's later steps */
};

/* --ctr-stage */
enum { STAGE_NO = 0, STAGE_COPY = 1, STAGE_SBCAST = 2 };

/* A --ctr-name: what pyxis's --container-name takes, without its ":flag" forms. */
bool ctr_name_ok(const char *name);

/* plugstack.conf arguments: ctr=PATH node=PATH stage_dir=DIR */
struct ctr_conf {
   const char *ctr;       /* the ctr command (default: "ctr" on PATH) */
   const char *node;      /* run ctr with this node binary (when ctr is a .js file) */
   const char *stage_dir; /* node-local directory for staged images and plan files */
};

extern struct ctr_opts g_opts;
extern struct ctr_conf g_conf;

/* spank_options.c */
int ctr_options_register(spank_t sp);
int ctr_options_from_env(void);
int ctr_conf_parse(int ac, char **av);

/* spank_srun.c (local) */
int ctr_srun_plan(spank_t sp);
int ctr_srun_multi_prog(spank_t sp);

/* spank_multiprog.c: --multi-prog's configuration text (the step's argv[1]) */
bool ctr_mp_path_ok(const char *path);                 /* fit to go into it unquoted */
char *ctr_mp_rewrite(const char *text, const char *plan); /* PLAN in front of each command */
bool ctr_mp_marked(const char *text);                  /* rewritten by srun's plugin */
/* 0: every command starts with PLAN; -1: not rewritten for PLAN (*NAMED: the plan file
 * it names, malloc'd, or NULL); else the number of the first line that doesn't. */
int ctr_mp_check(const char *text, const char *plan, char **named);

/* spank_stepd.c (remote) */
int ctr_stepd_user_init(spank_t sp);
int ctr_stepd_task_init(spank_t sp);
int ctr_stepd_exit(spank_t sp);

/* spank_slurmd.c (job epilog) */
int ctr_slurmd_job_epilog(spank_t sp);

/* srun's sbcast copy of a job's image on every node: <stage_dir>/ctr.<uid>.<job>.bcast.<name> */
#define CTR_BCAST_MARK ".bcast."

/* spank_util.c */
char *ctr_job_dir(uid_t uid, uint32_t job);   /* <stage_dir>/ctr.<uid>.<job> */
char *ctr_plan_path(uid_t uid, uint32_t job, uint32_t step); /* <job dir>/step<step>.plan */
char *ctr_hex_encode(const unsigned char *buf, size_t len);
unsigned char *ctr_hex_decode(const char *hex, size_t *len);
char *ctr_read_file(const char *path, size_t *len);
int ctr_write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode);
char *ctr_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
