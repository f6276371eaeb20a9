/* MPI ping-pong between ranks 0 and 1, with every received message checked.
 *
 *   pingpong [--quick] [--min BYTES] [--max BYTES] [--iters N] [--die-at BYTES]
 *
 * Sizes are the powers of two from --min (default 8) to --max (default 16 MiB). Rank 0
 * fills a buffer with a pattern unique to (size, iteration), sends it; rank 1 receives
 * it, sends it straight back, then checks it; rank 0 checks what came back. Checking
 * and filling lie outside rank 0's timed region (rank 1 checks after echoing, while
 * rank 0 checks), so the numbers are the transfer's. --quick: 3 iterations per size
 * (tests). --die-at BYTES: rank 1 kills itself with SIGKILL when it reaches that size
 * (tests: a rank dying mid-run).
 *
 * Output, one record a line, `key=value` words (rank 0; errors from any rank):
 *   ns kind=user rank0=INODE rank1=INODE same=1|0     (also kind=mnt)
 *   pp size=BYTES iters=N lat_us=X bw_MBps=Y ok=1     latency: half a round trip
 *   done sizes=K ok=1
 * A mismatch prints `pingpong: mismatch rank=R size=S iter=I byte=B got=0xGG want=0xWW`
 * and aborts the job with exit status 3. */
#define _GNU_SOURCE
#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t seed_of(size_t size, int iter)
{
   uint64_t h = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)size << 20) ^ (uint64_t)iter;
   h ^= h >> 31;
   h *= 0xBF58476D1CE4E5B9ULL;
   return h ^ (h >> 29);
}

/* Word k of the pattern: distinct in every word, size and iteration. Sizes are multiples
 * of 8 (powers of two from 8). */
static inline uint64_t word(uint64_t seed, size_t k)
{
   return seed ^ ((uint64_t)k * 0x9E3779B97F4A7C15ULL);
}

static void fill(unsigned char *buf, size_t size, int iter)
{
   uint64_t s = seed_of(size, iter), w;
   for (size_t k = 0; k < size / 8; k++) {
      w = word(s, k);
      memcpy(buf + 8 * k, &w, 8);
   }
}

static void check(const unsigned char *buf, size_t size, int iter, int rank)
{
   uint64_t s = seed_of(size, iter), w, got;
   for (size_t k = 0; k < size / 8; k++) {
      w = word(s, k);
      memcpy(&got, buf + 8 * k, 8);
      if (got == w)
         continue;
      const unsigned char *want = (const unsigned char *)&w;
      for (size_t b = 0; b < 8; b++)
         if (buf[8 * k + b] != want[b]) {
            fprintf(stderr, "pingpong: mismatch rank=%d size=%zu iter=%d byte=%zu got=0x%02x want=0x%02x\n",
                    rank, size, iter, 8 * k + b, buf[8 * k + b], want[b]);
            fflush(stderr);
            MPI_Abort(MPI_COMM_WORLD, 3);
            _exit(3);
         }
   }
}

static unsigned long long ns_inode(const char *kind)
{
   char path[64];
   struct stat st;
   snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
   return stat(path, &st) == 0 ? (unsigned long long)st.st_ino : 0ULL;
}

static size_t parse_size(const char *s)
{
   char *end;
   unsigned long long v = strtoull(s, &end, 10);
   if (*end == 'k' || *end == 'K')
      v <<= 10, end++;
   else if (*end == 'm' || *end == 'M')
      v <<= 20, end++;
   if (*end || v == 0) {
      fprintf(stderr, "pingpong: bad size %s\n", s);
      exit(2);
   }
   return (size_t)v;
}

int main(int argc, char **argv)
{
   size_t min = 8, max = 16u << 20, die_at = 0;
   int quick = 0, fixed_iters = 0;
   for (int i = 1; i < argc; i++) {
      if (!strcmp(argv[i], "--quick") || !strcmp(argv[i], "--verify-only"))
         quick = 1;
      else if (!strcmp(argv[i], "--min") && i + 1 < argc)
         min = parse_size(argv[++i]);
      else if (!strcmp(argv[i], "--max") && i + 1 < argc)
         max = parse_size(argv[++i]);
      else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
         fixed_iters = atoi(argv[++i]);
      else if (!strcmp(argv[i], "--die-at") && i + 1 < argc)
         die_at = parse_size(argv[++i]);
      else {
         fprintf(stderr, "usage: pingpong [--quick] [--min BYTES] [--max BYTES] [--iters N] [--die-at BYTES]\n");
         return 2;
      }
   }
   if (min < 8)
      min = 8;

   MPI_Init(&argc, &argv);
   int rank, nranks;
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_size(MPI_COMM_WORLD, &nranks);
   if (nranks < 2) {
      fprintf(stderr, "pingpong: needs at least 2 ranks, got %d\n", nranks);
      MPI_Abort(MPI_COMM_WORLD, 2);
   }

   /* Which namespaces the ranks are in: the container they share, or not. */
   const char *kinds[] = { "user", "mnt" };
   for (int k = 0; k < 2; k++) {
      unsigned long long mine = ns_inode(kinds[k]);
      unsigned long long *all = rank == 0 ? calloc((size_t)nranks, sizeof(*all)) : NULL;
      MPI_Gather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
      if (rank == 0) {
         int same = 1;
         printf("ns kind=%s", kinds[k]);
         for (int r = 0; r < nranks; r++) {
            printf(" rank%d=%llu", r, all[r]);
            same &= all[r] == all[0];
         }
         printf(" same=%d\n", same);
         free(all);
      }
   }
   fflush(stdout);

   unsigned char *buf = NULL;
   if (max > 0 && posix_memalign((void **)&buf, 4096, max) != 0) {
      fprintf(stderr, "pingpong: cannot allocate %zu bytes\n", max);
      MPI_Abort(MPI_COMM_WORLD, 2);
   }
   memset(buf, 0, max);

   int sizes = 0;
   for (size_t size = min; size <= max; size *= 2) {
      int iters = fixed_iters > 0 ? fixed_iters : quick ? 3 : (int)((64u << 20) / size);
      int warm = quick || fixed_iters > 0 ? 0 : 3;
      if (!quick && fixed_iters <= 0) {
         if (iters < 40)
            iters = 40;
         if (iters > 20000)
            iters = 20000;
      }
      if (rank == 1 && die_at && size >= die_at) {
         fflush(stdout);
         raise(SIGKILL);
      }
      MPI_Barrier(MPI_COMM_WORLD);
      double elapsed = 0;
      for (int it = -warm; it < iters; it++) {
         int tag = it + warm;
         if (rank == 0) {
            fill(buf, size, it + warm);
            double t0 = MPI_Wtime();
            MPI_Send(buf, (int)size, MPI_BYTE, 1, tag, MPI_COMM_WORLD);
            MPI_Recv(buf, (int)size, MPI_BYTE, 1, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            double t = MPI_Wtime() - t0;
            if (it >= 0)
               elapsed += t;
            check(buf, size, it + warm, rank);
            memset(buf, 0, size < 64 ? size : 64); /* a stale echo can't pass next time */
         } else if (rank == 1) {
            MPI_Recv(buf, (int)size, MPI_BYTE, 0, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buf, (int)size, MPI_BYTE, 0, tag, MPI_COMM_WORLD);
            check(buf, size, it + warm, rank);
         }
      }
      if (rank == 0) {
         double half = elapsed / iters / 2;
         printf("pp size=%zu iters=%d lat_us=%.3f bw_MBps=%.1f ok=1\n", size, iters, half * 1e6, size / half / 1e6);
         fflush(stdout);
      }
      sizes++;
      if (size > max / 2)
         break;
   }
   MPI_Barrier(MPI_COMM_WORLD);
   if (rank == 0)
      printf("done sizes=%d ok=1\n", sizes);
   free(buf);
   MPI_Finalize();
   return 0;
}
