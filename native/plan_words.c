/* The launch plan's words, and what every reader of a plan shares (see plan_words.h):
 * the launcher, the Slurm plugin and the parser's test link this file, so that a plan
 * is split, walked and checked one way only. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plan_words.h"

const struct plan_word_def plan_word_defs[PW_COUNT] = {
#define WORD(id, name, arity, args, doc) [PW_##id] = { name, arity, args },
#include "plan_words.def"
#undef WORD
};

/* About 30 words, looked up once each per launch: a linear scan is as fast as anything
 * cleverer here, and obviously right. */
enum plan_word plan_word_find(const char *s)
{
   for (int i = 0; i < PW_COUNT; i++)
      if (!strcmp(s, plan_word_defs[i].name))
         return (enum plan_word)i;
   return PW_NONE;
}

#define ERR(...) (snprintf(err, PLAN_ERR_MAX, __VA_ARGS__), PLAN_BAD)

int plan_split(char *buf, size_t len, struct plan_words *w, char *err)
{
   memset(w, 0, sizeof(*w));
   if (len > PLAN_MAX_BYTES)
      return ERR("%zu bytes, over the limit of %u MiB", len, PLAN_MAX_BYTES >> 20);
   char *p = buf, *end = buf + len;
   if (len >= 2 && p[0] == '#' && p[1] == '!') {
      char *nl = memchr(p, '\n', len);
      if (!nl)
         return ERR("no plan after the #! line");
      *nl = '\0';
      w->shebang = p + 2;
      char *sp = strchr(p + 2, ' ');
      if (sp)
         *sp = '\0';
      p = nl + 1;
   }
   if (p < end && end[-1] != '\0')
      return ERR("truncated (last word not NUL-terminated)");
   size_t n = 0;
   for (char *q = p; q < end; q += strlen(q) + 1)
      if (++n > PLAN_MAX_WORDS)
         return ERR("more than %d words", PLAN_MAX_WORDS);
   w->v = calloc(n + 1, sizeof(char *));
   if (!w->v)
      return ERR("out of memory");
   for (char *q = p; q < end; q += strlen(q) + 1)
      w->v[w->n++] = q;
   return PLAN_OK;
}

int plan_scan(char **v, int n, int *end, char *err)
{
   /* The version first, before any other word is looked at: a plan of another version
    * may use words this launcher doesn't know, or the same words meaning other things. */
   unsigned long long version;
   if (n < 2 || strcmp(v[0], plan_word_defs[PW_PLAN_VERSION].name)) {
      snprintf(err, PLAN_ERR_MAX, "version none, this launcher speaks version %d", PLAN_VERSION);
      return PLAN_BAD_VERSION;
   }
   if (!plan_number(v[1], 10, INT_MAX, &version) || version != PLAN_VERSION) {
      snprintf(err, PLAN_ERR_MAX, "version %.40s, this launcher speaks version %d", v[1], PLAN_VERSION);
      return PLAN_BAD_VERSION;
   }
   if (n > PLAN_MAX_WORDS)
      return ERR("more than %d words", PLAN_MAX_WORDS);
   int i = 2;
   while (i < n && strcmp(v[i], "--")) {
      enum plan_word id = plan_word_find(v[i]);
      if (id == PW_NONE)
         return ERR("unknown word %.100s", v[i]);
      if (id == PW_PLAN_VERSION)
         return ERR("%s is the first word only", v[i]);
      const struct plan_word_def *d = &plan_word_defs[id];
      if (n - 1 - i < d->arity)
         return ERR("%s needs %d argument%s (%s), the plan ends after %d", d->name, d->arity,
                    d->arity > 1 ? "s" : "", d->args, n - 1 - i);
      i += 1 + d->arity;
   }
   *end = i;
   return PLAN_OK;
}

int plan_find(char **v, int end, enum plan_word id)
{
   for (int i = 0; i < end; ) {
      enum plan_word w = plan_word_find(v[i]);
      if (w == id)
         return i;
      if (w == PW_NONE)
         return -1;
      i += 1 + plan_word_defs[w].arity;
   }
   return -1;
}

bool plan_number(const char *s, int base, unsigned long long max, unsigned long long *out)
{
   /* strtoull alone would take " 12", "+12", "-1" (as ULLONG_MAX) and "0x12". */
   if (!*s)
      return false;
   for (const char *c = s; *c; c++)
      if (*c < '0' || *c >= '0' + base)
         return false;
   char *end;
   errno = 0;
   unsigned long long x = strtoull(s, &end, base);
   if (errno || *end || x > max)
      return false;
   *out = x;
   return true;
}

bool plan_bind_mode(const char *s, bool *ro, bool *optional)
{
   static const char *const modes[] = { "rw", "ro", "rw?", "ro?" };
   for (int i = 0; i < 4; i++)
      if (!strcmp(s, modes[i])) {
         *ro = i & 1;
         *optional = i >= 2;
         return true;
      }
   return false;
}

int plan_check(char **v, int end, int squashfuse, plan_problem_fn *problem, void *ctx)
{
   int problems = 0;
   const char *sqfuse = NULL;
   bool squashfs = false;
   for (int i = 0; i < end; ) {
      enum plan_word id = plan_word_find(v[i]);
      if (id == PW_NONE)
         break;
      char **a = v + i + 1;
      switch (id) {
      case PW_IMAGE:
      case PW_IMAGE_DIR:
         squashfs = id == PW_IMAGE;
         if (access(a[0], R_OK) < 0)
            problem(ctx, "image", a[0], errno), problems++;
         break;
      case PW_SQUASHFUSE:
         sqfuse = a[0];
         break;
      case PW_BIND:
         if (!strchr(a[2], '?') && access(a[0], F_OK) < 0)
            problem(ctx, "bind source", a[0], errno), problems++;
         break;
      case PW_SUBIDS:
         for (int k = 0; k < 2; k++)
            if (access(a[k], X_OK) < 0)
               problem(ctx, k ? "newgidmap" : "newuidmap", a[k], errno), problems++;
         break;
      case PW_SLIRP4NETNS:
         if (access(a[0], X_OK) < 0)
            problem(ctx, "slirp4netns", a[0], errno), problems++;
         break;
      case PW_OVERLAY_DIR:
         if (access(a[0], W_OK) < 0)
            problem(ctx, "overlay directory", a[0], errno), problems++;
         break;
      case PW_OVERLAY_IMAGE:
         if (access(a[0], R_OK | W_OK) < 0)
            problem(ctx, "overlay image", a[0], errno), problems++;
         if (access(a[1], X_OK) < 0)
            problem(ctx, "fuse2fs", a[1], errno), problems++;
         if (access(a[2], X_OK) < 0)
            problem(ctx, "fuse-overlayfs", a[2], errno), problems++;
         break;
      case PW_OVERLAY_LOWER:
         if (access(a[0], R_OK) < 0)
            problem(ctx, "overlay", a[0], errno), problems++;
         break;
      default:
         break;
      }
      i += 1 + plan_word_defs[id].arity;
   }
   if (squashfs && squashfuse == PLAN_SQFUSE_NEEDED && !sqfuse)
      problem(ctx, "squashfuse_ll", NULL, 0), problems++;
   else if (squashfs && squashfuse != PLAN_SQFUSE_UNNEEDED && sqfuse && access(sqfuse, X_OK) < 0)
      problem(ctx, "squashfuse_ll", sqfuse, errno), problems++;
   return problems;
}

char *plan_serialize(const char *launcher, char *const *v, int n, size_t *len)
{
   size_t total = strlen(launcher) + sizeof("#! --plan\n");
   for (int i = 0; i < n; i++) {
      size_t l = strlen(v[i]) + 1;
      if (total > SIZE_MAX - l)
         return NULL;
      total += l;
   }
   char *buf = malloc(total);
   if (!buf)
      return NULL;
   size_t at = (size_t)snprintf(buf, total, "#!%s --plan\n", launcher);
   for (int i = 0; i < n; i++) {
      size_t l = strlen(v[i]) + 1;
      memcpy(buf + at, v[i], l);
      at += l;
   }
   *len = at;
   return buf;
}
