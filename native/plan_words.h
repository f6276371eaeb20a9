/* The launch plan's words (plan_words.def) and what every reader of a plan shares: the
 * launcher (launch_plan.c), its verbs for the Slurm side (launch_verbs.c), the Slurm
 * plugin (spank/spank_stepd.c) and the parser's test (test/plan_test.c). Nothing here
 * exits or prints: each function returns an error and writes one line saying why into
 * ERR, and the caller reports it its own way (the launcher dies, the plugin tells
 * Slurm). */
#ifndef CTR_PLAN_WORDS_H
#define CTR_PLAN_WORDS_H

#include <stdbool.h>
#include <stddef.h>

/* Bigger plans are refused before they are read whole: a real one is a few KiB. */
#define PLAN_MAX_BYTES (16u << 20)
#define PLAN_MAX_WORDS 65536

#define PLAN_ERR_MAX 512

/* PLAN_VERSION is defined by plan_words.def (included here). */
enum plan_word {
   PW_NONE = -1,
#define WORD(id, name, arity, args, doc) PW_##id,
#include "plan_words.def"
#undef WORD
   PW_COUNT
};

struct plan_word_def {
   const char *name;
   int arity;
   const char *args; /* the arguments' names, e.g. "SRC DST MODE" */
};
extern const struct plan_word_def plan_word_defs[PW_COUNT];

enum plan_word plan_word_find(const char *s);

/* Errors of plan_split and plan_scan: a version error deserves its own hint. */
enum { PLAN_OK = 0, PLAN_BAD = -1, PLAN_BAD_VERSION = -2 };

struct plan_words {
   char **v;            /* NULL-terminated */
   int n;
   const char *shebang; /* the "#!" line's interpreter (the launcher), or NULL */
};

/* BUF[0..LEN): an optional "#!<launcher> --plan\n" line, then NUL-ended words. The
 * words point into BUF (the #! line is cut in it). */
int plan_split(char *buf, size_t len, struct plan_words *w, char *err);

/* The structure of words V[0..N): --plan-version first and equal to PLAN_VERSION, then
 * only words of the table, each with all its arguments, up to "--" or the end. Sets
 * *END to the index of "--" (or N). */
int plan_scan(char **v, int n, int *end, char *err);

/* Index of the first ID among the plan words V[0..END) (walked by arity), or -1. */
int plan_find(char **v, int end, enum plan_word id);

/* An unsigned decimal (or octal, BASE 8) number of at most MAX: digits only, no sign,
 * space or suffix, and in range. */
bool plan_number(const char *s, int base, unsigned long long max, unsigned long long *out);

/* A --bind MODE: exactly ro, rw, ro? or rw?. */
bool plan_bind_mode(const char *s, bool *ro, bool *optional);

/* What this node must have for the plan V[0..END) to start: the image readable, the
 * non-optional bind sources there, squashfuse_ll executable. SQUASHFUSE says when the
 * last is checked: PLAN_SQFUSE_NEEDED (a launcher without its own FUSE server: the
 * plan must name one), PLAN_SQFUSE_IF_NAMED (a launcher of unknown build), or
 * PLAN_SQFUSE_UNNEEDED. Calls PROBLEM once per failure; returns how many. */
enum { PLAN_SQFUSE_UNNEEDED, PLAN_SQFUSE_NEEDED, PLAN_SQFUSE_IF_NAMED };
typedef void plan_problem_fn(void *ctx, const char *what, const char *path, int err);
int plan_check(char **v, int end, int squashfuse, plan_problem_fn *problem, void *ctx);

/* A plan file's bytes: "#!LAUNCHER --plan\n" and V[0..N), each NUL-ended. malloc'd;
 * NULL on overflow or no memory. */
char *plan_serialize(const char *launcher, char *const *v, int n, size_t *len);

#endif
