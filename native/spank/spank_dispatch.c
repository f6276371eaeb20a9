/* Routes each SPANK hook to the file for its context (see ctr_spank.h). */
#include "ctr_spank.h"

SPANK_PLUGIN(ctr, 1)

int slurm_spank_init(spank_t sp, int ac, char **av)
{
   if (ctr_conf_parse(ac, av) < 0)
      return -1;
   switch (spank_context()) {
   case S_CTX_LOCAL:
   case S_CTX_REMOTE:
   case S_CTX_ALLOCATOR:
      return ctr_options_register(sp);
   default:
      return 0;
   }
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
   if (spank_context() != S_CTX_LOCAL)
      return 0;
   if (ctr_options_from_env() < 0)
      return -1;
   return ctr_srun_plan(sp);
}

int slurm_spank_local_user_init(spank_t sp, int ac, char **av)
{
   return spank_context() == S_CTX_LOCAL ? ctr_srun_multi_prog(sp) : 0;
}

int slurm_spank_user_init(spank_t sp, int ac, char **av)
{
   return spank_remote(sp) ? ctr_stepd_user_init(sp) : 0;
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
   return spank_remote(sp) ? ctr_stepd_task_init(sp) : 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
   return spank_context() == S_CTX_REMOTE ? ctr_stepd_exit(sp) : 0;
}

int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
   return ctr_slurmd_job_epilog(sp);
}
