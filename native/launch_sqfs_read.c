/* Bounded file, symlink and xattr reading for the built-in FUSE server (launch_sqfs.h).
 *
 * libsquashfuse's sqfs_read_range copies from a data block or fragment as if it held a
 * whole block, however short it decompressed, and looks fragments up without checking
 * the index; its xattr lookup reads a stored name of any length into a buffer sized for
 * the name asked for, and (0.1.105) swaps the trusted and security prefixes. */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef CTR_INPROCESS_FUSE
#include "launch_sqfs.h"

#define BLOCK_COMPRESSED (1u << 24)

/* The block list of the file read last: each block's position and stored header. Reads
 * come in order, 128 KiB at a time, so one file's list is worth keeping; it is read
 * whole from the inode table once, instead of from the start for every read. */
static __thread struct { uint64_t ref; size_t n; uint64_t *pos; uint32_t *hdr; } g_list; /* per worker */

static int block_list(sqfs *fs, uint64_t ref, sqfs_inode *inode, size_t n)
{
   if (g_list.pos && g_list.ref == ref && g_list.n == n)
      return 0;
   free(g_list.pos);
   free(g_list.hdr);
   g_list.pos = malloc(n * sizeof(uint64_t) + 1);
   g_list.hdr = malloc(n * sizeof(uint32_t) + 1);
   g_list.n = 0;
   if (!g_list.pos || !g_list.hdr)
      return ENOMEM;
   sqfs_md_cursor cur = inode->next;
   if (sqd_md_read(fs, &cur, g_list.hdr, n * sizeof(uint32_t)))
      return EIO;
   uint64_t at = inode->xtra.reg.start_block;
   for (size_t i = 0; i < n; i++) {
      g_list.hdr[i] = le32toh(g_list.hdr[i]);
      g_list.pos[i] = at;
      at += g_list.hdr[i] & ~BLOCK_COMPRESSED;
   }
   g_list.ref = ref;
   g_list.n = n;
   return 0;
}

/* A data block must lie between the superblock and the end of the image: libsquashfuse's
 * block caches also take position 0 for an empty slot, and answer it with no block. */
static bool block_ok(sqfs *fs, uint64_t pos, uint32_t hdr)
{
   uint64_t size = hdr & ~BLOCK_COMPRESSED;
   return pos >= 96 && pos < fs->sb.bytes_used && size <= fs->sb.bytes_used - pos &&
          size <= fs->sb.block_size;
}

int sqd_fragment_block(sqfs *fs, uint64_t idx, uint64_t *pos, uint32_t *hdr)
{
   struct squashfs_fragment_entry f;
   if (idx >= fs->sb.fragments || sqd_table_get(fs, &fs->frag_table, fs->sb.fragments, idx, &f) ||
       !block_ok(fs, le64toh(f.start_block), le32toh(f.size)))
      return EIO;
   *pos = le64toh(f.start_block);
   *hdr = le32toh(f.size);
   return 0;
}

int sqd_read(sqfs *fs, sqfs_inode *inode, uint64_t off, size_t *size, char *buf)
{
   uint64_t file_size = inode->xtra.reg.file_size, bs = fs->sb.block_size;
   bool frag = inode->xtra.reg.frag_idx != SQUASHFS_INVALID_FRAG;
   uint64_t n = frag ? file_size / bs : (file_size + bs - 1) / bs;
   size_t want = off >= file_size ? 0 : (size_t)(file_size - off < *size ? file_size - off : *size), done = 0;
   *size = 0;
   if (want == 0)
      return 0;
   /* The list lives in the inode table, 4 bytes a block; a file claiming more blocks
    * than that table could hold even compressed 1024 times over is corrupt. */
   if (n > (SIZE_MAX / 16) || n * 4 > (fs->sb.directory_table_start - fs->sb.inode_table_start) * 1024)
      return EIO;
   int err = block_list(fs, inode->next.block << 16 | inode->next.offset, inode, (size_t)n);
   if (err)
      return err;
   while (done < want) {
      uint64_t k = (off + done) / bs, in = (off + done) % bs;
      uint64_t len = file_size - k * bs < bs ? file_size - k * bs : bs; /* bytes of this block */
      size_t take = (size_t)(len - in < want - done ? len - in : want - done);
      sqfs_block *b = NULL;
      int slot;
      uint64_t at;
      if (k < n) {
         if ((g_list.hdr[k] & ~BLOCK_COMPRESSED) == 0) { /* a hole */
            memset(buf + done, 0, take);
            done += take;
            continue;
         }
         if (!block_ok(fs, g_list.pos[k], g_list.hdr[k]) || sqd_block_get(fs, g_list.pos[k], g_list.hdr[k], &b, &slot))
            return EIO;
         at = in;
      } else {
         uint64_t fpos;
         uint32_t fhdr;
         if (!frag || sqd_fragment_block(fs, inode->xtra.reg.frag_idx, &fpos, &fhdr) ||
             sqd_block_get(fs, fpos, fhdr, &b, &slot))
            return EIO;
         /* The next small files are most likely in the next fragment. */
         if ((uint64_t)inode->xtra.reg.frag_idx + 1 < fs->sb.fragments)
            sqd_readahead_fragment((uint64_t)inode->xtra.reg.frag_idx + 1);
         at = inode->xtra.reg.frag_off + in;
         if (b->size < len || b->size - len < inode->xtra.reg.frag_off) {
            sqd_block_put(b, slot);
            return EIO;
         }
      }
      bool whole = b->size >= len;
      if (whole)
         memcpy(buf + done, (const char *)b->data + at, take);
      sqd_block_put(b, slot);
      if (!whole)
         return EIO;
      done += take;
   }
   *size = done;
   return 0;
}

int sqd_readlink(sqfs *fs, sqfs_inode *inode, char **target)
{
   size_t len = inode->xtra.symlink_size;
   if (!S_ISLNK(inode->base.mode))
      return EINVAL;
   if (len == 0 || len >= 4096) /* PATH_MAX: no longer target can be used */
      return EIO;
   sqfs_md_cursor cur = inode->next;
   if (!(*target = malloc(len + 1)))
      return ENOMEM;
   if (sqd_md_read(fs, &cur, *target, len) || memchr(*target, '\0', len)) {
      free(*target);
      *target = NULL;
      return EIO;
   }
   (*target)[len] = '\0';
   return 0;
}

/* Xattrs. Only user.* is served. security.* (security.selinux on every file of an image
 * built on an SELinux host) and trusted.* mean nothing to a rootless container: no LSM
 * label of the image is applied, trusted.* needs real root to read, and overlayfs, when
 * it copies a file up for --writable-tmpfs, copies every xattr the lower lists and aborts
 * the copy-up when one can't be read (the kernel answers ENODATA for trusted.* without
 * CAP_SYS_ADMIN: "No data available"). So they are neither listed nor found. */
enum { XATTR_USER = 0, XATTR_VALUE_OOL = 0x100, XATTR_VALUE_MAX = 65536 };

struct xa { sqfs *fs; sqfs_md_cursor cur; uint32_t left; };

static int xa_open(sqfs *fs, sqfs_inode *inode, struct xa *x)
{
   x->fs = fs;
   x->left = 0;
   if (fs->xattr_info.xattr_ids == 0 || inode->xattr == SQUASHFS_INVALID_XATTR)
      return 0;
   struct squashfs_xattr_id id;
   if (sqd_table_get(fs, &fs->xattr_table, fs->xattr_info.xattr_ids, inode->xattr, &id))
      return EIO;
   uint64_t ref = le64toh(id.xattr);
   x->cur.block = (sqfs_off_t)(fs->xattr_info.xattr_table_start + (ref >> 16));
   x->cur.offset = ref & 0xffff;
   x->left = le32toh(id.count);
   return 0;
}

/* The next entry's type and name (NUL-terminated, prefix not included). */
static int xa_next(struct xa *x, unsigned *type, char name[256], size_t *len)
{
   uint16_t h[2];
   if (sqd_md_read(x->fs, &x->cur, h, sizeof(h)))
      return EIO;
   *type = le16toh(h[0]);
   *len = le16toh(h[1]);
   if (*len == 0 || *len > 255 || (*type & 0xff) > 2 || sqd_md_read(x->fs, &x->cur, name, *len) ||
       memchr(name, '\0', *len))
      return EIO;
   name[*len] = '\0';
   x->left--;
   return 0;
}

/* The value after a name: its size, and its bytes into BUF when BUF is not NULL. An
 * out-of-line value (shared by many files) is a reference to where it is stored. */
static int xa_value(struct xa *x, unsigned type, char *buf, uint32_t *vsize)
{
   uint32_t v;
   if (sqd_md_read(x->fs, &x->cur, &v, sizeof(v)))
      return EIO;
   *vsize = le32toh(v);
   if (!(type & XATTR_VALUE_OOL)) {
      if (*vsize > XATTR_VALUE_MAX)
         return EIO;
      return sqd_md_read(x->fs, &x->cur, buf, *vsize);
   }
   uint64_t ref;
   if (*vsize != sizeof(ref) || sqd_md_read(x->fs, &x->cur, &ref, sizeof(ref)))
      return EIO;
   ref = le64toh(ref);
   sqfs_md_cursor c = { (sqfs_off_t)(x->fs->xattr_info.xattr_table_start + (ref >> 16)), ref & 0xffff };
   if (c.offset >= 8192 || sqd_md_read(x->fs, &c, &v, sizeof(v)) || (*vsize = le32toh(v)) > XATTR_VALUE_MAX)
      return EIO;
   return buf ? sqd_md_read(x->fs, &c, buf, *vsize) : 0;
}

int sqd_listxattr(sqfs *fs, sqfs_inode *inode, char *buf, size_t *size)
{
   struct xa x;
   char name[256];
   size_t len, need = 0;
   unsigned type;
   uint32_t vsize;
   int err = xa_open(fs, inode, &x);
   while (!err && x.left) {
      if ((err = xa_next(&x, &type, name, &len)) || (err = xa_value(&x, type, NULL, &vsize)))
         break;
      if ((type & 0xff) != XATTR_USER)
         continue;
      if (buf && need + 5 + len + 1 <= *size) {
         memcpy(buf + need, "user.", 5);
         memcpy(buf + need + 5, name, len + 1);
      }
      need += 5 + len + 1;
   }
   if (err)
      return err;
   if (buf && need > *size)
      return ERANGE;
   *size = need;
   return 0;
}

int sqd_getxattr(sqfs *fs, sqfs_inode *inode, const char *want, char *buf, size_t *size)
{
   struct xa x;
   char name[256];
   size_t len;
   unsigned type;
   uint32_t vsize;
   if (strncmp(want, "user.", 5))
      return ENODATA;
   want += 5;
   int err = xa_open(fs, inode, &x);
   while (!err && x.left) {
      if ((err = xa_next(&x, &type, name, &len)))
         break;
      bool match = (type & 0xff) == XATTR_USER && !strcmp(name, want);
      if (match && *size == 0) {
         err = xa_value(&x, type, NULL, &vsize);
      } else if (match) {
         char *v = malloc(XATTR_VALUE_MAX);
         if (!v)
            return ENOMEM;
         if (!(err = xa_value(&x, type, v, &vsize)) && vsize <= *size)
            memcpy(buf, v, vsize);
         free(v);
         if (!err && vsize > *size)
            err = ERANGE;
      } else {
         err = xa_value(&x, type, NULL, &vsize);
         continue;
      }
      if (!err)
         *size = vsize;
      return err;
   }
   return err ? err : ENODATA;
}
#endif

#ifdef CTR_INPROCESS_FUSE
/* Every id and every fragment entry, read once when the image is opened: small (4 and
 * 16 bytes each), and a table that can't be read, or a fragment outside the image, is
 * then reported by the launcher instead of as EIO on some file later. */
int sqd_check_tables(sqfs *fs, char *why, size_t why_len)
{
   uint32_t id;
   for (uint32_t i = 0; i < fs->sb.no_ids; i++)
      if (sqd_table_get(fs, &fs->id_table, fs->sb.no_ids, i, &id)) {
         snprintf(why, why_len, "id %u of %u cannot be read", i, fs->sb.no_ids);
         return EIO;
      }
   for (uint32_t i = 0; i < fs->sb.fragments; i++) {
      struct squashfs_fragment_entry f;
      if (sqd_table_get(fs, &fs->frag_table, fs->sb.fragments, i, &f) ||
          !block_ok(fs, le64toh(f.start_block), le32toh(f.size))) {
         snprintf(why, why_len, "fragment %u of %u cannot be read or lies outside the image", i, fs->sb.fragments);
         return EIO;
      }
   }
   return 0;
}
#endif

#ifdef CTR_INPROCESS_FUSE
/* For squashfuse_ll (CTR_FUSE=exec), whose 0.1.105 xattr lookup reads a stored name into
 * a buffer the size of the name asked for whenever the prefix agrees (in its numbering,
 * where security and trusted are swapped): a stored name longer than one asked for
 * overflows its heap. The kernel asks for some on its own for every file: overlayfs for
 * user.overlay.* (the shortest, overlay.nlink: 13 bytes past "user."), exec for
 * security.capability (10 past the prefix, matched against trusted.* entries), and the
 * server dies on a valid image at the first lookup. Names longer than those are refused
 * here (NAME says which); a command that asks for a shorter name itself is not stopped. */
int sqd_xattr_hazard(sqfs *fs, sqfs_inode *inode, char *name, size_t name_len)
{
   struct xa x;
   char n[256];
   size_t len;
   unsigned type;
   uint32_t vsize;
   int err = xa_open(fs, inode, &x);
   while (!err && x.left) {
      if ((err = xa_next(&x, &type, n, &len)) || (err = xa_value(&x, type, NULL, &vsize)))
         break;
      if (((type & 0xff) == XATTR_USER && len > 13) || ((type & 0xff) == 1 && len > 10)) {
         snprintf(name, name_len, "%s%s", (type & 0xff) == XATTR_USER ? "user." : "trusted.", n);
         return ENAMETOOLONG;
      }
   }
   return err;
}
#endif
