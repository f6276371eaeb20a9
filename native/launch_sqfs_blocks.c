/* The built-in FUSE server's cache of decompressed data and fragment blocks, shared by
 * its worker threads (launch_sqfs_serve.c).
 *
 * libsquashfuse 0.1.105's caches can't be shared between threads (cache.h: "No thread
 * safety"): sqfs_data_cache returns a block with no reference held, and the next miss
 * may free it while it is being copied from. Each worker could keep caches of its own,
 * but the kernel hands a single reader's requests to the workers in turn, so every
 * fragment block (which holds many small files) would be decompressed once per worker.
 * So blocks live here: BLOCKS slots under one mutex, each block held by a count of
 * readers and evicted least recently used, only when nobody holds it. Decompression
 * (libsquashfuse's sqfs_data_block_read: pread, then a decompressor that keeps no state
 * between calls) runs outside the lock, so workers decompress in parallel; two workers
 * that miss the same block at once both decompress it, and the second copy is dropped.
 *
 * Read-ahead: a reader of many small files waits for each fragment block (where
 * mksquashfs packs them, in the order it met them: a directory's files one after
 * another) to be decompressed, one at a time, on one core. So when a file's fragment
 * is read, the next fragment is handed to a read-ahead thread, which decompresses it
 * into this cache meanwhile, on another core. Not a file's next data block: the
 * kernel reads ahead within a file itself, and the thread then only decompressed the
 * same block a second time (exec of a 1 MB busybox: 1.5x slower).
 * The hint is only a fragment's index: the thread checks it as a reader would
 * (sqd_fragment_block's bounds) and drops it when the queue is full or it is cached.
 * Off unless CTR_FUSE_READAHEAD=1: on this project's 2-vCPU VM, loaded by other work,
 * it measured no gain (a cold read of Python's stdlib 2.14x bare with it, 1.51x
 * without, 5 rounds at load 9-13: within that noise, but not a win); to be measured
 * on a quiet node with more cores before it is made the default. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef CTR_INPROCESS_FUSE
#include "launch_sqfs.h"

enum { BLOCKS = 64 }; /* 8 MiB of 128 KiB blocks, as the 32 + 32 kept before */

/* The slots' bytes: one mapping of BLOCKS blocks, made when the first block is read.
 * Each start of a container is a fresh server, so every block it decompresses lands in
 * memory it has never touched: with a malloc'd buffer per block (libsquashfuse's
 * sqfs_data_block_read), exec of a 2 MB busybox cost the server ~500 page faults, one
 * per 4 KiB decompressed, and in a VM each is a trap to the hypervisor (perf: most of
 * the server's system time). The mapping asks for 2 MiB huge pages (MADV_HUGEPAGE; at
 * most four, for 128 KiB blocks), and a slot is populated in one call when first used
 * (MADV_POPULATE_WRITE, Linux 5.14), which takes the huge page where the kernel gives
 * one and maps the slot's small pages at once where it doesn't. Measured, interleaved
 * against small pages populated per slot: /bin/true 0.91x, python3 -c pass 0.85x;
 * without either, twice the faults (1,267 vs 787 a /bin/true start). The huge page can
 * cost a compaction on a node with fragmented memory: a bounded one, four at most. A
 * slot's bytes are reused in place when it is evicted. */
static char *g_arena;
static size_t g_block_size;

static void arena_init(const sqfs *fs)
{
   size_t bs = fs->sb.block_size, huge = 2u << 20;
   if (bs < 4096 || bs > (1u << 20))
      return; /* not a SquashFS block size (sqfs_check_image refuses these) */
   char *m = mmap(NULL, BLOCKS * bs + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
   if (m == MAP_FAILED)
      return; /* then blocks are malloc'd, one by one */
   g_arena = (char *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
   madvise(g_arena, BLOCKS * bs, MADV_HUGEPAGE); /* a hint: THP "never" ignores it */
   g_block_size = bs;
}

static struct slot {
   uint64_t pos;      /* 0: empty or being filled (no block starts there: block_ok) */
   uint32_t hdr;
   sqfs_block block;  /* data: the slot's bytes in the arena */
   unsigned refs;
   uint64_t used;     /* when last taken, for LRU */
   bool populated;    /* its pages are mapped (arena_init) */
} g_slots[BLOCKS];
static uint64_t g_clock;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static int find(uint64_t pos, uint32_t hdr)
{
   for (int i = 0; i < BLOCKS; i++)
      if (g_slots[i].pos == pos && g_slots[i].hdr == hdr)
         return i;
   return -1;
}

static sqfs_block *take(int i, int *slot)
{
   g_slots[i].refs++;
   g_slots[i].used = ++g_clock;
   *slot = i;
   return &g_slots[i].block;
}

/* The block at POS (header HDR, whose size block_ok has checked) into OUT, which holds
 * a whole block: pread, then the image's decompressor, as sqfs_data_block_read does,
 * but into OUT and through this thread's own input buffer, reused. */
static int block_read(sqfs *fs, uint64_t pos, uint32_t hdr, void *out, size_t *size)
{
   static __thread char *in;
   size_t bs = fs->sb.block_size, n = hdr & ~(uint32_t)SQUASHFS_COMPRESSED_BIT_BLOCK;
   bool compressed = !(hdr & SQUASHFS_COMPRESSED_BIT_BLOCK);
   if (n == 0 || n > bs)
      return EIO;
   if (!compressed) {
      *size = n;
      return pread(fs->fd, out, n, (off_t)(pos + fs->offset)) == (ssize_t)n ? 0 : EIO;
   }
   if (!in && !(in = malloc(bs)))
      return ENOMEM;
   if (pread(fs->fd, in, n, (off_t)(pos + fs->offset)) != (ssize_t)n)
      return EIO;
   *size = bs;
   return fs->decompressor(in, n, out, size) == SQFS_OK ? 0 : EIO;
}

/* A block of the reader's alone, malloc'd (every slot held, or no arena). */
static int block_alone(sqfs *fs, uint64_t pos, uint32_t hdr, sqfs_block **block, int *slot)
{
   sqfs_block *b = malloc(sizeof(*b));
   if (!b || !(b->data = malloc(fs->sb.block_size))) {
      free(b);
      return ENOMEM;
   }
   int err = block_read(fs, pos, hdr, b->data, &b->size);
   if (err) {
      sqfs_block_dispose(b);
      return err;
   }
   *block = b;
   *slot = -1;
   return 0;
}

int sqd_block_get(sqfs *fs, uint64_t pos, uint32_t hdr, sqfs_block **block, int *slot)
{
   pthread_mutex_lock(&g_lock);
   int i = find(pos, hdr);
   if (i >= 0) {
      *block = take(i, slot);
      pthread_mutex_unlock(&g_lock);
      return 0;
   }
   int victim = -1;
   for (i = 0; g_arena && i < BLOCKS; i++)
      if (g_slots[i].refs == 0 && (victim < 0 || g_slots[i].used < g_slots[victim].used))
         victim = i;
   if (victim < 0) {
      pthread_mutex_unlock(&g_lock);
      return block_alone(fs, pos, hdr, block, slot);
   }
   /* Held while it fills, with no position yet: no one else takes or finds it. The
    * decompression runs outside the lock, so workers decompress in parallel; two that
    * miss the same block at once both decompress it, and the second copy is dropped. */
   struct slot *v = &g_slots[victim];
   bool populated = v->populated;
   *v = (struct slot){ .refs = 1, .used = ++g_clock, .block = { 0, g_arena + (size_t)victim * g_block_size }, .populated = true };
   pthread_mutex_unlock(&g_lock);
   if (!populated)
      madvise(v->block.data, g_block_size, MADV_POPULATE_WRITE); /* EINVAL before 5.14: faulted in */
   size_t size;
   int err = block_read(fs, pos, hdr, v->block.data, &size);
   pthread_mutex_lock(&g_lock);
   v->refs = 0;
   if (!err && (i = find(pos, hdr)) >= 0) { /* another worker read it meanwhile */
      *block = take(i, slot);
   } else if (!err) {
      v->pos = pos;
      v->hdr = hdr;
      v->block.size = size;
      *block = take(victim, slot);
   }
   pthread_mutex_unlock(&g_lock);
   return err;
}

void sqd_block_put(sqfs_block *block, int slot)
{
   if (slot < 0) {
      sqfs_block_dispose(block);
      return;
   }
   pthread_mutex_lock(&g_lock);
   g_slots[slot].refs--;
   pthread_mutex_unlock(&g_lock);
}

/* The read-ahead queue: fragment indexes waiting for the thread; a full queue drops new
 * ones (a hint is never needed). */
enum { HINTS = 16 };
static uint64_t g_hints[HINTS];
static unsigned g_hint_head, g_hint_n;
static pthread_cond_t g_hint_cond = PTHREAD_COND_INITIALIZER;
static sqfs *g_ra_fs; /* the server's image, once the thread runs */

static bool cached(uint64_t pos, uint32_t hdr)
{
   pthread_mutex_lock(&g_lock);
   bool in = find(pos, hdr) >= 0;
   pthread_mutex_unlock(&g_lock);
   return in;
}

static void *readahead_thread(void *arg)
{
   (void)arg;
   for (;;) {
      pthread_mutex_lock(&g_lock);
      while (g_hint_n == 0)
         pthread_cond_wait(&g_hint_cond, &g_lock);
      uint64_t idx = g_hints[g_hint_head];
      g_hint_head = (g_hint_head + 1) % HINTS;
      g_hint_n--;
      pthread_mutex_unlock(&g_lock);
      uint64_t pos;
      uint32_t hdr;
      sqfs_block *b;
      int slot;
      if (!sqd_fragment_block(g_ra_fs, idx, &pos, &hdr) && !cached(pos, hdr) &&
          sqd_block_get(g_ra_fs, pos, hdr, &b, &slot) == 0)
         sqd_block_put(b, slot);
   }
   return NULL;
}

static void readahead_start(sqfs *fs)
{
   const char *v = getenv("CTR_FUSE_READAHEAD");
   pthread_t t;
   pthread_attr_t a;
   if (!v || strcmp(v, "1") || pthread_attr_init(&a))
      return;
   g_ra_fs = fs;
   if (pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED) || pthread_create(&t, &a, readahead_thread, NULL))
      g_ra_fs = NULL;
   pthread_attr_destroy(&a);
}

void sqd_readahead_fragment(uint64_t idx)
{
   if (!g_ra_fs)
      return;
   pthread_mutex_lock(&g_lock);
   if (g_hint_n < HINTS) {
      g_hints[(g_hint_head + g_hint_n) % HINTS] = idx;
      g_hint_n++;
      pthread_cond_signal(&g_hint_cond);
   }
   pthread_mutex_unlock(&g_lock);
}

/* Once, in the server, before its workers start: the slots' mapping, and the read-ahead
 * thread when CTR_FUSE_READAHEAD=1. */
void sqd_blocks_init(sqfs *fs)
{
   arena_init(fs);
   readahead_start(fs);
}
#endif
