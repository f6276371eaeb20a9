/* srun --ctr-image=IMAGE --multi-prog CONF: each task's command from its line of CONF,
 * every task of a node in the node's one container.
 *
 * What Slurm 22.05 does (and why the plan file goes into CONF's text):
 *  - srun reads CONF whole into the step's argv[1] (launch_slurm.c: _load_multi), so the
 *    step's argv is [CONF, CONF's text, ARGS...]; the nodes never read the file.
 *  - slurmstepd builds each task's argv from that text when it creates the step
 *    (slurmstepd_job.c: stepd_step_rec_create → multi_prog.c: multi_prog_get_argv), into
 *    an array per task, before any SPANK hook; S_JOB_ARGV hands plugins the step's argv,
 *    never a task's, so task_init cannot put the plan file in front of a task's command
 *    as it does without --multi-prog.
 *  - srun's local_user_init runs after the step exists and before srun sends argv
 *    (srun_job.c: pre_launch_srun_job, then launch_p_step_launch takes srun's argv as
 *    it is then): there the plugin puts the plan file's path in front of each line's
 *    command. Slurm's own execve (task.c: exec_task, after task_init, TaskProlog,
 *    TMPDIR, user limits) then runs `ctr-launch --plan PLAN CMD ARGS...`, %t and %o
 *    expanded by slurmstepd as always. The plan ends with "--": the task's own argv is
 *    the command.
 *  - A first line, a comment to slurmstepd, names the plan file srun wrote in: the node
 *    checks it is its own and that every line starts with it, before any task starts,
 *    so no task of such a step runs outside the container.
 * The lines are walked exactly as multi_prog_get_argv walks them (strtok on "\n", so
 * empty lines don't count; a line ending in '\' makes the next one its continuation,
 * comment lines included; leading space skipped; '#' starts a comment line; the ranks
 * end at the first space). */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctr_spank.h"

/* The first line srun adds: "<mark><plan file>\n". */
#define MARK "# ctr --multi-prog: each command below runs through the plan file "

/* The plan file's path goes into CONF unquoted: only characters slurmstepd's argument
 * parser takes literally (no space, %, \ or '). */
bool ctr_mp_path_ok(const char *path)
{
   if (*path != '/')
      return false;
   for (const char *c = path; *c; c++)
      if (!isalnum((unsigned char)*c) && !strchr("/._+-=,:@", *c))
         return false;
   return true;
}

/* Calls ENTRY for each line that is a task entry, with where its ranks end; returns the
 * first nonzero ENTRY result (or 0). LINE_NO is the line's number in the text. */
typedef int entry_fn(void *ctx, const char *line, const char *ranks_end, int line_no);

static int walk(const char *text, entry_fn *entry, void *ctx)
{
   bool last_break = false;
   int line_no = 0;
   for (const char *s = text; *s; ) {
      const char *e = strchr(s, '\n');
      size_t len = e ? (size_t)(e - s) : strlen(s);
      line_no++;
      if (len > 0) { /* strtok skips empty lines */
         bool brk = s[len - 1] == '\\';
         bool cont = last_break;
         last_break = brk;
         const char *p = s, *end = s + len;
         while (!cont && p < end && isspace((unsigned char)*p))
            p++;
         if (!cont && p < end && *p != '#') {
            while (p < end && !isspace((unsigned char)*p))
               p++;
            if (p < end) { /* else slurmstepd refuses the line itself */
               int r = entry(ctx, s, p, line_no);
               if (r)
                  return r;
            }
         }
      }
      s += len + (e ? 1 : 0);
   }
   return 0;
}

struct rewrite {
   const char *plan;
   char *out;  /* where the next byte goes */
   const char *from; /* the input not copied yet */
};

static int put_plan(void *ctx, const char *line, const char *ranks_end, int line_no)
{
   struct rewrite *w = ctx;
   size_t n = (size_t)(ranks_end - w->from);
   memcpy(w->out, w->from, n);
   w->out += n;
   *w->out++ = ' ';
   w->out = stpcpy(w->out, w->plan);
   w->from = ranks_end;
   return 0;
}

static int count(void *ctx, const char *line, const char *ranks_end, int line_no)
{
   ++*(size_t *)ctx;
   return 0;
}

char *ctr_mp_rewrite(const char *text, const char *plan)
{
   size_t entries = 0;
   walk(text, count, &entries);
   size_t plen = strlen(plan), tlen = strlen(text);
   char *out = malloc(strlen(MARK) + plen + 1 + tlen + entries * (plen + 1) + 1);
   if (!out)
      return NULL;
   char *p = stpcpy(stpcpy(stpcpy(out, MARK), plan), "\n");
   struct rewrite w = { plan, p, text };
   walk(text, put_plan, &w);
   strcpy(w.out, w.from);
   return out;
}

static int starts_with_plan(void *ctx, const char *line, const char *ranks_end, int line_no)
{
   const char *plan = ctx, *p = ranks_end;
   while (isspace((unsigned char)*p) && *p != '\n')
      p++;
   size_t n = strlen(plan);
   return !strncmp(p, plan, n) && isspace((unsigned char)p[n]) && p[n] != '\n' ? 0 : line_no;
}

bool ctr_mp_marked(const char *text)
{
   return !strncmp(text, MARK, strlen(MARK));
}

int ctr_mp_check(const char *text, const char *plan, char **named)
{
   *named = NULL;
   if (!ctr_mp_marked(text))
      return -1;
   const char *at = text + strlen(MARK), *nl = strchr(at, '\n');
   if (!nl)
      return -1;
   if ((size_t)(nl - at) != strlen(plan) || strncmp(at, plan, (size_t)(nl - at))) {
      *named = strndup(at, (size_t)(nl - at) > 300 ? 300 : (size_t)(nl - at));
      return -1;
   }
   return walk(nl + 1, starts_with_plan, (void *)plan);
}
