/* Strict SquashFS superblock and table validation, before any server sees the image.
 *
 * libsquashfuse 0.1.105 (Debian bookworm's, and squashfuse_ll built from it) trusts the
 * superblock: block_size 0 divides by zero, an id_count of 0 leaves the id table NULL
 * and the first stat dereferences it, tables that start in the last bytes of the image
 * are read short and used anyway. Those fields are checked here, in the launcher, so
 * both the built-in server and an exec'd squashfuse_ll only ever get an image whose
 * layout is sane, and a bad one is refused with one line saying which field is wrong.
 *
 * Everything is read with pread at the image's offset, bounded by what the superblock
 * says (bytes_used) and by the file's size. Layout: squashfs-tools' squashfs_fs.h and the
 * kernel's Documentation/filesystems/squashfs.rst: the superblock, then data and
 * fragments, the inode table, the directory table, then the fragment, export (lookup),
 * id and xattr tables, each a run of metadata blocks followed by its index of 64-bit
 * block positions, which is what the superblock points at. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"

#ifdef CTR_INPROCESS_FUSE
#include <squashfuse/squashfuse.h>
#endif

#define SB_SIZE 96
#define MD_SIZE 8192          /* uncompressed bytes in a metadata block */
#define ABSENT UINT64_MAX     /* a table the image does not have */

static uint16_t le16(const unsigned char *b) { return (uint16_t)(b[0] | b[1] << 8); }
static uint32_t le32(const unsigned char *b) { return (uint32_t)le16(b) | (uint32_t)le16(b + 2) << 16; }
static uint64_t le64(const unsigned char *b) { return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32; }

struct check {
   const struct plan *p;
   int fd;
   uint64_t room;  /* bytes of the file past the offset */
};

static void bad(const struct check *c, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void bad(const struct check *c, const char *fmt, ...)
{
   char why[512];
   va_list ap;
   va_start(ap, fmt);
   vsnprintf(why, sizeof(why), fmt, ap);
   va_end(ap);
   DIE_PLAIN("image %s: not a valid SquashFS (%s)", c->p->image, why);
}

/* LEN bytes at image position POS (relative to the SquashFS start), or refuse. */
static void read_at(const struct check *c, void *buf, size_t len, uint64_t pos, const char *what)
{
   if (pos > c->room || len > c->room - pos)
      bad(c, "%s at %llu ends past the end of the file", what, (unsigned long long)pos);
   size_t done = 0;
   while (done < len) {
      ssize_t n = pread(c->fd, (char *)buf + done, len - done, (off_t)(c->p->offset + pos + done));
      if (n < 0 && errno == EINTR)
         continue;
      if (n < 0)
         DIE("cannot read image %s", c->p->image);
      if (n == 0)
         bad(c, "%s at %llu ends past the end of the file", what, (unsigned long long)pos);
      done += (size_t)n;
   }
}

/* An index table: COUNT entries of EACH bytes in metadata blocks, indexed by the 64-bit
 * block positions at START, which must end by LIMIT (where the next table begins). Each
 * indexed block must lie between LOW and START, with room for its 2-byte header. */
static void check_index(const struct check *c, const char *name, uint64_t start, uint64_t count, size_t each,
                        uint64_t low, uint64_t limit)
{
   uint64_t blocks = (count * each + MD_SIZE - 1) / MD_SIZE;
   uint64_t len = blocks * 8;
   if (start > limit || len > limit - start)
      bad(c, "%s table index at %llu (%llu entries) runs past %llu", name, (unsigned long long)start,
          (unsigned long long)count, (unsigned long long)limit);
   unsigned char *idx = xcalloc(blocks ? blocks : 1, 8);
   read_at(c, idx, (size_t)len, start, name);
   for (uint64_t i = 0; i < blocks; i++) {
      uint64_t b = le64(idx + i * 8);
      if (b < low || b >= start || start - b < 2)
         bad(c, "%s table block %llu at %llu is outside %llu..%llu", name, (unsigned long long)i,
             (unsigned long long)b, (unsigned long long)low, (unsigned long long)start);
   }
   free(idx);
}

static const char *const COMPRESSORS[] = { NULL, "gzip", "lzma", "lzo", "xz", "lz4", "zstd" };

void sqfs_check_image(const struct plan *p, int fd)
{
   struct stat st;
   if (fstat(fd, &st) < 0)
      DIE("cannot stat image %s", p->image);
   struct check c = { p, fd, 0 };
   if ((uint64_t)st.st_size < p->offset || (uint64_t)st.st_size - p->offset < SB_SIZE)
      bad(&c, "the superblock at offset %llu ends past the end of the file", p->offset);
   c.room = (uint64_t)st.st_size - p->offset;
   unsigned char sb[SB_SIZE];
   read_at(&c, sb, sizeof(sb), 0, "superblock");

   if (le32(sb) != 0x73717368)
      bad(&c, "bad magic at offset %llu", p->offset);
   uint32_t inodes = le32(sb + 4), block_size = le32(sb + 12), fragments = le32(sb + 16);
   uint16_t comp = le16(sb + 20), block_log = le16(sb + 22), no_ids = le16(sb + 26);
   uint16_t major = le16(sb + 28), minor = le16(sb + 30);
   uint64_t root = le64(sb + 32), bytes_used = le64(sb + 40), id_start = le64(sb + 48);
   uint64_t xattr_start = le64(sb + 56), inode_start = le64(sb + 64), dir_start = le64(sb + 72);
   uint64_t frag_start = le64(sb + 80), export_start = le64(sb + 88);

   if (major != 4 || minor != 0)
      bad(&c, "version %u.%u: only 4.0 is supported", major, minor);
   if (block_size < 4096 || block_size > 1048576 || (block_size & (block_size - 1)))
      bad(&c, "block_size %u: not a power of two from 4096 to 1048576", block_size);
   if (block_log > 31 || (1u << block_log) != block_size)
      bad(&c, "block_log %u does not match block_size %u", block_log, block_size);
   if (comp < 1 || comp > 6)
      bad(&c, "compressor %u is unknown", comp);
#ifdef CTR_INPROCESS_FUSE
   /* squashfuse_ll is built from the same library: what it can't decode, neither can we. */
   if (!sqfs_decompressor_get((sqfs_compression_type)comp))
      bad(&c, "compressor %s is not supported by this build", COMPRESSORS[comp]);
#endif
   if (no_ids == 0)
      bad(&c, "id_count 0: every image has at least one owner id");
   if (inodes == 0)
      bad(&c, "inode_count 0: every image has a root inode");
   if (bytes_used < SB_SIZE || bytes_used > c.room)
      bad(&c, "bytes_used %llu, but %llu bytes are there", (unsigned long long)bytes_used,
          (unsigned long long)c.room);

   /* The tables in their order on disk; each must start after the one before. An absent
    * optional table is skipped in the order. */
   struct { const char *name; uint64_t start; bool optional; } t[] = {
      { "inode", inode_start, false }, { "directory", dir_start, false },
      { "fragment", frag_start, fragments == 0 }, { "export", export_start, true },
      { "id", id_start, false }, { "xattr", xattr_start, true },
   };
   enum { N = sizeof(t) / sizeof(*t) };
   uint64_t prev = SB_SIZE;
   const char *prev_name = "superblock";
   for (size_t i = 0; i < N; i++) {
      if (t[i].start == ABSENT && t[i].optional)
         continue;
      if (t[i].start == ABSENT)
         bad(&c, "%s table missing", t[i].name);
      /* Equal starts are allowed: an empty table (no fragments) takes no room, and the
       * index checks below catch a non-empty one that overlaps the next. */
      if (t[i].start < prev || t[i].start >= bytes_used)
         bad(&c, "%s table start %llu is not between the %s and bytes_used %llu", t[i].name,
             (unsigned long long)t[i].start, prev_name, (unsigned long long)bytes_used);
      prev = t[i].start;
      prev_name = t[i].name;
   }
   /* Where each table's index must end: the start of the next present table. */
   uint64_t next[N];
   uint64_t after = bytes_used;
   for (size_t i = N; i-- > 0;) {
      next[i] = after;
      if (t[i].start != ABSENT)
         after = t[i].start;
   }
   if (dir_start - inode_start < 2)
      bad(&c, "inode table is empty");
   /* The root inode reference: a block inside the inode table, an offset inside it. */
   if (root >> 48 || (root >> 16) >= dir_start - inode_start || (root & 0xffff) >= MD_SIZE)
      bad(&c, "root inode reference %#llx is outside the inode table", (unsigned long long)root);
   if (frag_start != ABSENT && fragments)
      check_index(&c, "fragment", frag_start, fragments, 16, dir_start, next[2]);
   if (export_start != ABSENT)
      check_index(&c, "export", export_start, inodes, 8, dir_start, next[3]);
   check_index(&c, "id", id_start, no_ids, 4, dir_start, next[4]);
   if (xattr_start != ABSENT) {
      unsigned char x[16];
      if (next[5] - xattr_start < sizeof(x))
         bad(&c, "xattr id table at %llu ends past bytes_used", (unsigned long long)xattr_start);
      read_at(&c, x, sizeof(x), xattr_start, "xattr id table");
      uint64_t kv_start = le64(x);
      uint32_t ids = le32(x + 8);
      if (kv_start < dir_start || kv_start >= xattr_start)
         bad(&c, "xattr table start %llu is outside %llu..%llu", (unsigned long long)kv_start,
             (unsigned long long)dir_start, (unsigned long long)xattr_start);
      check_index(&c, "xattr id", xattr_start + sizeof(x), ids, 16, kv_start, next[5]);
   }
   debug("SquashFS checked: %u inodes, block size %u, %s, %llu bytes", inodes, block_size,
         COMPRESSORS[comp], (unsigned long long)bytes_used);
}
