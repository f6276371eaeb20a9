/* The job epilog (slurmd, as root, once per node when the job ends): remove the job's
 * node-local directory, which holds staged images. It is the user's directory, so it is
 * opened without following links and only if the job's user owns it; it holds only
 * files the plugin wrote, so nothing deeper is removed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctr_spank.h"

int ctr_slurmd_job_epilog(spank_t sp)
{
   uid_t uid;
   uint32_t job;
   if (spank_get_item(sp, S_JOB_UID, &uid) || spank_get_item(sp, S_JOB_ID, &job))
      return 0;
   char *name = ctr_sprintf("ctr.%u.%u", (unsigned)uid, (unsigned)job);
   int root = open(g_conf.stage_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
   int dfd = root >= 0 && name ? openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
   struct stat st;
   if (dfd < 0 || fstat(dfd, &st) < 0 || st.st_uid != uid) {
      if (dfd >= 0)
         close(dfd);
      if (root >= 0)
         close(root);
      free(name);
      return 0;
   }
   DIR *d = fdopendir(dfd);
   struct dirent *de;
   while (d && (de = readdir(d)))
      if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
         if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT)
            slurm_error("ctr: job %u: cannot remove %s/%s/%s: %m", (unsigned)job, g_conf.stage_dir, name, de->d_name);
   if (d)
      closedir(d);
   if (unlinkat(root, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
      slurm_error("ctr: job %u: cannot remove %s/%s: %m", (unsigned)job, g_conf.stage_dir, name);
   close(root);
   free(name);
   return 0;
}
