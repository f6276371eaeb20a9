/* Assemble the container's file system and pivot into it.
 *
 * Steps, in order (each one's kernel quirk is noted where it is done):
 *   1. a tmpfs scratch root on SCRATCH_BASE, pivoted into, so the host is at /oldroot;
 *   2. the image at /img: squashfuse (SquashFS, at its offset) or a read-only bind (dir);
 *   3. mount points missing from the read-only image are made in /skel, a tmpfs layer
 *      that an overlay puts above the image;
 *   4. the root: an overlay /skel:/img (read-only; always for a FUSE image, else only
 *      when the skeleton is used), /img itself for a directory image that lacks no mount
 *      point, or with --writable-tmpfs an overlay with /skel as its upper layer;
 *   5. binds, tmpfs and generated files, in plan order;
 *   6. pivot_root into the root, detach the scratch root, chdir. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch.h"

#define OLDROOT "/oldroot"
#define IMG "/img"
#define SKEL "/skel"
#define WORK "/work"
#define NEWROOT "/newroot"
#define RUN "/run"

static int pivot_root(const char *new_root, const char *put_old)
{
   return (int)syscall(SYS_pivot_root, new_root, put_old);
}

/* A read-only remount of a bind must repeat the flags the mount already has: the kernel
 * locks nosuid/nodev/noexec/atime flags of mounts inherited from a more privileged
 * namespace, and MS_REMOUNT|MS_BIND|MS_RDONLY alone would try to clear them (EPERM). */
static void remount_ro(const char *target)
{
   struct statvfs sv;
   if (statvfs(target, &sv) < 0)
      DIE("cannot stat mount %s", target);
   unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
   if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
   if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
   if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
   if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
   if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
   if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
   if (mount(NULL, target, NULL, flags, NULL) < 0)
      DIE("cannot make %s read-only", target);
}

/* Create a mount point: a directory, or an empty file when the source is not one. */
static void make_mountpoint(const char *path, bool dir)
{
   char *copy = xasprintf("%s", path);
   mkdir_p(dirname(copy), 0755);
   free(copy);
   if (dir) {
      if (mkdir(path, 0755) < 0 && errno != EEXIST)
         DIE("cannot create mount point %s", path);
   } else {
      int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0)
         DIE("cannot create mount point %s", path);
      close(fd);
   }
}

struct target {
   char *rel;   /* destination resolved inside the image, "/..." */
   bool dir;    /* the mount point is a directory */
   bool skip;   /* optional bind whose source is missing */
};

static bool source_is_dir(const struct bind *b, bool *missing)
{
   struct stat st;
   *missing = false;
   if (b->kind == BIND_TMPFS)
      return true;
   if (b->kind != BIND_DIR_OR_FILE)
      return false;
   char *src = xasprintf(OLDROOT "%s", b->src);
   if (stat(src, &st) < 0) {
      if (errno == ENOENT && b->optional) {
         *missing = true;
         free(src);
         return false;
      }
      DIE("bind source %s", b->src);
   }
   free(src);
   return S_ISDIR(st.st_mode);
}

/* Is REL at or below a tmpfs listed earlier in the plan? Those are made at mount time. */
static bool under_earlier_tmpfs(const struct plan *p, size_t i, const struct target *t)
{
   for (size_t j = 0; j < i; j++) {
      if (p->binds[j].kind != BIND_TMPFS || t[j].skip)
         continue;
      size_t n = strlen(t[j].rel);
      if (!strncmp(t[i].rel, t[j].rel, n) && (t[i].rel[n] == '/' || t[i].rel[n] == '\0' || n == 1))
         return true;
   }
   return false;
}

/* Steps 3: resolve every destination in the image; those the image lacks go in /skel.
 * Returns whether anything was put there. */
static bool plan_mountpoints(const struct plan *p, struct target *t)
{
   bool skel_used = false;
   for (size_t i = 0; i < p->n_binds; i++) {
      bool missing;
      t[i].dir = source_is_dir(&p->binds[i], &missing);
      t[i].skip = missing;
      t[i].rel = resolve_in_root(IMG, p->binds[i].dst);
      if (t[i].skip || under_earlier_tmpfs(p, i, t))
         continue;
      char *in_img = xasprintf(IMG "%s", t[i].rel);
      if (!path_exists(in_img) && p->writable_image) {
         make_mountpoint(in_img, t[i].dir);
      } else if (!path_exists(in_img)) {
         char *in_skel = xasprintf(SKEL "%s", t[i].rel);
         make_mountpoint(in_skel, t[i].dir);
         debug("mount point %s made in the skeleton layer", t[i].rel);
         free(in_skel);
         skel_used = true;
      }
      free(in_img);
   }
   return skel_used;
}

/* passwd/group: the image's own file, plus our line unless its name is there already. */
static char *merged_db(const char *root, const struct target *t, const char *line)
{
   char *path = xasprintf("%s%s", root, t->rel);
   size_t len = 0;
   char *old = read_file(path, &len);
   free(path);
   if (!old)
      old = xasprintf("%s", "");
   size_t name_len = strcspn(line, ":");
   for (char *l = old; *l; ) {
      if (!strncmp(l, line, name_len) && l[name_len] == ':')
         return old;
      char *nl = strchr(l, '\n');
      if (!nl)
         break;
      l = nl + 1;
   }
   char *merged = xasprintf("%s%s%s\n", old, (len && old[len - 1] != '\n') ? "\n" : "", line);
   free(old);
   return merged;
}

static void do_mount(const struct plan *p, size_t i, const struct target *t, const char *root)
{
   const struct bind *b = &p->binds[i];
   char *target = xasprintf("%s%s", root, t->rel);
   if (!path_exists(target))
      make_mountpoint(target, t->dir); /* below a tmpfs, or a writable overlay */
   switch (b->kind) {
   case BIND_DIR_OR_FILE: {
      char *src = xasprintf(OLDROOT "%s", b->src);
      /* MS_REC: the host's submounts come along, and a non-recursive bind of a tree
       * with locked submounts (inherited from the host) fails with EINVAL. */
      if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) < 0)
         DIE("cannot bind %s to %s", b->src, b->dst);
      if (b->ro)
         remount_ro(target);
      free(src);
      break;
   }
   case BIND_TMPFS: {
      char opts[32];
      snprintf(opts, sizeof(opts), "mode=%04o", (unsigned)b->mode);
      if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
         DIE("cannot mount tmpfs on %s", b->dst);
      break;
   }
   case BIND_FILE_CONTENT:
   case BIND_FILE_MERGE: {
      char *content = b->kind == BIND_FILE_MERGE ? merged_db(root, t, b->content)
                                                 : xasprintf("%s", b->content);
      char *file = xasprintf(RUN "/file%zu", i);
      write_file(file, content, strlen(content));
      if (mount(file, target, NULL, MS_BIND, NULL) < 0)
         DIE("cannot bind generated file to %s", b->dst);
      remount_ro(target);
      free(file);
      free(content);
      break;
   }
   }
   debug("mounted %s", b->dst);
   free(target);
}

void mount_container(const struct plan *p, int image_fd)
{
   /* Step 1. The scratch root. pivot_root wants new_root to be a mount point, and the
    * mount tree to be private (done when entering the namespace). */
   if (mount("ctr", SCRATCH_BASE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
      DIE("cannot mount scratch tmpfs on %s", SCRATCH_BASE);
   const char *dirs[] = { OLDROOT, IMG, SKEL, WORK, NEWROOT, RUN };
   for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
      char *d = xasprintf(SCRATCH_BASE "%s", dirs[i]);
      if (mkdir(d, 0755) < 0)
         DIE("cannot create %s", d);
      free(d);
   }

   /* Step 2, before leaving the host root (an exec'd squashfuse_ll loads its libraries
    * from it). The image is reached through its descriptor, since an image under /tmp is
    * hidden by the scratch tmpfs by now. */
   if (p->image_is_dir) {
      char *src = xasprintf("/proc/self/fd/%d", image_fd);
      if (mount(src, SCRATCH_BASE IMG, NULL, MS_BIND | MS_REC, NULL) < 0)
         DIE("cannot bind image directory %s", p->image);
      if (!p->writable_image)
         remount_ro(SCRATCH_BASE IMG);
      free(src);
   }
   pid_t server = p->image_is_dir ? 0 : fuse_mount_squashfs(p, SCRATCH_BASE IMG, image_fd);
   close(image_fd);
   /* An exec'd squashfuse_ll still needs the host's root (its libraries), so wait for it
    * before pivoting; the built-in server needs no path, so pivot while it starts. */
   if (server && !fuse_in_process(p))
      fuse_wait_ready(p, SCRATCH_BASE IMG, server);

   if (chdir(SCRATCH_BASE) < 0)
      DIE("cannot enter %s", SCRATCH_BASE);
   if (pivot_root(".", OLDROOT + 1) < 0)
      DIE("cannot pivot into the scratch root");
   if (chdir("/") < 0)
      DIE("cannot enter the scratch root");
   if (server && fuse_in_process(p))
      fuse_wait_ready(p, IMG, server);

   /* Steps 3 and 4. */
   struct target *t = xcalloc(p->n_binds, sizeof(*t));
   bool skel_used = plan_mountpoints(p, t);
   const char *root = IMG;
   /* A FUSE image always goes under an overlay, even with nothing in the skeleton: the
    * overlay answers ioctls itself, where FUSE sends every one to the server (Python's
    * open() asks isatty of every file it opens: one round trip each, which made reading
    * Python's library 5x slower than through the overlay; bench/files.ts). */
   if (p->writable_tmpfs || skel_used || server) {
      /* userxattr: overlayfs in a user namespace must keep its metadata in user.*
       * xattrs (trusted.* needs real root). With no upper layer the overlay is
       * read-only, which is what an image without --writable-tmpfs must be. */
      char *opts = p->writable_tmpfs
                      ? xasprintf("lowerdir=" IMG ",upperdir=" SKEL ",workdir=" WORK ",userxattr")
                      : xasprintf("lowerdir=" SKEL ":" IMG ",userxattr");
      if (mount("overlay", NEWROOT, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
         DIE("cannot mount overlay (%s)", opts);
      free(opts);
      root = NEWROOT;
   }

   /* Step 5. */
   for (size_t i = 0; i < p->n_binds; i++)
      if (!t[i].skip)
         do_mount(p, i, &t[i], root);

   /* Step 6. pivot_root(".", ".") stacks the old root on top of the new one at "/";
    * detaching it leaves only the container (crun's do_pivot; no put_old directory is
    * needed inside the image). The FUSE mount stays alive under the overlay. */
   if (chdir(root) < 0)
      DIE("cannot enter container root");
   if (pivot_root(".", ".") < 0)
      DIE("cannot pivot into the container root");
   if (umount2(".", MNT_DETACH) < 0)
      DIE("cannot detach the scratch root");
   const char *dir = p->chdir ? p->chdir : "/";
   if (chdir(dir) < 0)
      DIE("cannot change to directory %s inside the container", dir);
   for (size_t i = 0; i < p->n_binds; i++)
      free(t[i].rel);
   free(t);
}
