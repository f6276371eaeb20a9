/* Small helpers: paths, hex, whole-file read and atomic write. Errors are left in errno
 * for the caller, which knows what it was doing and says so. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctr_spank.h"

char *ctr_sprintf(const char *fmt, ...)
{
   va_list ap;
   char *s;
   va_start(ap, fmt);
   int r = vasprintf(&s, fmt, ap);
   va_end(ap);
   return r < 0 ? NULL : s;
}

char *ctr_job_dir(uid_t uid, uint32_t job)
{
   return ctr_sprintf("%s/ctr.%u.%u", g_conf.stage_dir, (unsigned)uid, (unsigned)job);
}

char *ctr_plan_path(uid_t uid, uint32_t job, uint32_t step)
{
   return ctr_sprintf("%s/ctr.%u.%u/step%u.plan", g_conf.stage_dir, (unsigned)uid, (unsigned)job, (unsigned)step);
}

char *ctr_hex_encode(const unsigned char *buf, size_t len)
{
   static const char digits[] = "0123456789abcdef";
   char *out = malloc(2 * len + 1);
   if (!out)
      return NULL;
   for (size_t i = 0; i < len; i++) {
      out[2 * i] = digits[buf[i] >> 4];
      out[2 * i + 1] = digits[buf[i] & 15];
   }
   out[2 * len] = '\0';
   return out;
}

static int nibble(char c)
{
   if (c >= '0' && c <= '9')
      return c - '0';
   if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
   return -1;
}

unsigned char *ctr_hex_decode(const char *hex, size_t *len)
{
   size_t n = strlen(hex);
   if (n % 2) {
      errno = EINVAL;
      return NULL;
   }
   unsigned char *out = malloc(n / 2 + 1);
   if (!out)
      return NULL;
   for (size_t i = 0; i < n / 2; i++) {
      int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) {
         free(out);
         errno = EINVAL;
         return NULL;
      }
      out[i] = (unsigned char)(hi << 4 | lo);
   }
   out[n / 2] = '\0';
   *len = n / 2;
   return out;
}

char *ctr_read_file(const char *path, size_t *len)
{
   int fd = open(path, O_RDONLY | O_CLOEXEC);
   if (fd < 0)
      return NULL;
   size_t cap = 8192, n = 0;
   char *buf = malloc(cap + 1);
   for (;;) {
      if (!buf)
         break;
      if (n == cap) {
         char *b = realloc(buf, (cap *= 2) + 1);
         if (!b) {
            free(buf);
            buf = NULL;
            break;
         }
         buf = b;
      }
      ssize_t r = read(fd, buf + n, cap - n);
      if (r < 0 && errno == EINTR)
         continue;
      if (r < 0) {
         int e = errno;
         free(buf);
         close(fd);
         errno = e;
         return NULL;
      }
      if (r == 0)
         break;
      n += (size_t)r;
   }
   close(fd);
   if (buf) {
      buf[n] = '\0';
      *len = n;
   }
   return buf;
}

/* Write PATH.tmp.<pid>, then rename: a reader never sees half a file. */
int ctr_write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode)
{
   char *tmp = ctr_sprintf("%s.tmp.%d", path, (int)getpid());
   if (!tmp)
      return -1;
   int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
   if (fd < 0) {
      free(tmp);
      return -1;
   }
   const char *p = buf;
   size_t left = len;
   while (left > 0) {
      ssize_t w = write(fd, p, left);
      if (w < 0 && errno == EINTR)
         continue;
      if (w < 0)
         goto fail;
      p += w;
      left -= (size_t)w;
   }
   if (fchmod(fd, mode) < 0 || close(fd) < 0) {
      fd = -1;
      goto fail;
   }
   if (rename(tmp, path) < 0) {
      fd = -1;
      goto fail;
   }
   free(tmp);
   return 0;
fail:;
   int e = errno;
   if (fd >= 0)
      close(fd);
   unlink(tmp);
   free(tmp);
   errno = e;
   return -1;
}
