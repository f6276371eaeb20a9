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
 *   6. pivot_root into the root, detach the scratch root, chdir.
 *
 * Destinations are paths the image gets a say in: a symlink in the image can point
 * anywhere, and by step 5 the tree holds earlier binds (the host's /proc among them, with
 * its magic links /proc/self/root...). So step 3 resolves them textually inside the image
 * alone, and step 5 opens each one under the container's root with openat2
 * RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS and mounts onto that descriptor (open_tree,
 * move_mount): nothing the image names can lead a mount, a new mount point or a file we
 * read outside the container, and mount points are only ever created on file systems ctr
 * made itself (the skeleton, its tmpfs mounts), never in a host directory bound in. */
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
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

/* /etc/passwd and /etc/group of an image are read whole: bounded, so a sparse 16 GiB
 * file can't take the node's memory (16 MiB holds ~200,000 entries). */
#define DB_MAX (16u << 20)

#define OLDROOT "/oldroot"
#define IMG "/img"
#define SKEL "/skel"
#define WORK "/work"
#define NEWROOT "/newroot"
#define RUN "/run"

pid_t g_fuse_server;

/* The FUSE server dies with its parent (PDEATHSIG), but then waits as a zombie for PID 1
 * to reap it; a parent that is still ours when the container ends (the supervising
 * launcher, the join holder) ends it and reaps it first, so nothing of ctr is left. */
void fuse_server_reap(void)
{
   if (g_fuse_server <= 0)
      return;
   kill(g_fuse_server, SIGKILL);
   while (waitpid(g_fuse_server, NULL, 0) < 0 && errno == EINTR)
      ;
   g_fuse_server = 0;
}

static int pivot_root(const char *new_root, const char *put_old)
{
   return (int)syscall(SYS_pivot_root, new_root, put_old);
}

/* Read-only, recursively, keeping every other flag (mount_setattr changes only what it
 * is told: the nosuid/nodev/noexec the kernel locks on mounts inherited from the host
 * stay as they are). FD is a mount (detached or attached) or AT_FDCWD with PATH. */
static void make_ro(int fd, const char *path, const char *what)
{
   struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
   unsigned flags = AT_RECURSIVE | (path[0] ? 0 : AT_EMPTY_PATH);
   if (mount_setattr(fd, path, flags, &attr, sizeof(attr)) < 0)
      DIE("cannot make %s read-only", what);
}

static unsigned long long mount_id(int fd)
{
   struct statx stx;
   if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 || !(stx.stx_mask & STATX_MNT_ID))
      DIE("cannot identify a mount");
   return stx.stx_mnt_id;
}

/* The mounts ctr made inside the container tree (its root, its tmpfs mounts): the only
 * places where step 5 may create a mount point. */
struct ours {
   unsigned long long id[64];
   size_t n;
   unsigned long long image_root; /* --no-mountpoints: the user's own image, never ours */
};

static void ours_add(struct ours *o, int fd)
{
   if (o->n < sizeof(o->id) / sizeof(*o->id))
      o->id[o->n++] = mount_id(fd);
}

static bool ours_has(const struct ours *o, int fd)
{
   unsigned long long id = mount_id(fd);
   for (size_t i = 0; i < o->n; i++)
      if (o->id[i] == id)
         return true;
   return false;
}

/* Open destination REL under ROOTFD as the container will see it (O_PATH), creating
 * what is missing of it (directories, and the last one as a directory or an empty file)
 * where ctr's own mounts allow. Returns -1 with errno set when it can't: EXDEV when the
 * mount point would have to be made in a host directory bound in. */
#define NOT_OURS "a mount point would have to be made in a host directory bound into the container"

static int open_target(int rootfd, const char *rel, bool dir, const struct ours *o, const char *dst)
{
   int fd = open_in_root(rootfd, rel, O_PATH);
   if (fd >= 0 || errno != ENOENT)
      return fd;
   char prefix[PATH_MAX] = "";
   const char *p = rel;
   int parent = open_in_root(rootfd, "/", O_PATH | O_DIRECTORY);
   while (*p) {
      while (*p == '/')
         p++;
      const char *end = strchrnul(p, '/');
      size_t n = (size_t)(end - p), pl = strlen(prefix);
      if (pl + n + 2 > sizeof(prefix))
         DIE_PLAIN("path too long: %s", rel);
      prefix[pl] = '/';
      memcpy(prefix + pl + 1, p, n);
      prefix[pl + 1 + n] = '\0';
      bool last = !*end || !end[strspn(end, "/")];
      int next = open_in_root(rootfd, prefix, O_PATH);
      if (next < 0 && errno == ENOENT) {
         char name[NAME_MAX + 1];
         if (n > NAME_MAX)
            DIE_PLAIN("path component too long in %s", rel);
         memcpy(name, p, n);
         name[n] = '\0';
         if (!ours_has(o, parent)) {
            /* ENOENT: missing in the user's writable image; EXDEV: reported as NOT_OURS */
            errno = o->image_root && mount_id(parent) == o->image_root ? ENOENT : EXDEV;
            close(parent);
            return -1;
         }
         int r;
         if (last && !dir) {
            r = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (r >= 0)
               close(r);
         } else
            r = mkdirat(parent, name, 0755);
         if (r < 0)
            DIE("cannot create mount point %s", dst);
         next = open_in_root(rootfd, prefix, O_PATH);
      }
      close(parent);
      if (next < 0)
         return -1;
      parent = next;
      p = end;
   }
   return parent;
}

/* An image file the launcher reads itself (passwd, group): regular, bounded, and never a
 * FIFO or device that would block or stream forever. NULL when it is missing. */
static char *read_image_db(int rootfd, const char *rel, const char *what, size_t *len)
{
   int fd = open_in_root(rootfd, rel, O_RDONLY | O_NONBLOCK);
   if (fd < 0) {
      if (errno == ENOENT)
         return NULL;
      DIE("cannot read the image's %s", what);
   }
   char name[64];
   snprintf(name, sizeof(name), "the image's %s", what);
   char *buf = read_bounded(fd, DB_MAX, name, len);
   close(fd);
   return buf;
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
   if (b->kind == BIND_IMAGE)
      return ibind_source(b);
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
      /* A default bind that a symlink in the image sends onto a place already mounted
       * (an image's /var/tmp -> /tmp): skipped, or the host's /var/tmp would hide the
       * host's /tmp bound there before it. */
      for (size_t j = 0; j < i && p->binds[i].optional && !t[i].skip; j++)
         if (!t[j].skip && strcmp(t[i].rel, p->binds[i].dst) && !strcmp(t[i].rel, t[j].rel)) {
            debug("skipping %s: a symlink in the image leads it to %s, which %s is mounted on",
                  p->binds[i].dst, t[i].rel, p->binds[j].dst);
            t[i].skip = true;
         }
      if (t[i].skip || under_earlier_tmpfs(p, i, t))
         continue;
      char *in_img = xasprintf(IMG "%s", t[i].rel);
      if (!path_exists(in_img) && p->no_mountpoints) {
         /* The user's own image (ctr exec -w) is left as it is: do_mount finds the place
          * there (through an earlier mount, such as /tmp's) or says that it can't. */
      } else if (!path_exists(in_img) && p->writable_image) {
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
static char *merged_db(int rootfd, const struct target *t, const char *what, const char *line)
{
   size_t len = 0;
   char *old = read_image_db(rootfd, t->rel, what, &len);
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

/* Attach the detached mount TREE at TARGET (both descriptors). */
static void attach(int tree, int target, const char *dst)
{
   if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
      DIE("cannot mount on %s", dst);
   close(tree);
}

static void do_mount(const struct plan *p, size_t i, const struct target *t, int rootfd, struct ours *o)
{
   const struct bind *b = &p->binds[i];
   int target = open_target(rootfd, t->rel, t->dir, o, b->dst);
   if (target < 0) {
      bool in_image = errno == ENOENT && p->no_mountpoints;
      const char *why = errno == EXDEV ? NOT_OURS
                      : in_image ? "it does not exist in the image, and --writable makes no mount point in it"
                                 : strerror(errno);
      /* e.g. an image whose /etc/localtime leads outside it; with --writable, a default
       * mount (home, cwd, --contain's tmpfs mounts, /etc/passwd...) whose place the image
       * lacks, as Apptainer skips it; only a bind the user gave (-B) fails */
      if (b->optional || (in_image && b->kind != BIND_DIR_OR_FILE)) {
         warn("skipping %s: its place in the image (%s) can't be used: %s", b->dst, t->rel, why);
         return;
      }
      die_errno(0, errno == EXDEV ? "bind it somewhere else, or create it there first"
                   : in_image ? "create it in the image first, or leave out --writable" : NULL,
                "cannot mount on %s (%s in the image): %s", b->dst, t->rel, why);
   }
   int tree = -1;
   switch (b->kind) {
   case BIND_DIR_OR_FILE: {
      char *src = xasprintf(OLDROOT "%s", b->src);
      /* AT_RECURSIVE: the host's submounts come along, and a non-recursive bind of a
       * tree with locked submounts (inherited from the host) fails with EINVAL. */
      tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
      if (tree < 0)
         DIE("cannot bind %s to %s", b->src, b->dst);
      if (b->ro)
         make_ro(tree, "", b->dst);
      free(src);
      break;
   }
   case BIND_TMPFS: {
      char mode[16];
      snprintf(mode, sizeof(mode), "%04o", (unsigned)b->mode);
      int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
      if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "mode", mode, 0) < 0 ||
          fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
          (tree = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)) < 0)
         DIE("cannot mount tmpfs on %s", b->dst);
      close(fs);
      break;
   }
   case BIND_IMAGE:
      tree = ibind_tree(b);
      break;
   case BIND_FILE_CONTENT:
   case BIND_FILE_MERGE: {
      const char *what = strcmp(b->dst, "/etc/group") ? "/etc/passwd" : "/etc/group";
      char *content = b->kind == BIND_FILE_MERGE ? merged_db(rootfd, t, what, b->content)
                                                 : xasprintf("%s", b->content);
      char *file = xasprintf(RUN "/file%zu", i);
      write_file(file, content, strlen(content));
      tree = open_tree(AT_FDCWD, file, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      if (tree < 0)
         DIE("cannot bind generated file to %s", b->dst);
      make_ro(tree, "", b->dst);
      free(file);
      free(content);
      break;
   }
   }
   attach(tree, target, b->dst);
   if (b->kind == BIND_TMPFS) {
      int fd = open_in_root(rootfd, t->rel, O_PATH);
      if (fd < 0)
         DIE("cannot open tmpfs at %s", b->dst);
      ours_add(o, fd);
      close(fd);
   }
   close(target);
   debug("mounted %s", b->dst);
}

void mount_container(const struct plan *p, int image_fd)
{
   /* Step 1. The scratch root. pivot_root wants new_root to be a mount point, and the
    * mount tree to be private (done when entering the namespace). */
   struct overlay_upper ov;
   overlay_open(p, &ov); /* before the scratch root can hide it (an overlay under /tmp) */
   ibind_open(p);        /* likewise the image binds' files */
   /* With --writable-tmpfs the scratch tmpfs holds the overlay's upper layer, so its size
    * is the quota for the container's changes (ENOSPC inside past it). */
   char scratch_opts[64] = "mode=0755";
   if (p->writable_tmpfs && p->tmpfs_size)
      snprintf(scratch_opts, sizeof(scratch_opts), "mode=0755,size=%llu", p->tmpfs_size);
   if (mount("ctr", SCRATCH_BASE, "tmpfs", MS_NOSUID | MS_NODEV, scratch_opts) < 0)
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
         make_ro(AT_FDCWD, SCRATCH_BASE IMG, p->image);
      free(src);
   }
   pid_t server = p->image_is_dir ? 0 : fuse_mount_squashfs(p, SCRATCH_BASE IMG, image_fd);
   g_fuse_server = server;
   close(image_fd);
   /* An exec'd squashfuse_ll still needs the host's root (its libraries), so wait for it
    * before pivoting; the built-in server needs no path, so pivot while it starts. */
   if (server && !fuse_in_process(p))
      fuse_wait_ready(p, SCRATCH_BASE IMG, server);
   /* fuse2fs is exec'd too: it needs the host's root (launch_overlay.c). */
   overlay_start(p, &ov);
   ibind_start(p); /* each image bind's image at SCRATCH_BASE/ibindN, as the lower layers */
   bool upper = ov.upper_fd >= 0, fuse_root = upper && (p->overlay_image || p->tmpfs_fuse);
   if (fuse_root) {
      /* Exec'd too, and it opens its lower layers at once: the image must answer. */
      if (server && fuse_in_process(p))
         fuse_wait_ready(p, SCRATCH_BASE IMG, server);
      char *lowers = overlay_lowers(p, SCRATCH_BASE);
      char *all = xasprintf(SCRATCH_BASE SKEL ":%s" SCRATCH_BASE IMG, lowers);
      overlay_fuse_root(p, &ov, all, SCRATCH_BASE NEWROOT);
      free(all);
      free(lowers);
   }

   if (chdir(SCRATCH_BASE) < 0)
      DIE("cannot enter %s", SCRATCH_BASE);
   if (pivot_root(".", OLDROOT + 1) < 0)
      DIE("cannot pivot into the scratch root");
   if (chdir("/") < 0)
      DIE("cannot enter the scratch root");
   if (server && fuse_in_process(p) && !fuse_root)
      fuse_wait_ready(p, IMG, server);
   if (server)
      fuse_prefetch(p, IMG); /* the command's file, read while the rest is built */

   /* Steps 3 and 4. */
   struct target *t = xcalloc(p->n_binds, sizeof(*t));
   bool skel_used = plan_mountpoints(p, t);
   if (fuse_root)
      overlay_fuse_root_go(p, NEWROOT);
   const char *root = IMG;
   /* A FUSE image always goes under an overlay, even with nothing in the skeleton: the
    * overlay answers ioctls itself, where FUSE sends every one to the server (Python's
    * open() asks isatty of every file it opens: one round trip each, which made reading
    * Python's library 5x slower than through the overlay; bench/files.ts). */
   if (fuse_root) {
      root = NEWROOT;
   } else if (p->writable_tmpfs || upper || skel_used || server || p->n_lowers) {
      /* userxattr: overlayfs in a user namespace must keep its metadata in user.*
       * xattrs (trusted.* needs real root). With no upper layer the overlay is
       * read-only, which is what an image without --writable-tmpfs must be. */
      /* A kept upper layer (--overlay-*) has the skeleton as a lower layer instead: the
       * mount points it holds are this run's, not for keeping. */
      char *kept = upper ? overlay_upper_opts(&ov) : NULL, *lowers = overlay_lowers(p, "");
      char *opts = p->writable_tmpfs
                      ? xasprintf("lowerdir=%s" IMG ",upperdir=" SKEL ",workdir=" WORK ",userxattr", lowers)
                   : upper ? xasprintf("lowerdir=" SKEL ":%s" IMG ",%s,userxattr", lowers, kept)
                           : xasprintf("lowerdir=" SKEL ":%s" IMG ",userxattr", lowers);
      free(kept);
      free(lowers);
      if (p->checkpointable) { /* stat agrees with /proc/PID/maps: see launch_criu.c */
         char *x = xasprintf("%s,xino=on", opts);
         free(opts);
         opts = x;
      }
      if (mount("overlay", NEWROOT, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
         DIE("cannot mount overlay (%s)", opts);
      free(opts);
      root = NEWROOT;
   }
   overlay_close(&ov);

   /* Step 5. */
   int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
   if (rootfd < 0)
      DIE("cannot open the container root");
   struct ours o = { .n = 0 };
   if (p->no_mountpoints)
      o.image_root = mount_id(rootfd);
   else
      ours_add(&o, rootfd);
   for (size_t i = 0; i < p->n_binds; i++)
      if (!t[i].skip)
         do_mount(p, i, &t[i], rootfd, &o);
   close(rootfd);

   /* Step 6. pivot_root(".", ".") stacks the old root on top of the new one at "/";
    * detaching it leaves only the container (crun's do_pivot; no put_old directory is
    * needed inside the image). The FUSE mount stays alive under the overlay. */
   if (chdir(root) < 0)
      DIE("cannot enter container root");
   if (pivot_root(".", ".") < 0)
      DIE("cannot pivot into the container root");
   if (umount2(".", MNT_DETACH) < 0)
      DIE("cannot detach the scratch root");
   enter_workdir(p);
   for (size_t i = 0; i < p->n_binds; i++)
      free(t[i].rel);
   free(t);
}

/* The working directory inside. A default one (--chdir-optional: the planner's guess, such
 * as the home directory under --contain --no-home) may be missing from the image; then
 * warn and start in /, as Apptainer does. One the user asked for must exist. */
void enter_workdir(const struct plan *p)
{
   const char *dir = p->chdir ? p->chdir : "/";
   if (chdir(dir) == 0)
      return;
   if (!p->chdir_optional || (errno != ENOENT && errno != ENOTDIR))
      DIE("cannot change to directory %s inside the container", dir);
   warn("working directory %s does not exist in the container: starting in /", dir);
   if (chdir("/") < 0)
      DIE("cannot change to / inside the container");
   if (setenv("PWD", "/", 1) < 0)
      DIE("cannot set PWD");
}
