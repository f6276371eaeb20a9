/* The job epilog (slurmd, as root, once per node when the job ends): stop the holders of
 * the job's named containers (--ctr-name: they have left their step, to serve the job's
 * later ones) and the job's Apptainer-style instances (`ctr instance start` in a job
 * ends with the job, as Apptainer's do), then remove the job's node-local directory, which holds staged images,
 * and what srun's sbcast left for the job on nodes that ran none of its steps. The
 * directory is the user's, so it is opened without following links and only if the
 * job's user owns it; it holds only files the plugin wrote, so nothing deeper is removed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctr_spank.h"

/* What process PID (under /proc, PROC its directory fd) of UID with SLURM_JOB_ID=JOB in
 * its environment is of ctr's: 'h' a container holder (launch_join.c: named
 * containers, instances), 'i' an instance's keeper (`ctr instance start` in the job:
 * APPTAINER_INSTANCE set, the leader of its session, src/instance/commands.ts), else 0.
 * Both have left the job's steps (setsid), which proctrack/linuxproc and pgid do not
 * follow. */
static int job_process(int proc, const char *pid, uid_t uid, uint32_t job)
{
   int d = openat(proc, pid, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
   struct stat st;
   bool in_job = false, instance = false;
   if (d < 0)
      return 0;
   char comm[32] = "", stat[512] = "", want[64];
   int fd;
   if (fstat(d, &st) < 0 || st.st_uid != uid) {
      close(d);
      return 0;
   }
   if ((fd = openat(d, "comm", O_RDONLY | O_CLOEXEC)) >= 0) {
      ssize_t n = read(fd, comm, sizeof(comm) - 1);
      close(fd);
      comm[n > 0 ? n : 0] = '\0';
   }
   if ((fd = openat(d, "stat", O_RDONLY | O_CLOEXEC)) >= 0) {
      ssize_t n = read(fd, stat, sizeof(stat) - 1);
      close(fd);
      stat[n > 0 ? n : 0] = '\0';
   }
   if ((fd = openat(d, "environ", O_RDONLY | O_CLOEXEC)) >= 0) {
      int w = snprintf(want, sizeof(want), "SLURM_JOB_ID=%u", (unsigned)job);
      static char env[1 << 16];
      ssize_t n = read(fd, env, sizeof(env) - 1);
      close(fd);
      if (n > 0)
         env[n] = '\0';
      for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(env + i) + 1) {
         if (!strncmp(env + i, want, (size_t)w) && env[i + w] == '\0')
            in_job = true;
         if (!strncmp(env + i, "APPTAINER_INSTANCE=", 19))
            instance = true;
      }
   }
   close(d);
   /* stat: "PID (COMM) STATE PPID PGRP SESSION ..." */
   char *r = strrchr(stat, ')');
   int sid = 0;
   if (r && sscanf(r + 1, " %*c %*d %*d %d", &sid) != 1)
      sid = 0;
   if (!in_job)
      return 0;
   if (!strcmp(comm, "ctr-holder\n"))
      return 'h';
   return instance && sid == atoi(pid) ? 'i' : 0;
}

static void stop_holders(uid_t uid, uint32_t job)
{
   int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
   DIR *d = proc >= 0 ? fdopendir(dup(proc)) : NULL;
   struct dirent *de;
   while (d && (de = readdir(d)))
      if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
         switch (job_process(proc, de->d_name, uid, job)) {
         case 'h': /* its FUSE server and namespace keeper die with it (PDEATHSIG) */
            kill(atoi(de->d_name), SIGKILL);
            break;
         case 'i': /* the keeper's session: its startscript and what that started */
            kill(-atoi(de->d_name), SIGKILL);
            break;
         }
   if (d)
      closedir(d);
   if (proc >= 0)
      close(proc);
}

/* sbcast copies of the job's images that no step took (ctr.UID.JOB.bcast.*). */
static void remove_broadcasts(int root, uid_t uid, uint32_t job)
{
   char *prefix = ctr_sprintf("ctr.%u.%u" CTR_BCAST_MARK, (unsigned)uid, (unsigned)job);
   DIR *d = prefix ? fdopendir(dup(root)) : NULL;
   struct dirent *de;
   struct stat st;
   while (d && (de = readdir(d)))
      if (!strncmp(de->d_name, prefix, strlen(prefix)) && fstatat(root, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISREG(st.st_mode) && st.st_uid == uid)
         unlinkat(root, de->d_name, 0);
   if (d)
      closedir(d);
   free(prefix);
}

int ctr_slurmd_job_epilog(spank_t sp)
{
   uid_t uid;
   uint32_t job;
   if (spank_get_item(sp, S_JOB_UID, &uid) || spank_get_item(sp, S_JOB_ID, &job))
      return 0;
   stop_holders(uid, job);
   char *name = ctr_sprintf("ctr.%u.%u", (unsigned)uid, (unsigned)job);
   int root = open(g_conf.stage_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
   if (root >= 0)
      remove_broadcasts(root, uid, job);
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
