/* Image binds: -B data.sqfs:/data:image-src=/sub (Apptainer's), --image-bind in the plan.
 *
 * The file is a bare SquashFS or a SIF (the planner found the partition's offset); it is
 * opened, checked and served as the image is, by a FUSE server of its own
 * (launch_fuse.c), mounted at SCRATCH_BASE/ibindN before the pivot. Its content is as
 * hostile as any image's: SUBPATH is resolved within that mount (openat2
 * RESOLVE_IN_ROOT), so a symlink "sub -> /home/you" or "../../.." in the image leads to
 * a place inside it, never to the launcher's tree. What is bound is a read-only clone of
 * the mount at that path; the server is killed and reaped with the others
 * (helpers_stop). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

static int g_image_fd[MAX_IMAGE_BINDS];  /* the files, opened before the scratch tmpfs */
static int g_source_fd[MAX_IMAGE_BINDS]; /* SUBPATH in each mounted image, O_PATH */
static pid_t g_servers[MAX_IMAGE_BINDS];

void ibind_open(const struct plan *p)
{
   for (size_t i = 0; i < p->n_binds; i++) {
      const struct bind *b = &p->binds[i];
      if (b->kind != BIND_IMAGE)
         continue;
      g_image_fd[b->image_n] = open(b->src, O_RDONLY | O_CLOEXEC);
      if (g_image_fd[b->image_n] < 0)
         DIE("cannot open bind image %s", b->src);
   }
}

void ibind_start(const struct plan *p)
{
   for (size_t i = 0; i < p->n_binds; i++) {
      const struct bind *b = &p->binds[i];
      if (b->kind != BIND_IMAGE)
         continue;
      char dir[64];
      snprintf(dir, sizeof(dir), SCRATCH_BASE "/ibind%zu", b->image_n);
      if (mkdir(dir, 0755) < 0)
         DIE("cannot create %s", dir);
      struct plan q = *p;
      q.image = b->src;
      q.offset = b->offset;
      g_servers[b->image_n] = fuse_mount_squashfs(&q, dir, g_image_fd[b->image_n]);
      close(g_image_fd[b->image_n]);
      fuse_wait_ready(&q, dir, g_servers[b->image_n]);

      int root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (root < 0)
         DIE("cannot open %s", dir);
      int fd = open_in_root(root, b->subpath, O_PATH);
      if (fd < 0)
         die_errno(errno, NULL, "bind image %s: %s in the image", b->src, b->subpath);
      close(root);
      g_source_fd[b->image_n] = fd;
      debug("image bind %s:%s at %s", b->src, b->subpath, dir);
   }
}

/* Whether the bound path is a directory (the mount point made for it is one). */
int ibind_source(const struct bind *b)
{
   struct stat st;
   if (fstat(g_source_fd[b->image_n], &st) < 0)
      DIE("bind image %s: image-src %s", b->src, b->subpath);
   return S_ISDIR(st.st_mode);
}

int ibind_tree(const struct bind *b)
{
   int fd = g_source_fd[b->image_n];
   int tree = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
   if (tree < 0)
      DIE("cannot bind %s:%s to %s", b->src, b->subpath, b->dst);
   struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
   if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
      DIE("cannot make %s read-only", b->dst);
   close(fd);
   g_source_fd[b->image_n] = -1;
   return tree;
}

void ibind_stop(void)
{
   for (size_t i = 0; i < MAX_IMAGE_BINDS; i++)
      if (g_servers[i] > 0) {
         kill(g_servers[i], SIGKILL);
         while (waitpid(g_servers[i], NULL, 0) < 0 && errno == EINTR)
            ;
         g_servers[i] = 0;
      }
}

void ibind_reaped(pid_t pid)
{
   for (size_t i = 0; i < MAX_IMAGE_BINDS; i++)
      if (pid == g_servers[i])
         g_servers[i] = 0;
}
