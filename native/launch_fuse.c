/* SquashFS through FUSE, without fusermount.
 *
 * fusermount3 can't mount from inside a user namespace (it is setuid and drops what we
 * need), so we do its job: open /dev/fuse ourselves, mount a "fuse.squashfuse" file
 * system with fd=N (allowed: we hold CAP_SYS_ADMIN in the namespace that owns this mount
 * namespace), then start squashfuse_ll on /dev/fd/N (libfuse >= 3.3 takes a pre-opened
 * device that way). The server is our child with PDEATHSIG=SIGKILL: whichever process
 * ends up as its parent (we exec the command, so it is the command), when that dies the
 * server dies, the last reference to the mount namespace goes and the mount with it.
 *
 * Built with libsquashfuse (CTR_INPROCESS_FUSE, linked statically), the server is not
 * exec'd at all: the forked child runs squashfuse's low-level operations on the image
 * descriptor we already hold. That saves squashfuse_ll's exec and dynamic loading on
 * every launch, and since the child needs no path of the host's, the launcher can go on
 * building the container while the server starts. */
#define _GNU_SOURCE
#include <errno.h>
#include <float.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

static int open_fuse_device(void)
{
   int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
   if (fd >= 0)
      return fd;
   if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
      DIE_HINT("load the FUSE kernel module (modprobe fuse)", "cannot open /dev/fuse");
   if (errno == EACCES || errno == EPERM)
      DIE_HINT("/dev/fuse must be usable by users (mode 0666, as most distributions ship it)",
               "cannot open /dev/fuse");
   DIE("cannot open /dev/fuse");
}

bool g_fuse_quiet = false;

#ifdef CTR_INPROCESS_FUSE
#include <squashfuse/ll.h>

/* Zero-message opens. Each open(2) and close(2) of a file costs two round trips to a
 * server that keeps a handle per open file (OPEN and RELEASE): ~85 us each on this VM,
 * which made reading 1,400 cached files 7x slower than on the host. An image never
 * changes under us, so nothing needs a handle: when the kernel allows it (Linux >= 4.18
 * for files, >= 5.1 for directories), open and opendir answer ENOSYS, the kernel stops
 * asking, keeps file pages cached (FOPEN_KEEP_CACHE) and caches directory listings
 * (FOPEN_CACHE_DIR), and read and readdir find the inode from its number instead. */
static bool g_no_open, g_no_opendir;

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
   (void)userdata;
   g_no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
   g_no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
   if (g_no_open)
      fuse_reply_err(req, ENOSYS);
   else
      sqfs_ll_op_open(req, ino, fi);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
   if (g_no_opendir)
      fuse_reply_err(req, ENOSYS);
   else
      sqfs_ll_op_opendir(req, ino, fi);
}

/* For read and the listings, which find the inode by number: inode INO, which must be of
 * file type TYPE (S_IFREG or S_IFDIR), and a reply buffer of SIZE bytes. On failure the
 * request is answered with the error and NULL is returned. */
static char *inode_and_buffer(fuse_req_t req, fuse_ino_t ino, mode_t type, size_t size, sqfs_inode *inode)
{
   sqfs_ll *ll = fuse_req_userdata(req);
   char *buf = NULL;
   int err = 0;
   if (sqfs_ll_inode(ll, inode, ino) != SQFS_OK)
      err = ENOENT;
   else if ((inode->base.mode & S_IFMT) != type)
      err = type == S_IFDIR ? ENOTDIR : EISDIR;
   else if (!(buf = malloc(size)))
      err = ENOMEM;
   if (err)
      fuse_reply_err(req, err);
   return buf;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
   if (!g_no_open) {
      sqfs_ll_op_read(req, ino, size, off, fi);
      return;
   }
   sqfs_ll *ll = fuse_req_userdata(req);
   sqfs_inode inode;
   char *buf = inode_and_buffer(req, ino, S_IFREG, size, &inode);
   if (!buf)
      return;
   sqfs_off_t n = (sqfs_off_t)size;
   if (sqfs_read_range(&ll->fs, &inode, (sqfs_off_t)off, &n, buf) != SQFS_OK)
      fuse_reply_err(req, EIO);
   else
      fuse_reply_buf(req, buf, (size_t)n);
   free(buf);
}

/* The root is an overlay (launch_mount.c), which looks up its own user.overlay.* xattrs
 * on every directory and file it meets: one GETXATTR round trip each, doubling the cost
 * of a cold walk. An image without xattrs (most are) answers ENOSYS once, and the kernel
 * then answers "not supported" itself (listing xattrs still answers: none). */
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
   sqfs_ll *ll = fuse_req_userdata(req);
   if (ll->fs.xattr_info.xattr_ids == 0)
      fuse_reply_err(req, ENOSYS);
   else
      sqfs_ll_op_getxattr(req, ino, name, size);
}

/* libsquashfuse's stat of an inode; its header (stat.h) is not installed. */
sqfs_err sqfs_stat(sqfs *fs, sqfs_inode *inode, struct stat *st);

/* Listings by inode number (no directory handle: see op_open above). Each entry carries
 * its inode number and type, and the offset of the next entry, where the kernel resumes
 * once a buffer is full. With PLUS (READDIRPLUS) each entry also carries its attributes:
 * the kernel makes a dentry and an inode for each as it goes, so walking a tree costs
 * one round trip per directory instead of one LOOKUP per file as well (a cold stat of
 * Python's library: 190 requests instead of 1,740). Those entries are registered as
 * lookups are, and the kernel sends FORGET for them the same way. */
static void list_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
   sqfs_ll *ll = fuse_req_userdata(req);
   sqfs_inode inode;
   sqfs_dir dir;
   char *buf = inode_and_buffer(req, ino, S_IFDIR, size, &inode), *pos = buf;
   if (!buf)
      return;
   if (sqfs_dir_open(&ll->fs, &inode, &dir, off) != SQFS_OK) {
      free(buf);
      fuse_reply_err(req, EINVAL);
      return;
   }
   sqfs_name name;
   sqfs_dir_entry entry;
   sqfs_err err = SQFS_OK;
   sqfs_dentry_init(&entry, name);
   while (sqfs_dir_next(&ll->fs, &dir, &entry, &err)) {
      const char *n = sqfs_dentry_name(&entry);
      off_t next = (off_t)sqfs_dentry_next_offset(&entry);
      size_t len = plus ? fuse_add_direntry_plus(req, NULL, 0, n, NULL, 0) : fuse_add_direntry(req, NULL, 0, n, NULL, 0);
      if (len > size)
         break;
      if (plus) {
         struct fuse_entry_param e;
         memset(&e, 0, sizeof(e));
         sqfs_inode child;
         if (sqfs_inode_get(&ll->fs, &child, sqfs_dentry_inode(&entry)) != SQFS_OK ||
             sqfs_stat(&ll->fs, &child, &e.attr) != SQFS_OK) {
            err = SQFS_ERR;
            break;
         }
         e.attr_timeout = e.entry_timeout = DBL_MAX; /* as squashfuse's lookup: it never changes */
         e.ino = ll->ino_register(ll, &entry);
         e.attr.st_ino = e.ino;
         fuse_add_direntry_plus(req, pos, size, n, &e, next);
      } else {
         struct stat st;
         memset(&st, 0, sizeof(st));
         st.st_ino = ll->ino_fuse_num(ll, &entry);
         st.st_mode = sqfs_dentry_mode(&entry);
         fuse_add_direntry(req, pos, size, n, &st, next);
      }
      pos += len;
      size -= len;
   }
   /* Entries already registered must reach the kernel, which will forget them; the next
    * call, from the failing entry's offset, reports the error. */
   if (err != SQFS_OK && pos == buf)
      fuse_reply_err(req, EIO);
   else
      fuse_reply_buf(req, buf, (size_t)(pos - buf));
   free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
   (void)fi;
   list_dir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
   (void)fi;
   list_dir(req, ino, size, off, true);
}

/* libsquashfuse keeps one decompressed data block and three fragment blocks. Page faults
 * of a program starting up ask for 4 KiB to 128 KiB at scattered offsets that straddle
 * block boundaries, so the same blocks were decompressed again and again (busybox's
 * /bin/true: ~30 block decompressions for 23 reads). DATA_BLOCKS and FRAG_BLOCKS blocks
 * (128 KiB each with the default block size: at most 8 MiB) keep each block to one. */
enum { DATA_BLOCKS = 32, FRAG_BLOCKS = 32 };

static bool bigger_caches(sqfs *fs)
{
   sqfs_cache_destroy(&fs->data_cache);
   sqfs_cache_destroy(&fs->frag_cache);
   return sqfs_block_cache_init(&fs->data_cache, DATA_BLOCKS) == SQFS_OK &&
          sqfs_block_cache_init(&fs->frag_cache, FRAG_BLOCKS) == SQFS_OK;
}

static void serve_in_process(const struct plan *p, int fuse_fd, int image_fd) __attribute__((noreturn));
static void serve_in_process(const struct plan *p, int fuse_fd, int image_fd)
{
   sqfs_ll *ll = calloc(1, sizeof(*ll));
   if (!ll || sqfs_init(&ll->fs, image_fd, (size_t)p->offset) != SQFS_OK || !bigger_caches(&ll->fs) ||
       sqfs_ll_init(ll) != SQFS_OK) {
      fprintf(stderr, "ctr: error: image %s: no SquashFS file system that can be read at offset %llu\n",
              p->image, p->offset);
      _exit(EXIT_LAUNCH_FAILED);
   }
   struct fuse_lowlevel_ops ops;
   memset(&ops, 0, sizeof(ops));
   ops.lookup = sqfs_ll_op_lookup;
   ops.forget = sqfs_ll_op_forget;
   ops.getattr = sqfs_ll_op_getattr;
   ops.readlink = sqfs_ll_op_readlink;
   ops.init = op_init;
   ops.open = op_open;
   ops.create = sqfs_ll_op_create;
   ops.read = op_read;
   ops.release = sqfs_ll_op_release;
   ops.opendir = op_opendir;
   ops.readdir = op_readdir;
   ops.readdirplus = op_readdirplus;
   ops.releasedir = sqfs_ll_op_releasedir;
   ops.statfs = stfs_ll_op_statfs;
   ops.listxattr = sqfs_ll_op_listxattr;
   ops.getxattr = op_getxattr;
   char *argv[] = { "ctr-fuse", NULL };
   struct fuse_args args = FUSE_ARGS_INIT(1, argv);
   struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), ll);
   char dev[32];
   snprintf(dev, sizeof(dev), "/dev/fd/%d", fuse_fd); /* libfuse takes the open device */
   if (!se || fuse_session_mount(se, dev) != 0)
      _exit(EXIT_LAUNCH_FAILED);
   _exit(fuse_session_loop(se) < 0 ? EXIT_LAUNCH_FAILED : 0);
}
#endif

pid_t fuse_mount_squashfs(const struct plan *p, const char *mnt, int image_fd)
{
   int fuse_fd = open_fuse_device();
   char opts[256];
   snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u", fuse_fd,
            (unsigned)getuid(), (unsigned)getgid());
   if (mount("ctr", mnt, "fuse.squashfuse", MS_NOSUID | MS_NODEV | MS_RDONLY, opts) < 0)
      DIE("cannot mount FUSE file system on %s", mnt);

   /* Opened here: the child must not look up paths, since with the built-in server we
    * pivot away from the host's root while it starts. */
   int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
   pid_t parent = getpid();
   pid_t pid = fork();
   if (pid < 0)
      DIE("cannot fork the FUSE server");
   if (pid == 0) {
      /* The server must never outlive whoever runs the container. */
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
         _exit(EXIT_LAUNCH_FAILED);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      prctl(PR_SET_NAME, fuse_in_process(p) ? "ctr-fuse" : "squashfuse_ll");
      if (nul >= 0) {
         dup2(nul, 0);
         dup2(nul, 1);
         if (g_fuse_quiet)
            dup2(nul, 2);
      }
#ifdef CTR_INPROCESS_FUSE
      if (!p->squashfuse_exec)
         serve_in_process(p, fuse_fd, image_fd);
#endif
      if (!p->squashfuse)
         die_code(EXIT_LAUNCH_FAILED, "cannot mount image %s: squashfuse_ll not found, and this launcher has "
                  "no built-in FUSE server (install squashfuse, or build with libsquashfuse-dev)", p->image);
      if (fcntl(fuse_fd, F_SETFD, 0) < 0 || fcntl(image_fd, F_SETFD, 0) < 0)
         _exit(EXIT_LAUNCH_FAILED);
      char offset[64], image[64], dev[64];
      snprintf(offset, sizeof(offset), "offset=%llu", p->offset);
      snprintf(image, sizeof(image), "/proc/self/fd/%d", image_fd);
      snprintf(dev, sizeof(dev), "/dev/fd/%d", fuse_fd);
      char *argv[] = { "squashfuse_ll", "-f", "-o", offset, image, dev, NULL };
      execv(p->squashfuse, argv);
      fprintf(stderr, "ctr: error: cannot run %s: %m\n", p->squashfuse);
      _exit(EXIT_LAUNCH_FAILED);
   }
   close(fuse_fd);
   if (nul >= 0)
      close(nul);
   debug("FUSE server started (%s), pid %d, offset %llu", fuse_in_process(p) ? "in process" : p->squashfuse,
         (int)pid, p->offset);
   return pid;
}

bool fuse_in_process(const struct plan *p)
{
#ifdef CTR_INPROCESS_FUSE
   return !p->squashfuse_exec;
#else
   (void)p;
   return false;
#endif
}

/* Wait until the server answers: the kernel holds every request on a new FUSE connection
 * until the server has replied to INIT, so one stat of the root is both the readiness
 * check and the proof that the image opened. */
void fuse_wait_ready(const struct plan *p, const char *mnt, pid_t pid)
{
   struct stat st;
   if (stat(mnt, &st) < 0) {
      int err = errno, status;
      if (waitpid(pid, &status, WNOHANG) == pid)
         DIE_PLAIN("cannot mount image %s: the FUSE server %s %d (is the SquashFS valid?)",
                   p->image, WIFSIGNALED(status) ? "was killed by signal" : "exited with",
                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      die_errno(err, NULL, "cannot mount image %s", p->image);
   }
   debug("FUSE server answering");
}
