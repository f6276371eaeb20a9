/* Bounded readers over libsquashfuse's block caches, for the built-in FUSE server.
 *
 * libsquashfuse 0.1.105's directory parser copies a name of whatever size the image says
 * into a 257-byte stack buffer (squashfuse issue #153), and its metadata reader, table
 * lookups and file reader trust offsets, indexes and block sizes from the image. These
 * replacements read the same on-disk structures but check every size, offset and index
 * against the superblock and the block actually read, and answer an error instead.
 * Only libsquashfuse's block reading, caching and decompression are used underneath. */
#ifndef CTR_LAUNCH_SQFS_H
#define CTR_LAUNCH_SQFS_H

#include <squashfuse/ll.h>
#include <stdbool.h>
#include <stdint.h>

#define SQD_NAME_MAX 256 /* SquashFS names: 1 to 256 bytes */

struct sqd_entry {
   char name[SQD_NAME_MAX + 1];
   size_t name_len;
   uint64_t inode;       /* inode reference: block << 16 | offset */
   int type;             /* basic inode type, 1..7 */
   uint64_t offset;      /* where this entry starts, in bytes from the listing's start */
   uint64_t next_offset; /* where the next one does: the kernel resumes listings there */
};

struct sqd_dir {
   sqfs *fs;
   sqfs_md_cursor cur;
   uint64_t pos, total;  /* bytes read of the listing, and its size */
   uint32_t left;        /* entries left under the current header */
   uint32_t start_block; /* the current header's inode block */
   uint32_t inode_base;
};

/* SIZE bytes at a metadata cursor; entry IDX of COUNT in an indexed table. */
int sqd_md_read(sqfs *fs, sqfs_md_cursor *cur, void *buf, size_t size);
int sqd_table_get(sqfs *fs, sqfs_table *t, uint64_t count, uint64_t idx, void *buf);
/* 0 or an errno value (EIO for a corrupt image) for all of these. */
int sqd_inode(sqfs *fs, uint64_t ref, sqfs_inode *inode);
int sqd_stat(sqfs *fs, sqfs_inode *inode, struct stat *st);
int sqd_open(sqfs *fs, const sqfs_inode *dir, uint64_t offset, struct sqd_dir *d);
/* 1 with the next entry, 0 at the end, or -errno. */
int sqd_next(struct sqd_dir *d, struct sqd_entry *e);
/* 1 found (E filled), 0 not there, or -errno. */
int sqd_lookup(sqfs *fs, const sqfs_inode *dir, const char *name, struct sqd_entry *e);
int sqd_read(sqfs *fs, sqfs_inode *inode, uint64_t off, size_t *size, char *buf);
/* launch_sqfs_blocks.c: a data or fragment block, decompressed, held until put back
 * (the cache every worker thread shares); 0 or EIO. */
int sqd_block_get(sqfs *fs, uint64_t pos, uint32_t hdr, sqfs_block **block, int *slot);
void sqd_block_put(sqfs_block *block, int slot);
/* Have fragment IDX's block decompressed into that cache ahead of its reader, by a
 * thread of its own (CTR_FUSE_READAHEAD=1; else nothing). */
void sqd_readahead_fragment(uint64_t idx);
/* Once, in the server, before its workers start (the cache's memory, that thread). */
void sqd_blocks_init(sqfs *fs);
/* Fragment IDX's block, bounds checked as a reader's (launch_sqfs_read.c); 0 or EIO. */
int sqd_fragment_block(sqfs *fs, uint64_t idx, uint64_t *pos, uint32_t *hdr);
int sqd_readlink(sqfs *fs, sqfs_inode *inode, char **target);
/* Only user.* xattrs; see launch_sqfs_xattr.c for why. */
int sqd_listxattr(sqfs *fs, sqfs_inode *inode, char *buf, size_t *size);
int sqd_getxattr(sqfs *fs, sqfs_inode *inode, const char *name, char *buf, size_t *size);
/* Every id and fragment entry readable (else WHY says which is not). */
int sqd_check_tables(sqfs *fs, char *why, size_t why_len);
/* ENAMETOOLONG (NAME set) for an xattr squashfuse_ll 0.1.105 can't look up safely. */
int sqd_xattr_hazard(sqfs *fs, sqfs_inode *inode, char *name, size_t name_len);
/* Every directory and inode reachable from the root, through the readers above; with
 * XATTRS also their xattrs, through sqd_xattr_hazard. */
int sqd_walk(sqfs *fs, bool xattrs, char *where, size_t where_len);


/* launch_sqfs_serve.c: the image opened and checked by the launcher (one error line and
 * exit 255 if it can't be), then served on the mounted FUSE descriptor by the child. */
struct plan;
sqfs_ll *sqd_open_image(const struct plan *p, int image_fd);
void sqd_serve(sqfs_ll *ll, int fuse_fd) __attribute__((noreturn));
/* launch_fuse.c */
void drop_capabilities(void);

#endif
