/* The image's environment scripts without a shell, when they are simple enough.
 *
 * The files /.singularity.d/env/NN-name.sh are shell scripts, and sourcing them with the image's /bin/sh
 * costs an exec of the shell and its start-up on every launch (a few ms through a cold
 * FUSE mount). Most of them are only assignments: ctr's own (%environment, OCI ENV) and
 * many Apptainer ones. This file evaluates exactly that subset, all or nothing:
 *
 *   # comment             blank lines             export NAME
 *   [export] NAME=VALUE   VALUE made of unquoted words [A-Za-z0-9_./:,+=@%-],
 *                         'single-quoted' text, "double-quoted" text with \" \\ \$ \`
 *                         escapes, and $NAME / ${NAME} expansions (unquoted or in "").
 *
 * A script with anything else (a command, a conditional, $(...), a glob) is not parsed
 * at all, and the launcher falls back to sourcing the scripts with /bin/sh. Exported
 * semantics are kept: NAME=VALUE without export changes the environment only if NAME is
 * already in it, otherwise it is a shell variable, visible to later expansions only. */
#define _GNU_SOURCE
#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"

/* An env script larger than this is not an image's environment. */
#define ENV_SCRIPT_MAX (1u << 20)

struct assign {
   char *name;
   char *raw;      /* the VALUE text, expanded at apply time */
   bool exported;  /* "export" present */
   bool value;     /* has "=VALUE" (else: bare "export NAME") */
};

struct script {
   struct assign *a;
   size_t n;
};

static bool name_char(char c, bool first)
{
   return c == '_' || isalpha((unsigned char)c) || (!first && isdigit((unsigned char)c));
}

static bool word_char(char c)
{
   return isalnum((unsigned char)c) || strchr("_./:,+=@%-", c);
}

/* $NAME or ${NAME} at S (S[0] == '$'): the character after it, or NULL if it is some
 * other expansion ($(...), $1, ${X:-y}...). */
static const char *skip_expansion(const char *s)
{
   const char *q = s + 1;
   bool braced = *q == '{';
   if (braced)
      q++;
   if (!name_char(*q, true))
      return NULL;
   while (name_char(*q, false))
      q++;
   if (braced && *q++ != '}')
      return NULL;
   return q;
}

/* Does TEXT (a VALUE) consist only of the accepted forms? Sets *end past it. */
static bool value_ok(const char *s, const char **end)
{
   while (*s && *s != '\n' && *s != ' ' && *s != '\t') {
      if (*s == '\'') {
         const char *q = strchr(s + 1, '\'');
         if (!q)
            return false;
         s = q + 1;
      } else if (*s == '"') {
         for (s++; *s != '"'; s++) {
            if (!*s || *s == '`')
               return false;
            if (*s == '\\' && s[1])
               s++;
            else if (*s == '$') {
               const char *q = skip_expansion(s);
               if (!q)
                  return false;
               s = q - 1;
            }
         }
         s++;
      } else if (*s == '$') {
         if (!(s = skip_expansion(s)))
            return false;
      } else if (word_char(*s))
         s++;
      else
         return false;
   }
   *end = s;
   return true;
}

static bool parse_script(const char *text, struct script *sc)
{
   for (const char *line = text; *line; ) {
      const char *nl = strchrnul(line, '\n');
      const char *s = line;
      while (*s == ' ' || *s == '\t')
         s++;
      if (s < nl && *s != '#') {
         struct assign a = {0};
         if (!strncmp(s, "export", 6) && (s[6] == ' ' || s[6] == '\t')) {
            a.exported = true;
            for (s += 6; *s == ' ' || *s == '\t'; s++)
               ;
         }
         const char *n0 = s;
         if (!name_char(*s, true))
            return false;
         while (name_char(*s, false))
            s++;
         a.name = strndup(n0, (size_t)(s - n0));
         if (*s == '=') {
            const char *v0 = ++s, *vend;
            if (!value_ok(v0, &vend))
               return false;
            a.raw = strndup(v0, (size_t)(vend - v0));
            a.value = true;
            s = vend;
         } else if (!a.exported)
            return false; /* a bare word: a command */
         while (*s == ' ' || *s == '\t')
            s++;
         if (s != nl && *s != '#')
            return false; /* more than one assignment, or a command after it */
         sc->a = realloc(sc->a, (sc->n + 1) * sizeof(*sc->a));
         if (!sc->a)
            DIE_PLAIN("out of memory");
         sc->a[sc->n++] = a;
      }
      line = *nl ? nl + 1 : nl;
   }
   return true;
}

/* Shell variables that are not (yet) exported. */
static char **locals;
static size_t n_locals;

static const char *lookup(const char *name, size_t len)
{
   for (size_t i = n_locals; i-- > 0; )
      if (!strncmp(locals[i], name, len) && locals[i][len] == '=')
         return locals[i] + len + 1;
   char *n = strndup(name, len);
   const char *v = getenv(n);
   free(n);
   return v ? v : "";
}

struct buf {
   char *s;
   size_t n, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
   if (b->n + n + 1 > b->cap) {
      b->cap = (b->n + n + 1) * 2;
      b->s = realloc(b->s, b->cap);
      if (!b->s)
         DIE_PLAIN("out of memory");
   }
   memcpy(b->s + b->n, s, n);
   b->n += n;
   b->s[b->n] = '\0';
}

/* $NAME or ${NAME} at S (S[0] == '$'); returns the characters consumed. */
static size_t expand(struct buf *b, const char *s)
{
   const char *n = s + 1;
   bool braced = *n == '{';
   if (braced)
      n++;
   size_t len = 0;
   while (name_char(n[len], len == 0))
      len++;
   const char *v = lookup(n, len);
   put(b, v, strlen(v));
   return (size_t)(n - s) + len + (braced ? 1 : 0);
}

static char *evaluate(const char *raw)
{
   struct buf b = {0};
   put(&b, "", 0);
   for (const char *s = raw; *s; ) {
      if (*s == '\'') {
         const char *q = strchr(s + 1, '\'');
         put(&b, s + 1, (size_t)(q - s - 1));
         s = q + 1;
      } else if (*s == '"') {
         for (s++; *s != '"'; ) {
            if (*s == '\\' && strchr("\"\\$`", s[1])) {
               put(&b, s + 1, 1);
               s += 2;
            } else if (*s == '$')
               s += expand(&b, s);
            else
               put(&b, s++, 1);
         }
         s++;
      } else if (*s == '$')
         s += expand(&b, s);
      else
         put(&b, s++, 1);
   }
   return b.s;
}

static void apply(const struct assign *a)
{
   if (!a->value) {
      /* export NAME: a shell variable becomes an environment variable */
      size_t len = strlen(a->name);
      for (size_t i = n_locals; i-- > 0; )
         if (!strncmp(locals[i], a->name, len) && locals[i][len] == '=') {
            setenv(a->name, locals[i] + len + 1, 1);
            return;
         }
      return;
   }
   char *v = evaluate(a->raw);
   if (a->exported || getenv(a->name))
      setenv(a->name, v, 1);
   else {
      locals = realloc(locals, (n_locals + 1) * sizeof(char *));
      if (!locals)
         DIE_PLAIN("out of memory");
      locals[n_locals++] = xasprintf("%s=%s", a->name, v);
   }
   free(v);
}

bool env_scripts_apply_simple(char **paths, size_t n)
{
   struct script *sc = xcalloc(n, sizeof(*sc));
   for (size_t i = 0; i < n; i++) {
      /* Unreadable or not a regular file: skipped, as the shell path skips it too
       * ([ -f ] && [ -r ]); a FIFO must not block the launch. */
      int fd = open(paths[i], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      struct stat st;
      if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
         if (fd >= 0)
            close(fd);
         continue;
      }
      char *text = read_bounded(fd, ENV_SCRIPT_MAX, paths[i], NULL);
      close(fd);
      bool ok = parse_script(text, &sc[i]);
      free(text);
      if (!ok) {
         debug("%s is not plain assignments: sourcing the env scripts with /bin/sh", paths[i]);
         return false;
      }
   }
   for (size_t i = 0; i < n; i++)
      for (size_t k = 0; k < sc[i].n; k++)
         apply(&sc[i].a[k]);
   debug("env scripts applied without a shell");
   return true;
}

/* An override's value as launch_exec.c quotes it ("..."): can it be evaluated here? */
bool env_quoted_ok(const char *q)
{
   const char *end;
   return value_ok(q, &end) && *end == '\0';
}

/* Its value, $NAME and ${NAME} expanded against the environment and the env scripts'
 * shell variables; the caller checked it with env_quoted_ok. */
char *env_eval_quoted(const char *q)
{
   return evaluate(q);
}
