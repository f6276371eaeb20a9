/* Bounded metadata, inode and directory reading for the built-in FUSE server (see
 * launch_sqfs.h). Replaces libsquashfuse's sqfs_md_read, sqfs_table_get, sqfs_stat,
 * sqfs_dir_next and sqfs_dir_lookup, which trust sizes and offsets from the image. */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#ifdef CTR_INPROCESS_FUSE
#include "launch_sqfs.h"

#define MD_SIZE 8192
#define DIR_COUNT_MAX 256 /* entries under one directory header (mksquashfs and the kernel) */

/* The metadata cache (inode and directory tables, 8 KiB blocks) is libsquashfuse's
 * fs->md_cache, one for all the server's worker threads, so that two workers serving
 * one reader's walk don't each decompress the same blocks. That cache is not
 * thread-safe (launch_sqfs_serve.c): every use of it, here and in sqfs_inode_get, is
 * under this lock, and what a caller gets is a copy made under it. */
static pthread_mutex_t g_md_lock = PTHREAD_MUTEX_INITIALIZER;

static int md_read_locked(sqfs *fs, sqfs_md_cursor *cur, void *buf, size_t size);

/* SIZE bytes at the cursor, or EIO: the block must have been read whole and the offset
 * must be inside it (libsquashfuse would copy from past the block's end). */
int sqd_md_read(sqfs *fs, sqfs_md_cursor *cur, void *buf, size_t size)
{
   pthread_mutex_lock(&g_md_lock);
   int err = md_read_locked(fs, cur, buf, size);
   pthread_mutex_unlock(&g_md_lock);
   return err;
}

static int md_read_locked(sqfs *fs, sqfs_md_cursor *cur, void *buf, size_t size)
{
   while (size > 0) {
      sqfs_off_t pos = cur->block;
      sqfs_block *b;
      if (pos < 96 || (uint64_t)pos >= fs->sb.bytes_used || sqfs_md_cache(fs, &pos, &b) != SQFS_OK ||
          cur->offset >= b->size)
         return EIO;
      size_t take = b->size - cur->offset;
      if (take > size)
         take = size;
      if (buf) {
         memcpy(buf, (char *)b->data + cur->offset, take);
         buf = (char *)buf + take;
      }
      size -= take;
      cur->offset += take;
      if (cur->offset == b->size) {
         cur->block = pos;
         cur->offset = 0;
      }
   }
   return 0;
}

/* Entry IDX of COUNT in an indexed table (ids, fragments, xattr ids). */
int sqd_table_get(sqfs *fs, sqfs_table *t, uint64_t count, uint64_t idx, void *buf)
{
   if (idx >= count || !t->blocks)
      return EIO;
   uint64_t pos = idx * t->each;
   sqfs_md_cursor cur = { (sqfs_off_t)t->blocks[pos / MD_SIZE], (size_t)(pos % MD_SIZE) };
   return sqd_md_read(fs, &cur, buf, t->each);
}

int sqd_inode(sqfs *fs, uint64_t ref, sqfs_inode *inode)
{
   const struct squashfs_super_block *sb = &fs->sb;
   uint64_t block = ref >> 16, len = sb->directory_table_start - sb->inode_table_start;
   /* The first block is read here, bounded, so that libsquashfuse's reader, which
    * continues from there, starts inside it. */
   sqfs_md_cursor cur = { (sqfs_off_t)(sb->inode_table_start + block), ref & 0xffff };
   if (ref >> 48 || block >= len || cur.offset >= MD_SIZE)
      return EIO;
   pthread_mutex_lock(&g_md_lock);
   bool bad = md_read_locked(fs, &cur, NULL, 1) || sqfs_inode_get(fs, inode, ref) != SQFS_OK;
   pthread_mutex_unlock(&g_md_lock);
   if (bad)
      return EIO;
   int type = inode->base.inode_type;
   /* The file type comes from the inode type alone: libsquashfuse ORs it into the mode
    * as stored, so a crafted mode could make a directory inode look like a socket. */
   inode->base.mode = (inode->base.mode & 07777) | sqfs_mode(type);
   if (inode->base.uid >= sb->no_ids || inode->base.guid >= sb->no_ids)
      return EIO;
   if (fs->xattr_info.xattr_ids == 0)
      inode->xattr = SQUASHFS_INVALID_XATTR;
   else if (inode->xattr != SQUASHFS_INVALID_XATTR && inode->xattr >= fs->xattr_info.xattr_ids)
      return EIO;
   if (S_ISREG(inode->base.mode)) {
      if (inode->xtra.reg.frag_idx != SQUASHFS_INVALID_FRAG &&
          (inode->xtra.reg.frag_idx >= sb->fragments || inode->xtra.reg.frag_off >= sb->block_size))
         return EIO;
   } else if (S_ISDIR(inode->base.mode)) {
      if (inode->xtra.dir.start_block >= sb->bytes_used - sb->directory_table_start ||
          inode->xtra.dir.offset >= MD_SIZE)
         return EIO;
   }
   return 0;
}

int sqd_stat(sqfs *fs, sqfs_inode *inode, struct stat *st)
{
   uint32_t uid, gid;
   if (sqd_table_get(fs, &fs->id_table, fs->sb.no_ids, inode->base.uid, &uid) ||
       sqd_table_get(fs, &fs->id_table, fs->sb.no_ids, inode->base.guid, &gid))
      return EIO;
   memset(st, 0, sizeof(*st));
   st->st_mode = inode->base.mode;
   st->st_nlink = inode->nlink > 0 ? (nlink_t)inode->nlink : 1;
   st->st_mtime = st->st_ctime = st->st_atime = inode->base.mtime;
   st->st_uid = le32toh(uid);
   st->st_gid = le32toh(gid);
   st->st_blksize = fs->sb.block_size;
   if (S_ISREG(st->st_mode)) {
      st->st_size = (off_t)inode->xtra.reg.file_size;
      if (st->st_size < 0)
         return EIO;
      st->st_blocks = st->st_size / 512;
   } else if (S_ISLNK(st->st_mode)) {
      st->st_size = (off_t)inode->xtra.symlink_size;
   } else if (S_ISBLK(st->st_mode) || S_ISCHR(st->st_mode)) {
      st->st_rdev = makedev((unsigned)inode->xtra.dev.major, (unsigned)inode->xtra.dev.minor);
   }
   return 0;
}

static int name_order(const char *a, size_t alen, const char *b, size_t blen)
{
   int order = memcmp(a, b, alen < blen ? alen : blen);
   return order ? order : (alen > blen) - (alen < blen);
}

/* Where to start reading a listing, for the entry named NAME or else the one at byte
 * OFFSET. An extended directory's index (after its inode: the listing position, the
 * metadata block and the first name of every header some 8 KiB apart) lets a lookup or
 * a resumed listing start at the last header before it instead of at the beginning: a
 * lookup in a directory of 2,500 entries reads ~100 of them instead of ~1,250. An index
 * entry that is out of order or out of bounds ends the use of the index there. */
static int dir_start(sqfs *fs, const sqfs_inode *dir, struct sqd_dir *d, const char *name, size_t len,
                     uint64_t offset)
{
   if (!S_ISDIR(dir->base.mode))
      return ENOTDIR;
   memset(d, 0, sizeof(*d));
   d->fs = fs;
   d->cur.block = (sqfs_off_t)(fs->sb.directory_table_start + dir->xtra.dir.start_block);
   d->cur.offset = dir->xtra.dir.offset;
   /* The stored size counts 3 bytes more than the listing (for "." and ".."). */
   d->total = dir->xtra.dir.dir_size <= 3 ? 0 : dir->xtra.dir.dir_size - 3;
   sqfs_md_cursor cur = dir->next;
   uint64_t last_pos = 0, last_block = dir->xtra.dir.start_block;
   for (unsigned i = 0; i < dir->xtra.dir.idx_count; i++) {
      uint32_t x[3];
      char first[SQD_NAME_MAX];
      if (sqd_md_read(fs, &cur, x, sizeof(x)))
         break;
      uint64_t pos = le32toh(x[0]), block = le32toh(x[1]);
      size_t n = (size_t)le32toh(x[2]) + 1;
      if (pos <= last_pos || pos >= d->total || block < last_block || n > SQD_NAME_MAX ||
          sqd_md_read(fs, &cur, first, n))
         break;
      if (name ? name_order(first, n, name, len) > 0 : pos > offset)
         break;
      last_pos = pos;
      last_block = block;
      d->cur.block = (sqfs_off_t)(fs->sb.directory_table_start + block);
      d->cur.offset = (dir->xtra.dir.offset + pos) % MD_SIZE;
      d->pos = pos;
   }
   return 0;
}

int sqd_open(sqfs *fs, const sqfs_inode *dir, uint64_t offset, struct sqd_dir *d)
{
   int err = dir_start(fs, dir, d, NULL, 0, offset);
   if (err)
      return err;
   /* Resuming: step over the entries before OFFSET, which must be where one began. */
   struct sqd_entry e;
   while (d->pos < offset) {
      int r = sqd_next(d, &e);
      if (r <= 0)
         return r < 0 ? -r : EINVAL;
   }
   return d->pos == offset ? 0 : EINVAL;
}

static int dir_read(struct sqd_dir *d, void *buf, size_t n)
{
   if (n > d->total - d->pos)
      return EIO; /* the listing is longer than its directory says */
   d->pos += n;
   return sqd_md_read(d->fs, &d->cur, buf, n);
}

int sqd_next(struct sqd_dir *d, struct sqd_entry *e)
{
   const struct squashfs_super_block *sb = &d->fs->sb;
   unsigned char h[12], x[8];
   int err;
   e->offset = d->pos;
   while (d->left == 0) {
      if (d->pos >= d->total)
         return 0;
      if ((err = dir_read(d, h, sizeof(h))))
         return -err;
      uint32_t count = le32toh(*(uint32_t *)h) + 1; /* stored minus one */
      d->start_block = le32toh(*(uint32_t *)(h + 4));
      d->inode_base = le32toh(*(uint32_t *)(h + 8));
      if (count == 0 || count > DIR_COUNT_MAX ||
          d->start_block >= sb->directory_table_start - sb->inode_table_start)
         return -EIO;
      d->left = count;
      e->offset = d->pos;
   }
   if ((err = dir_read(d, x, sizeof(x))))
      return -err;
   d->left--;
   uint16_t off = le16toh(*(uint16_t *)x), size = le16toh(*(uint16_t *)(x + 6));
   int16_t delta = (int16_t)le16toh(*(uint16_t *)(x + 2));
   e->type = le16toh(*(uint16_t *)(x + 4));
   e->name_len = (size_t)size + 1;
   int64_t num = (int64_t)d->inode_base + delta;
   if (off >= MD_SIZE || e->type < SQUASHFS_DIR_TYPE || e->type > SQUASHFS_SOCKET_TYPE ||
       e->name_len > SQD_NAME_MAX || num < 1 || num > (int64_t)sb->inodes)
      return -EIO;
   e->inode = (uint64_t)d->start_block << 16 | off;
   if ((err = dir_read(d, e->name, e->name_len)))
      return -err;
   e->name[e->name_len] = '\0';
   /* A name the kernel could not use: it refuses a listing with '/' in a name (EIO). */
   if (memchr(e->name, '/', e->name_len) || memchr(e->name, '\0', e->name_len) ||
       !strcmp(e->name, ".") || !strcmp(e->name, ".."))
      return -EIO;
   e->next_offset = d->pos;
   return 1;
}

/* Entries are sorted by name, bytewise (mksquashfs and the kernel rely on it): stop at
 * the first name past the one wanted. An unsorted (corrupt) listing then only hides
 * names; it can't make the walk longer than the listing. */
int sqd_lookup(sqfs *fs, const sqfs_inode *dir, const char *name, struct sqd_entry *e)
{
   struct sqd_dir d;
   size_t len = strlen(name);
   if (len == 0 || len > SQD_NAME_MAX)
      return S_ISDIR(dir->base.mode) ? 0 : -ENOTDIR;
   int err = dir_start(fs, dir, &d, name, len, 0), r;
   if (err)
      return -err;
   while ((r = sqd_next(&d, e)) > 0) {
      int order = name_order(e->name, e->name_len, name, len);
      if (order == 0)
         return 1;
      if (order > 0)
         return 0;
   }
   return r;
}

/* For squashfuse_ll (CTR_FUSE=exec), which can't be fixed: every directory reachable
 * from the root, and every inode they name, through the bounded readers, once. A set of
 * directories already listed keeps a looping image from looping the walk. */
struct refset { uint64_t *v; size_t cap, n; };

static bool refset_add(struct refset *s, uint64_t ref)
{
   if (2 * (s->n + 1) > s->cap) {
      struct refset bigger = { calloc(s->cap ? 2 * s->cap : 1024, sizeof(uint64_t)), s->cap ? 2 * s->cap : 1024, 0 };
      if (!bigger.v)
         abort();
      for (size_t i = 0; i < s->cap; i++)
         if (s->v[i])
            refset_add(&bigger, s->v[i] - 1);
      free(s->v);
      *s = bigger;
   }
   size_t i = (size_t)((ref + 1) * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
   for (; s->v[i]; i = (i + 1) & (s->cap - 1))
      if (s->v[i] == ref + 1)
         return false;
   s->v[i] = ref + 1;
   s->n++;
   return true;
}

int sqd_walk(sqfs *fs, bool xattrs, char *where, size_t where_len)
{
   struct refset seen = { NULL, 0, 0 };
   size_t n = 1, cap = 64;
   uint64_t *todo = malloc(cap * sizeof(*todo));
   int err = 0;
   if (!todo)
      return ENOMEM;
   todo[0] = fs->sb.root_inode;
   refset_add(&seen, todo[0]);
   while (n > 0 && !err) {
      uint64_t ref = todo[--n];
      sqfs_inode dir, child;
      struct sqd_dir d;
      struct sqd_entry e;
      struct stat st;
      int r;
      if ((err = sqd_inode(fs, ref, &dir)) || (err = sqd_stat(fs, &dir, &st)) || (err = sqd_open(fs, &dir, 0, &d))) {
         snprintf(where, where_len, "directory inode %#llx", (unsigned long long)ref);
         break;
      }
      if (xattrs && (err = sqd_xattr_hazard(fs, &dir, where, where_len)))
         break;
      while ((r = sqd_next(&d, &e)) > 0) {
         snprintf(where, where_len, "entry \"%s\" of directory inode %#llx", e.name, (unsigned long long)ref);
         if ((err = sqd_inode(fs, e.inode, &child)) || (err = sqd_stat(fs, &child, &st)))
            break;
         if (xattrs && !S_ISDIR(child.base.mode) && (err = sqd_xattr_hazard(fs, &child, where, where_len)))
            break;
         if ((child.base.inode_type - 1) % 7 + 1 != e.type) {
            err = EIO;
            break;
         }
         if (!S_ISDIR(child.base.mode) || !refset_add(&seen, e.inode))
            continue;
         if (n == cap) {
            uint64_t *more = realloc(todo, 2 * cap * sizeof(*todo));
            if (!more) {
               err = ENOMEM;
               break;
            }
            todo = more;
            cap *= 2;
         }
         todo[n++] = e.inode;
      }
      if (!err && r < 0) {
         err = -r;
         snprintf(where, where_len, "a listing of directory inode %#llx", (unsigned long long)ref);
      }
   }
   free(todo);
   free(seen.v);
   return err;
}
#endif
