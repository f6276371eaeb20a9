/* The built-in FUSE server's multi-threaded loop, on its own: libfuse's API version is
 * chosen per translation unit, and libsquashfuse's headers fix it at 3.2 (config.h),
 * whose loop can't bound the number of threads (libfuse starts up to 10). Here, with
 * the 3.12 API, the loop runs at most THREADS workers and keeps them all (each holds
 * its own block caches: launch_sqfs_serve.c). */
#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

#ifdef CTR_INPROCESS_FUSE
int sqd_loop_mt(struct fuse_session *se, unsigned threads);

int sqd_loop_mt(struct fuse_session *se, unsigned threads)
{
   struct fuse_loop_config *cfg = fuse_loop_cfg_create();
   if (!cfg)
      return -1;
   fuse_loop_cfg_set_max_threads(cfg, threads);
   fuse_loop_cfg_set_idle_threads(cfg, threads);
   int r = fuse_session_loop_mt(se, cfg);
   fuse_loop_cfg_destroy(cfg);
   return r;
}
#endif
