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
 * that miss the same block at once both decompress it, and the second copy is dropped. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#ifdef CTR_INPROCESS_FUSE
#include "launch_sqfs.h"

enum { BLOCKS = 64 }; /* 8 MiB of 128 KiB blocks, as the 32 + 32 kept before */

static struct slot {
   uint64_t pos;      /* 0: empty (no block starts there: block_ok) */
   uint32_t hdr;
   sqfs_block *block;
   unsigned refs;
   uint64_t used;     /* when last taken, for LRU */
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
   return g_slots[i].block;
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
   pthread_mutex_unlock(&g_lock);
   sqfs_block *b;
   if (sqfs_data_block_read(fs, (sqfs_off_t)pos, hdr, &b) != SQFS_OK)
      return EIO;
   pthread_mutex_lock(&g_lock);
   if ((i = find(pos, hdr)) >= 0) { /* another worker read it meanwhile */
      *block = take(i, slot);
      pthread_mutex_unlock(&g_lock);
      sqfs_block_dispose(b);
      return 0;
   }
   int victim = -1;
   for (i = 0; i < BLOCKS; i++)
      if (g_slots[i].refs == 0 && (victim < 0 || g_slots[i].used < g_slots[victim].used))
         victim = i;
   if (victim < 0) { /* every block in use: this one is the reader's alone */
      pthread_mutex_unlock(&g_lock);
      *block = b;
      *slot = -1;
      return 0;
   }
   if (g_slots[victim].block)
      sqfs_block_dispose(g_slots[victim].block);
   g_slots[victim] = (struct slot){ .pos = pos, .hdr = hdr, .block = b };
   *block = take(victim, slot);
   pthread_mutex_unlock(&g_lock);
   return 0;
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
#endif
