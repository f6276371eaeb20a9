/* ctr-launch: main. Reads the plan, opens the image while the host's paths are still
 * in view, enters the namespaces, builds the container and becomes the command.
 * See launch.h for the boundary with the TypeScript planner. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "launch.h"

int main(int argc, char **argv)
{
   struct plan p;
   plan_parse(&p, argc, argv);

   /* The launcher's signal state is the command's: start from defaults. */
   sigset_t none;
   sigemptyset(&none);
   sigprocmask(SIG_SETMASK, &none, NULL);
   signal(SIGCHLD, SIG_DFL);

   int flags = p.image_is_dir ? O_PATH | O_DIRECTORY | O_CLOEXEC : O_RDONLY | O_CLOEXEC;
   int image_fd = open(p.image, flags);
   if (image_fd < 0)
      DIE("cannot open image %s", p.image);

   ns_enter(&p);
   mount_container(&p, image_fd);
   env_compose(&p);
   exec_command(&p);
}
