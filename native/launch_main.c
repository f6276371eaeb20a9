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

int main(int argc, char **argv)
{
   struct plan p;
   plan_parse(&p, argc, argv);

   /* The launcher's signal state is the command's: start from defaults. */
   sigset_t none;
   sigemptyset(&none);
   sigprocmask(SIG_SETMASK, &none, NULL);
   signal(SIGCHLD, SIG_DFL);

   ns_enter(&p);

   /* Opened inside the new mount namespace (a directory opened before unshare belongs
    * to the host's, and binding it fails with EINVAL), but before the scratch tmpfs
    * can hide it (an image under /tmp). */
   int flags = p.image_is_dir ? O_PATH | O_DIRECTORY | O_CLOEXEC : O_RDONLY | O_CLOEXEC;
   int image_fd = open(p.image, flags);
   if (image_fd < 0)
      DIE("cannot open image %s", p.image);
   mount_container(&p, image_fd);
   env_compose(&p);
   exec_command(&p);
}
