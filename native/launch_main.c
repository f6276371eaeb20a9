/* ctr-launch: main. Reads the plan, enters the namespaces, opens the image while the
 * host's paths are still in view, builds the container and becomes the command.
 * See launch.h for the boundary with the TypeScript planner. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "launch.h"

/* Opened inside the new mount namespace (a directory opened before unshare belongs to
 * the host's, and binding it fails with EINVAL), but before the scratch tmpfs can hide
 * it (an image under /tmp). */
int image_open(const struct plan *p)
{
   int flags = p->image_is_dir ? O_PATH | O_DIRECTORY | O_CLOEXEC : O_RDONLY | O_CLOEXEC;
   int fd = open(p->image, flags);
   if (fd < 0)
      DIE("cannot open image %s", p->image);
   return fd;
}

int main(int argc, char **argv)
{
   if (argc >= 1 && front_named(argv[0]))
      argv = front_main(argc, argv, &argc);
   report_init();
   struct plan p;
   plan_parse(&p, argc, argv);
   criu_open_host_root(&p);

   /* The launcher's signal state is the command's: start from defaults. */
   sigset_t none;
   sigemptyset(&none);
   sigprocmask(SIG_SETMASK, &none, NULL);
   signal(SIGCHLD, SIG_DFL);
   /* Resource limits: the container's cgroups, made while the host is in view. */
   cgroup_setup(&p);

   /* ctr build over a subordinate id range runs itself so (src/builder/userns.ts). */
   if (p.host_root) {
      ns_enter(&p);
      planner_reap();
      cgroup_join();
      env_compose(&p);
      exec_command(&p);
   }
   enum join_result joined = join_container(&p, p.n_words, p.words);
   if (joined != JOINED) {
      ns_enter(&p);
      mount_container(&p, image_open(&p));
   }
   /* The planner (--ask) exited while the container was built; reaped now, before the
    * command starts, so that it is not the command's child (nor the PID namespace's). */
   planner_reap();
   /* Not for ranks under a job launcher, even unjoined: see launch_init.c. A build's
    * %post in a job step is no rank: its PID namespace is how nothing of it survives. */
   if (p.pid_ns && (joined == JOIN_NO_STEP || (joined == JOIN_NOT_JOINED_IN_STEP && p.pid_ns_in_step)))
      pidns_supervise(&p);
   else if (joined == JOINED && p.join_instance)
      pidns_joined_supervise(p.ready_fd >= 0); /* into the instance's PID namespace (launch_init.c) */
   else if (p.checkpointable)
      DIE_PLAIN("--checkpointable needs a PID namespace of the container's own, which ranks in a job step don't have");
   /* A joined rank is in the holder's locked namespaces already (launch_join.c). */
   if (p.map_root && joined != JOINED)
      ns_lock_mounts(&p);
   cgroup_join();
   env_compose(&p);
   exec_command(&p);
}
