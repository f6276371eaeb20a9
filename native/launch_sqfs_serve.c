/* The built-in FUSE server: libfuse's low-level operations over the bounded readers of
 * launch_sqfs_dir.c and launch_sqfs_read.c, run by the child launch_fuse.c forks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"

#ifdef CTR_INPROCESS_FUSE
#include "launch_sqfs.h"
#include "plan_words.h"

int sqd_loop_mt(struct fuse_session *se, unsigned threads); /* launch_sqfs_loop.c */

/* Worker threads. A node's shared container (the ranks of a job step: launch_join.c)
 * gets one per CPU this process may use, at most MAX_THREADS: its ranks start up at
 * once, each reading its libraries and Python modules through this one server, and
 * with one worker their decompression queues on one core. A container of one command
 * gets one: a single reader sends one request at a time, so more workers only add
 * thread wake-ups (measured: 3-4 ms more CPU per start-up). CTR_FUSE_THREADS=N sets N.
 *
 * Why libsquashfuse's own multi-threaded loop crashed in process: 0.1.105's caches are
 * not thread-safe (cache.h says so: "No thread safety"). sqfs_data_cache and
 * sqfs_md_cache hand out a pointer to a cached block with no reference held, and
 * sqfs_cache_add evicts slots round-robin, disposing (freeing) the block there: a
 * second thread's miss frees the block a first thread is still copying from, and two
 * misses at once race on the slot index itself (four walkers over a shared cache: EIO,
 * then the server dies and reads fail with ENOTCONN). Upstream made its caches locked
 * and reference-counted later (squashfuse PR #70, 0.2.0; on by default in 0.3.0);
 * Debian bookworm ships 0.1.105. The reading underneath is safe in parallel: pread on
 * the shared descriptor, and decompressors that keep no state between calls (zlib's
 * uncompress, lzma_stream_buffer_decode, lzo1x_decompress_safe, LZ4_decompress_safe,
 * ZSTD_decompress). So data and fragment blocks go through a cache of our own with
 * references (launch_sqfs_blocks.c), decompressed in parallel, and the metadata cache
 * that libsquashfuse's inode reader uses is one for all workers, used only under a lock
 * (launch_sqfs_dir.c). An earlier version gave each worker a metadata cache of its own:
 * the kernel hands one reader's requests to the workers in turn, so each decompressed
 * the same inode and directory blocks, and 2 workers made a cold stat of Python's
 * library 2.5x slower than 1. Our per-file block list (launch_sqfs_read.c) is per
 * thread. MD_BLOCKS: 1 MiB of 8 KiB metadata blocks, as the tables of an image of some
 * 10,000 files (libsquashfuse's 8 made a cold walk decompress blocks again and again). */
enum { MAX_THREADS = 8, MD_BLOCKS = 128 };

/* The image, as every worker sees it (nothing in it changes once open but the caches). */
#define FS(ll) (&(ll)->fs)

/* Every operation goes through the bounded readers of launch_sqfs_*.c: none of
 * libsquashfuse's own ll operations that parse the image (lookup, readdir, getattr,
 * read, readlink, xattrs) is used, since each trusts sizes from it (launch_sqfs.h). The
 * inode number is libsquashfuse's 64-bit mapping: the inode reference itself. */
_Static_assert(sizeof(fuse_ino_t) >= SQFS_INODE_ID_BYTES, "inode references must fit in fuse_ino_t");

static int ino_inode(fuse_req_t req, fuse_ino_t ino, sqfs_inode *inode)
{
   sqfs_ll *ll = fuse_req_userdata(req);
   return sqd_inode(FS(ll), ll->ino_sqfs(ll, ino), inode);
}

/* Zero-message opens. Each open(2) and close(2) of a file costs two round trips to a
 * server that keeps a handle per open file (OPEN and RELEASE): ~85 us each on this VM,
 * which made reading 1,400 cached files 7x slower than on the host. An image never
 * changes under us, so nothing needs a handle: when the kernel allows it (Linux >= 4.18
 * for files, >= 5.1 for directories), open and opendir answer ENOSYS, the kernel stops
 * asking, keeps file pages cached (FOPEN_KEEP_CACHE) and caches directory listings
 * (FOPEN_CACHE_DIR), and read and readdir find the inode from its number. Where the
 * kernel can't, the handle is still not needed: read and readdir go by number anyway. */
static bool g_no_open, g_no_opendir;

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
   (void)userdata;
   /* Reads in flight at once, before the kernel makes the next reader wait: the
    * launcher queues a command's whole file (fuse_prefetch), 128 KiB a request. */
   conn->max_background = 64;
   g_no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
   g_no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
}

static void open_as(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, mode_t type, bool no_open)
{
   sqfs_inode inode;
   int err = ino_inode(req, ino, &inode);
   if (no_open)
      fuse_reply_err(req, ENOSYS);
   else if (err)
      fuse_reply_err(req, err);
   else if ((inode.base.mode & S_IFMT) != type)
      fuse_reply_err(req, type == S_IFDIR ? ENOTDIR : EISDIR);
   else if (type == S_IFREG && (fi->flags & O_ACCMODE) != O_RDONLY)
      fuse_reply_err(req, EROFS);
   else {
      fi->fh = 0;
      fi->keep_cache = 1;
      fuse_reply_open(req, fi);
   }
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
   open_as(req, ino, fi, S_IFREG, g_no_open);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
   open_as(req, ino, fi, S_IFDIR, g_no_opendir);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
   fuse_reply_err(req, 0);
}

/* The attributes the kernel gets for inode reference REF (its FUSE number INO). */
static int entry_param(sqfs_ll *ll, uint64_t ref, struct fuse_entry_param *e)
{
   sqfs_inode inode;
   memset(e, 0, sizeof(*e));
   int err = sqd_inode(FS(ll), ref, &inode);
   if (!err)
      err = sqd_stat(FS(ll), &inode, &e->attr);
   e->attr_timeout = e->entry_timeout = DBL_MAX; /* an image never changes */
   e->ino = ll->ino_fuse(ll, ref);
   e->attr.st_ino = e->ino;
   return err;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
   sqfs_ll *ll = fuse_req_userdata(req);
   struct fuse_entry_param e;
   int err = entry_param(ll, ll->ino_sqfs(ll, ino), &e);
   if (err)
      fuse_reply_err(req, err);
   else
      fuse_reply_attr(req, &e.attr, DBL_MAX);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
   sqfs_ll *ll = fuse_req_userdata(req);
   sqfs_inode dir;
   struct sqd_entry found;
   struct fuse_entry_param e;
   int err = ino_inode(req, parent, &dir), r = err ? -err : sqd_lookup(FS(ll), &dir, name, &found);
   if (r < 0) {
      fuse_reply_err(req, -r);
   } else if (r == 0) {
      /* A zero inode: "not there", and the kernel may remember that (negative entry). */
      memset(&e, 0, sizeof(e));
      e.attr_timeout = e.entry_timeout = DBL_MAX;
      fuse_reply_entry(req, &e);
   } else if ((err = entry_param(ll, found.inode, &e))) {
      fuse_reply_err(req, err);
   } else {
      fuse_reply_entry(req, &e);
   }
}

/* Into this thread's buffer, kept from one read to the next: a buffer per read (128 KiB)
 * is fresh memory each time, page faults and all. */
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
   static __thread char *buf;
   static __thread size_t cap;
   (void)fi;
   sqfs_ll *ll = fuse_req_userdata(req);
   sqfs_inode inode;
   int err = ino_inode(req, ino, &inode);
   if (!err && !S_ISREG(inode.base.mode))
      err = EISDIR;
   if (!err && off < 0)
      err = EINVAL;
   if (!err && size > cap) {
      char *b = realloc(buf, size);
      if (b)
         buf = b, cap = size;
      else
         err = ENOMEM;
   }
   if (!err)
      err = sqd_read(FS(ll), &inode, (uint64_t)off, &size, buf);
   if (err)
      fuse_reply_err(req, err);
   else
      fuse_reply_buf(req, buf, size);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
   sqfs_ll *ll = fuse_req_userdata(req);
   sqfs_inode inode;
   char *target = NULL;
   int err = ino_inode(req, ino, &inode);
   if (!err)
      err = sqd_readlink(FS(ll), &inode, &target);
   if (err)
      fuse_reply_err(req, err);
   else
      fuse_reply_readlink(req, target);
   free(target);
}

/* Listings by inode number (no directory handle: see op_open above). Each entry carries
 * its inode number and type, and the offset of the next entry, where the kernel resumes
 * once a buffer is full. With PLUS (READDIRPLUS) each entry also carries its attributes:
 * the kernel makes a dentry and an inode for each as it goes, so walking a tree costs
 * one round trip per directory instead of one LOOKUP per file as well (a cold stat of
 * Python's library: 190 requests instead of 1,740). */
static void list_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
   sqfs_ll *ll = fuse_req_userdata(req);
   sqfs_inode inode;
   struct sqd_dir dir;
   struct sqd_entry entry;
   char *buf = NULL, *pos;
   int err = ino_inode(req, ino, &inode), r = 0;
   if (!err && off < 0)
      err = EINVAL;
   if (!err)
      err = sqd_open(FS(ll), &inode, (uint64_t)off, &dir);
   if (!err && !(buf = malloc(size)))
      err = ENOMEM;
   if (err) {
      fuse_reply_err(req, err);
      return;
   }
   pos = buf;
   while ((r = sqd_next(&dir, &entry)) > 0) {
      const char *n = entry.name;
      off_t next = (off_t)entry.next_offset;
      size_t len = plus ? fuse_add_direntry_plus(req, NULL, 0, n, NULL, 0) : fuse_add_direntry(req, NULL, 0, n, NULL, 0);
      if (len > size)
         break;
      if (plus) {
         struct fuse_entry_param e;
         if ((err = entry_param(ll, entry.inode, &e))) {
            r = -err;
            break;
         }
         fuse_add_direntry_plus(req, pos, size, n, &e, next);
      } else {
         struct stat st;
         memset(&st, 0, sizeof(st));
         st.st_ino = ll->ino_fuse(ll, entry.inode);
         st.st_mode = sqfs_mode(entry.type);
         fuse_add_direntry(req, pos, size, n, &st, next);
      }
      pos += len;
      size -= len;
   }
   /* Entries already listed must reach the kernel (with PLUS it counts them as looked
    * up); the next call, from the failing entry's offset, reports the error. */
   if (r < 0 && pos == buf)
      fuse_reply_err(req, -r);
   else
      fuse_reply_buf(req, buf, (size_t)(pos - buf));
   free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
   list_dir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
   list_dir(req, ino, size, off, true);
}

/* The end of getxattr and listxattr: the error, the size asked for (no buffer), or the
 * bytes; BUF is freed. */
static void reply_xattr(fuse_req_t req, int err, char *buf, size_t size)
{
   if (err)
      fuse_reply_err(req, err);
   else if (!buf)
      fuse_reply_xattr(req, size);
   else
      fuse_reply_buf(req, buf, size);
   free(buf);
}

/* The root is an overlay (launch_mount.c), which looks up its own user.overlay.* xattrs
 * on every directory and file it meets: one GETXATTR round trip each, doubling the cost
 * of a cold walk. An image without xattrs (most are) answers ENOSYS once, and the kernel
 * then answers "not supported" itself (listing xattrs still answers: none). */
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
   sqfs_ll *ll = fuse_req_userdata(req);
   sqfs_inode inode;
   char *buf = NULL;
   int err = ll->fs.xattr_info.xattr_ids == 0 ? ENOSYS : ino_inode(req, ino, &inode);
   if (!err && size && !(buf = malloc(size)))
      err = ENOMEM;
   if (!err)
      err = sqd_getxattr(FS(ll), &inode, name, buf, &size);
   reply_xattr(req, err, buf, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
   sqfs_ll *ll = fuse_req_userdata(req);
   sqfs_inode inode;
   char *buf = NULL;
   int err = ino_inode(req, ino, &inode);
   if (!err && size && !(buf = malloc(size)))
      err = ENOMEM;
   if (!err)
      err = sqd_listxattr(FS(ll), &inode, buf, &size);
   reply_xattr(req, err, buf, size);
}

/* Opened by the launcher, before the fork, so that an image libsquashfuse can't open is
 * reported once, by the launcher, and the server starts with the tables read. */
sqfs_ll *sqd_open_image(const struct plan *p, int image_fd)
{
   sqfs_ll *ll = xcalloc(1, sizeof(*ll));
   sqfs_inode root;
   char where[400] = "";
   if (sqfs_init(&ll->fs, image_fd, (size_t)p->offset) != SQFS_OK)
      DIE_PLAIN("image %s: not a valid SquashFS (its tables cannot be read)", p->image);
   if (sqfs_ll_init(ll) != SQFS_OK)
      DIE_PLAIN("out of memory");
   struct stat st;
   if (sqd_check_tables(&ll->fs, where, sizeof(where)))
      DIE_PLAIN("image %s: not a valid SquashFS (%s)", p->image, where);
   if (sqd_inode(&ll->fs, ll->fs.sb.root_inode, &root) || !S_ISDIR(root.base.mode) || sqd_stat(&ll->fs, &root, &st))
      DIE_PLAIN("image %s: not a valid SquashFS (the root inode cannot be read as a directory)", p->image);
   /* squashfuse_ll parses directories with the overflow this server avoids: list every
    * directory with the bounded reader first, and refuse the image on a bad entry. It
    * can't be made to read data blocks safely (it copies from short ones as if whole):
    * those are not all decompressed here, which would cost a whole read of the image. */
   int err = p->squashfuse_exec ? sqd_walk(&ll->fs, ll->fs.xattr_info.xattr_ids > 0, where, sizeof(where)) : 0;
   if (err == ENAMETOOLONG)
      die_errno(0, "run it with the built-in server (without CTR_FUSE=exec)",
                "image %s: squashfuse_ll can't serve its xattr %s safely (libsquashfuse 0.1.105 overflows a "
                "buffer looking up shorter names)", p->image, where);
   if (err)
      DIE_PLAIN("image %s: not a valid SquashFS (%s: %s)", p->image, where,
                err == EIO ? "corrupt" : strerror(err));
   return ll;
}

/* CTR_FUSE_THREADS=N (1 to MAX_THREADS), else one, or one per CPU for a shared one. */
static int server_threads(void)
{
   const char *v = getenv("CTR_FUSE_THREADS");
   unsigned long long n;
   if (v && plan_number(v, 10, MAX_THREADS, &n) && n >= 1)
      return (int)n;
   if (!g_fuse_shared)
      return 1;
   cpu_set_t set;
   int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
   return cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : cpus;
}

void sqd_serve(sqfs_ll *ll, int fuse_fd)
{
   struct fuse_lowlevel_ops ops;
   memset(&ops, 0, sizeof(ops));
   ops.init = op_init;
   ops.lookup = op_lookup;
   ops.forget = sqfs_ll_op_forget;
   ops.getattr = op_getattr;
   ops.readlink = op_readlink;
   ops.open = op_open;
   ops.create = sqfs_ll_op_create;
   ops.read = op_read;
   ops.release = op_release;
   ops.opendir = op_opendir;
   ops.readdir = op_readdir;
   ops.readdirplus = op_readdirplus;
   ops.releasedir = op_release;
   ops.statfs = stfs_ll_op_statfs;
   ops.listxattr = op_listxattr;
   ops.getxattr = op_getxattr;
   /* Keep what is freed for the next allocation: a block's decompression context, a
    * listing's buffer. By default glibc maps each allocation of 128 KiB or more afresh
    * and gives the heap's top back on free, so every block decompressed paid its page
    * faults again; how often depended on what the launcher had allocated before the
    * fork (measured: 146 faults a /bin/true start from a plan file, 390 from the plan
    * cache's front). The server's memory is bounded by its caches either way. */
   mallopt(M_MMAP_THRESHOLD, 8 << 20);
   mallopt(M_TRIM_THRESHOLD, 256 << 20);
   char *argv[] = { "ctr-fuse", NULL };
   struct fuse_args args = FUSE_ARGS_INIT(1, argv);
   struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), ll);
   char dev[32];
   snprintf(dev, sizeof(dev), "/dev/fd/%d", fuse_fd); /* libfuse takes the open device */
   if (!se || fuse_session_mount(se, dev) != 0)
      DIE_PLAIN("cannot start the FUSE session on %s", dev);
   drop_capabilities();
   /* Serving: what fails from now on is libfuse's to say, on our stderr. */
   close(g_report_fd);
   g_report_fd = -1;
   sqfs_cache_destroy(&ll->fs.md_cache);
   if (sqfs_block_cache_init(&ll->fs.md_cache, MD_BLOCKS) != SQFS_OK) {
      fprintf(stderr, "ctr-fuse: out of memory for the metadata cache\n");
      _exit(EXIT_LAUNCH_FAILED);
   }
   sqd_blocks_init(FS(ll));
   int threads = server_threads();
   int r = threads > 1 ? sqd_loop_mt(se, (unsigned)threads) : fuse_session_loop(se);
   _exit(r < 0 ? EXIT_LAUNCH_FAILED : 0);
}
#endif
