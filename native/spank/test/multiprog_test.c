/* The --multi-prog text's rewrite and check (spank_multiprog.c), golden cases under
 * AddressSanitizer and UBSan: `make -C native/spank test`, run by
 * test/slurm/multiprog.test.ts. The expected texts follow slurmstepd 22.05's
 * multi_prog_get_argv: empty lines don't count, a line ending in '\' makes the next its
 * continuation (a comment's too), '#' starts a comment line, the ranks end at the
 * first space, a line of ranks alone is left for slurmstepd to refuse. Prints one line
 * per failed check and "multiprog_test: N checks, M failed"; exits 1 if any failed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ctr_spank.h"

struct ctr_conf g_conf;
struct ctr_opts g_opts;

static int checks, failures;

#define CHECK(cond, ...) do { checks++; if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
   printf(__VA_ARGS__); printf("\n"); } } while (0)

#define PLAN "/tmp/ctr.1000.7/step2.plan"
#define MARK "# ctr --multi-prog: each command below runs through the plan file " PLAN "\n"

static void rewrite(const char *in, const char *want)
{
   char *got = ctr_mp_rewrite(in, PLAN), *named = NULL;
   CHECK(got && !strcmp(got, want), "rewrite of [%s]:\n got [%s]\nwant [%s]", in, got, want);
   CHECK(got && ctr_mp_marked(got), "marked: [%s]", got);
   int r = got ? ctr_mp_check(got, PLAN, &named) : -2;
   CHECK(r == 0 && !named, "its check: %d", r);
   free(got);
}

static void check(const char *text, const char *plan, int want, const char *want_named)
{
   char *named = NULL;
   int r = ctr_mp_check(text, plan, &named);
   CHECK(r == want, "check of [%s] for %s: %d, want %d", text, plan, r, want);
   CHECK(want_named ? named && !strcmp(named, want_named) : !named, "named: %s, want %s", named, want_named);
   free(named);
}

int main(void)
{
   rewrite("0-1 hostname\n", MARK "0-1 " PLAN " hostname\n");
   rewrite("0 a", MARK "0 " PLAN " a");
   rewrite("", MARK);
   rewrite("\n\n# only a comment\n", MARK "\n\n# only a comment\n");
   rewrite("  *\tsh -c 'echo %t %o'\n", MARK "  * " PLAN "\tsh -c 'echo %t %o'\n");
   rewrite("1,3-4 sh -c\\\n  'echo x'\n2 y\n", MARK "1,3-4 " PLAN " sh -c\\\n  'echo x'\n2 " PLAN " y\n");
   /* a comment ending in '\' continues onto the next line: no entry there */
   rewrite("# c\\\n9 z\n8 w\n", MARK "# c\\\n9 z\n8 " PLAN " w\n");
   /* an empty line is no line: a continuation skips it (strtok) */
   rewrite("0 a\\\n\n1 b\n2 c\n", MARK "0 " PLAN " a\\\n\n1 b\n2 " PLAN " c\n");
   /* ranks alone: slurmstepd refuses that line; left as it is */
   rewrite("7\n0 a\n", MARK "7\n0 " PLAN " a\n");
   rewrite("0 a\r\n", MARK "0 " PLAN " a\r\n");

   check("0 a\n", PLAN, -1, NULL);                               /* not rewritten */
   check(MARK "0 " PLAN " a\n", "/elsewhere/step2.plan", -1, PLAN); /* another node's stage_dir */
   check("# ctr --multi-prog: each command below runs through the plan file " PLAN, PLAN, -1, NULL); /* no newline */
   check(MARK "0 " PLAN " a\n\n1 b\n", PLAN, 3, NULL);           /* line 3 of the text after the mark */
   check(MARK "0 " PLAN "x a\n", PLAN, 1, NULL);                 /* a longer first word */
   check(MARK "0 " PLAN "\n", PLAN, 1, NULL);                    /* the plan, no command */
   check(MARK "0  " PLAN " a\n", PLAN, 0, NULL);                 /* more space is still one word break */

   CHECK(ctr_mp_path_ok(PLAN), "a stage_dir path");
   const char *bad[] = { "tmp/x.plan", "/tmp/a b/x", "/tmp/a%t/x", "/tmp/a'b/x", "/tmp/a\\b/x", "/tmp/a\tb", "" };
   for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
      CHECK(!ctr_mp_path_ok(bad[i]), "refused: [%s]", bad[i]);

   printf("multiprog_test: %d checks, %d failed\n", checks, failures);
   return failures ? 1 : 0;
}
