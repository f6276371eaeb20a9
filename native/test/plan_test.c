/* The plan parser's test: golden and malformed plans through the real parser
 * (launch_plan.c, launch_verbs.c, plan_words.c), built with AddressSanitizer and UBSan
 * by `make -C native test` and run by test/plan/words.test.ts.
 *
 * A plan the parser refuses ends the process (die: one line, exit 255), so each such
 * case runs in a forked child whose stderr is read back and compared. Prints one line
 * per failed check and "plan_test: N checks, M failed"; exits 1 if any failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../launch.h"
#include "../plan_words.h"

static int checks, failures;
static char dir[] = "/tmp/plan_test.XXXXXX";

#define CHECK(cond, ...) do { checks++; if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
   printf(__VA_ARGS__); printf("\n"); } } while (0)

#define PV "--plan-version", "1"
#define MAXW 64

/* A plan file of WORDS (NULL-ended), the #! line first; returns its path. */
static const char *plan_file(const char *const *words)
{
   static int seq;
   static char path[64];
   snprintf(path, sizeof(path), "%s/%d.plan", dir, seq++);
   FILE *f = fopen(path, "w");
   fputs("#!/ctr-launch --plan\n", f);
   for (int i = 0; words[i]; i++)
      fwrite(words[i], 1, strlen(words[i]) + 1, f);
   fclose(f);
   return path;
}

static const char *raw_file(const char *bytes, size_t len)
{
   static char path[64];
   snprintf(path, sizeof(path), "%s/raw.plan", dir);
   FILE *f = fopen(path, "w");
   fwrite(bytes, 1, len, f);
   fclose(f);
   return path;
}

/* WORDS as one line, for messages. */
static const char *plan_text(const char *const *words)
{
   static char text[1024];
   size_t at = 0;
   for (int i = 0; words[i] && at < sizeof(text) - 64; i++)
      at += (size_t)snprintf(text + at, sizeof(text) - at, i ? " '%s'" : "'%s'", words[i]);
   text[at] = '\0';
   return text;
}

struct run {
   int status; /* exit status, or -1 */
   char out[4096], err[4096];
};

static void slurp(int fd, char *buf, size_t size)
{
   size_t n = 0;
   ssize_t r;
   while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
      n += (size_t)r;
   buf[n] = '\0';
}

/* ctr-launch ARGV... in a child, up to its verdict: the parse (exit 0 if it returns). */
static struct run launch(char **argv)
{
   struct run r = { .status = -1 };
   int out[2], err[2];
   if (pipe(out) < 0 || pipe(err) < 0)
      abort();
   fflush(stdout);
   pid_t pid = fork();
   if (pid == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      int argc = 0;
      while (argv[argc])
         argc++;
      struct plan p;
      plan_parse(&p, argc, argv);
      _exit(0);
   }
   close(out[1]);
   close(err[1]);
   slurp(out[0], r.out, sizeof(r.out));
   slurp(err[0], r.err, sizeof(r.err));
   close(out[0]);
   close(err[0]);
   int st;
   waitpid(pid, &st, 0);
   r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
   return r;
}

static struct run launch_file(const char *path)
{
   char *argv[] = { "ctr-launch", "--plan", (char *)path, "true", NULL };
   return launch(argv);
}

/* The plan WORDS is refused with exit 255 and the one line "ctr: error: launch plan: WANT"
 * (WANT is an fnmatch pattern: '*' stands for anything), and a hint line at most. */
static void refused(const char *what, const char *const *words, const char *want)
{
   struct run r = launch_file(plan_file(words));
   char line[4096];
   snprintf(line, sizeof(line), "%s", r.err);
   char *nl = strchr(line, '\n');
   if (nl)
      *nl = '\0';
   const char *rest = nl ? r.err + (nl - line) + 1 : "";
   char expect[1024];
   snprintf(expect, sizeof(expect), "ctr: error: launch plan: %s", want);
   bool ok = !fnmatch(expect, line, FNM_NOESCAPE);
   CHECK(r.status == 255, "%s: exit %d, not 255 (stderr: %s)", what, r.status, r.err);
   CHECK(ok, "%s: said \"%s\", not \"%s\" (plan: %s)", what, line, expect, plan_text(words));
   CHECK(!*rest || (!strncmp(rest, "ctr: hint: ", 11) && !strchr(strchr(rest, '\n') + 1, '\n')),
         "%s: more than one line and a hint: %s", what, r.err);
}

/* Sample arguments for each word of the table: the golden plan uses every word. */
static int sample(enum plan_word id, const char **a)
{
   static const char *const s[PW_COUNT][6] = {
      [PW_PLAN_VERSION] = { "1" },           [PW_IMAGE] = { "/img.sif" },
      [PW_OFFSET] = { "4096" },               [PW_IMAGE_DIR] = { "/rootfs" },
      [PW_SQUASHFUSE] = { "/usr/bin/squashfuse_ll" },
      [PW_SUBIDS] = { "/usr/bin/newuidmap", "/usr/bin/newgidmap", "100000", "65536", "200000", "65537" },
      [PW_WRITABLE_TMPFS_SIZE] = { "1073741824" },
      [PW_BIND] = { "/src", "/dst", "ro?" }, [PW_TMPFS] = { "/tmp", "1777" },
      [PW_FILE] = { "/etc/x", "" },           [PW_PASSWD_LINE] = { "u:x:1:1::/h:/bin/sh" },
      [PW_GROUP_LINE] = { "g:x:1:u" },        [PW_CHDIR] = { "/work" },
      [PW_KEEPENV] = { "TERM" },              [PW_UNSETENV] = { "PATH" },
      [PW_SETENV] = { "A", "" },              [PW_ENV_OVERRIDE] = { "B", "2" },
      [PW_ENV_PREFIX] = { "CTRENV_" },        [PW_ACTION] = { "run" },
      [PW_JOIN] = { "on" },                   [PW_JOIN_TAG] = { "step" },
      [PW_JOIN_COUNT] = { "8" },              [PW_ENV_PREPEND] = { "LD_LIBRARY_PATH", "/.singularity.d/libs" },
      [PW_CGROUP] = { "/sys/fs/cgroup/memory/u" },
      [PW_CGROUP_SET] = { "/sys/fs/cgroup/memory/u", "memory.limit_in_bytes", "67108864" },
      [PW_CGROUP_OOM] = { "/sys/fs/cgroup/memory/u", "memory.oom_control", "64 MiB" },
      [PW_DROP_ENV_PREFIX] = { "APPTAINER_" },
      [PW_UMASK] = { "0022" },
      [PW_HOSTNAME] = { "box-1.example" },  [PW_SLIRP4NETNS] = { "/usr/bin/slirp4netns" },
      [PW_OVERLAY_DIR] = { "/ov" },           [PW_OVERLAY_LOWER] = { "/extra.sqfs", "8192" },
      [PW_OVERLAY_IMAGE] = { "/ov.img", "/usr/bin/fuse2fs", "/usr/bin/fuse-overlayfs" },
      [PW_BIND_ENV] = { "CTR_PLAN_TEST_UNSET", "rw?" },
      [PW_CAPS] = { "2000", "400" },          [PW_RUNSCRIPT_TIMEOUT] = { "1500" },
      [PW_WRITABLE_TMPFS_FUSE] = { "/usr/bin/fuse-overlayfs" },
      [PW_JOIN_KEEP] = { "/tmp/ctr.1000.7" },
      [PW_CRIU] = { "/lib64/ld.so", "/lib:/usr/lib", "/usr/sbin/criu" },
      [PW_READY_FD] = { "3" },
      [PW_IMAGE_BIND] = { "/data.sif", "12288", "/sub", "/data" },
   };
   int arity = plan_word_defs[id].arity;
   for (int k = 0; k < arity; k++)
      if (!(a[k] = s[id][k]))
         return -1;
   return arity;
}

/* Every word of the table, once, with its sample arguments: the version first, as it
 * must be, and --image-dir last, so the image is a directory (which --writable needs). */
static void golden(void)
{
   char *v[256] = { PV };
   int n = 2;
   for (int k = 1; k <= PW_COUNT; k++) {
      enum plan_word id = k == PW_COUNT ? PW_IMAGE_DIR : (enum plan_word)k;
      if (id == PW_IMAGE_DIR && k != PW_COUNT)
         continue;
      const char *a[6];
      int arity = sample(id, a);
      CHECK(arity >= 0, "golden: no sample arguments for %s", plan_word_defs[id].name);
      if (arity < 0)
         return;
      v[n++] = (char *)plan_word_defs[id].name;
      for (int i = 0; i < arity; i++)
         v[n++] = (char *)a[i];
   }
   v[n] = "--", v[n + 1] = "cmd", v[n + 2] = NULL;
   struct plan p;
   plan_init(&p);
   int rest = plan_parse_words(&p, n + 2, v, NULL);
   CHECK(rest == n + 1 && !strcmp(v[rest], "cmd"), "golden: command at %d", rest);
   CHECK(p.n_words == n, "golden: %d plan words, not %d", p.n_words, n);
   CHECK(!strcmp(p.image, "/rootfs") && p.image_is_dir && p.offset == 4096, "golden: image");
   CHECK(p.writable_image && p.map_root && p.fake_ids && p.writable_tmpfs && p.pid_ns && p.pid_ns_in_step && p.clearenv && p.debug,
         "golden: flags");
   CHECK(p.tmpfs_size == 1073741824ULL, "golden: tmpfs size %llu", p.tmpfs_size);
   CHECK(!strcmp(p.newuidmap, "/usr/bin/newuidmap") && !strcmp(p.newgidmap, "/usr/bin/newgidmap") &&
         p.subuid_start == 100000 && p.subuid_count == 65536 && p.subgid_start == 200000 && p.subgid_count == 65537,
         "golden: subids");
   CHECK(!strcmp(p.squashfuse, "/usr/bin/squashfuse_ll") && !strcmp(p.chdir, "/work"), "golden: paths");
   CHECK(p.n_binds == 6, "golden: %zu binds", p.n_binds);
   if (p.n_binds == 6) {
      struct bind *b = p.binds;
      CHECK(b[0].kind == BIND_DIR_OR_FILE && !strcmp(b[0].src, "/src") && !strcmp(b[0].dst, "/dst") && b[0].ro &&
            b[0].optional, "golden: bind");
      CHECK(b[1].kind == BIND_TMPFS && !strcmp(b[1].dst, "/tmp") && b[1].mode == 01777, "golden: tmpfs");
      CHECK(b[2].kind == BIND_FILE_CONTENT && !strcmp(b[2].content, ""), "golden: file");
      CHECK(b[3].kind == BIND_FILE_MERGE && !strcmp(b[3].dst, "/etc/passwd"), "golden: passwd line");
      CHECK(b[4].kind == BIND_FILE_MERGE && !strcmp(b[4].dst, "/etc/group"), "golden: group line");
      CHECK(b[5].kind == BIND_IMAGE && !strcmp(b[5].src, "/data.sif") && b[5].offset == 12288 &&
            !strcmp(b[5].subpath, "/sub") && !strcmp(b[5].dst, "/data") && b[5].ro && b[5].image_n == 0,
            "golden: image bind");
   }
   CHECK(p.n_env == 5 && p.env[0].op == 'k' && p.env[1].op == 'u' && p.env[2].op == 's' && p.env[3].op == 'o' &&
         p.env[4].op == 'p' && !strcmp(p.env[4].name, "LD_LIBRARY_PATH"), "golden: env");
   CHECK(p.n_env_prefixes == 1 && p.action == ACTION_RUN && p.join == JOIN_ON && !strcmp(p.join_tag, "step") &&
         p.join_count == 8 && !strcmp(p.join_keep, "/tmp/ctr.1000.7"), "golden: env prefix, action, join");
   CHECK(p.n_drop_prefixes == 1 && !strcmp(p.drop_prefixes[0], "APPTAINER_") && p.no_eval && p.chdir_optional &&
         p.set_umask && p.umask == 022,
         "golden: drop prefix, no eval, chdir optional");
   CHECK(p.n_cgroups == 3 && p.cgroups[0].op == 'c' && p.cgroups[1].op == 's' && p.cgroups[2].op == 'o' &&
         !strcmp(p.cgroups[1].file, "memory.limit_in_bytes") && !strcmp(p.cgroups[1].value, "67108864") &&
         !strcmp(p.cgroups[2].value, "64 MiB"), "golden: cgroups");
   CHECK(p.net_ns && !strcmp(p.hostname, "box-1.example") && !strcmp(p.slirp4netns, "/usr/bin/slirp4netns"),
         "golden: network");
   CHECK(!strcmp(p.overlay_dir, "/ov") && !strcmp(p.overlay_image, "/ov.img") && !strcmp(p.fuse2fs, "/usr/bin/fuse2fs") &&
         !strcmp(p.fuse_overlayfs, "/usr/bin/fuse-overlayfs") && p.n_lowers == 1 &&
         !strcmp(p.lowers[0].path, "/extra.sqfs") && p.lowers[0].offset == 8192, "golden: overlays");
   CHECK(p.no_mountpoints && p.set_caps && p.cap_drop == 1ULL << 13 && p.cap_add == 1ULL << 10 &&
         p.runscript_timeout_ms == 1500 && p.tmpfs_fuse, "golden: no mount points, caps, runscript timeout, tmpfs fuse");
   CHECK(p.checkpointable && !strcmp(p.criu[0], "/lib64/ld.so") && !strcmp(p.criu[1], "/lib:/usr/lib") &&
         !strcmp(p.criu[2], "/usr/sbin/criu"), "golden: checkpoint");
}

/* --caps masks: 1 to 16 lower-case hex digits, no bit both dropped and added;
 * --runscript-timeout: 1 ms at least; --no-mountpoints only with --writable. */
static void caps_and_timeout(void)
{
   static const struct { const char *drop, *add, *want; } caps[] = {
      { "0x1", "0", "--caps: 0x1 is not a hex mask (1 to 16 digits 0-9a-f)" },
      { "", "0", "--caps:  is not a hex mask*" },
      { "1", "FF", "--caps: FF is not a hex mask*" },
      { "10000000000000000", "0", "--caps: 10000000000000000 is not a hex mask*" },
      { "3", "2", "--caps: a capability both dropped and added" },
      { "-1", "0", "--caps: -1 is not a hex mask*" },
   };
   for (size_t i = 0; i < sizeof(caps) / sizeof(*caps); i++) {
      const char *w[] = { PV, "--image", "/i", "--caps", caps[i].drop, caps[i].add, NULL };
      refused(caps[i].want, w, caps[i].want);
   }
   const char *full[] = { PV, "--image", "/i", "--caps", "ffffffffffffffff", "0", NULL };
   struct plan p;
   plan_init(&p);
   plan_parse_words(&p, 7, (char **)full, NULL);
   CHECK(p.set_caps && p.cap_drop == ~0ULL && p.cap_add == 0, "--caps: all 64 bits");
   const char *t0[] = { PV, "--image", "/i", "--runscript-timeout", "0", NULL };
   refused("timeout 0", t0, "--runscript-timeout: 0 is not a number from 1 to 2147483647");
   const char *tx[] = { PV, "--image", "/i", "--runscript-timeout", "1s", NULL };
   refused("timeout 1s", tx, "--runscript-timeout: 1s is not*");
   const char *tf[] = { PV, "--image-dir", "/d", "--writable-tmpfs-fuse", "/usr/bin/fuse-overlayfs", NULL };
   refused("--writable-tmpfs-fuse alone", tf, "--writable-tmpfs-fuse needs --writable-tmpfs");
   const char *nm[] = { PV, "--image-dir", "/d", "--no-mountpoints", NULL };
   refused("--no-mountpoints", nm, "--no-mountpoints needs --writable");
}

/* --criu: only with --checkpointable; absolute paths, LIBPATH a list of them. */
static void criu(void)
{
   static const struct { const char *a[3], *want; } cases[] = {
      { { "ld.so", "/lib", "/criu" }, "--criu: ld.so is not an absolute path" },
      { { "/ld.so", "/lib:usr/lib", "/criu" }, "--criu: /lib:usr/lib is not an absolute path" },
      { { "/ld.so", "/lib:", "/criu" }, "--criu: /lib: is not an absolute path" },
      { { "/ld.so", "/lib/../etc", "/criu" }, "--criu: /lib/../etc is not an absolute path" },
      { { "/ld.so", "/lib", "/sbin/.." }, "--criu: /sbin/.. is not an absolute path" },
      { { "/ld.so", "/lib", "/a:/criu" }, "--criu: /a:/criu is not an absolute path" },
      { { "/ld.so", "", "/criu" }, "--criu INTERP LIBPATH CRIU: an argument is empty" },
   };
   for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
      const char *w[] = { PV, "--image", "/i", "--checkpointable", "--criu", cases[i].a[0], cases[i].a[1], cases[i].a[2], NULL };
      refused(cases[i].want, w, cases[i].want);
   }
   const char *w[] = { PV, "--image", "/i", "--criu", "/ld.so", "/lib", "/criu", NULL };
   refused("criu without checkpointable", w, "--criu needs --checkpointable");
}

/* Cgroup words: an absolute DIR without .., named by a --cgroup before words about it,
 * once; FILE a plain name in it. */
static void cgroups(void)
{
   static const struct { const char *w[8], *want; } cases[] = {
      { { "--cgroup", "sys/fs/cgroup/x" }, "--cgroup sys/fs/cgroup/x: not an absolute path without .." },
      { { "--cgroup", "/sys/fs/cgroup/x/../../y" }, "--cgroup /sys/fs/cgroup/x/../../y: not an absolute path without .." },
      { { "--cgroup", "/c/.." }, "--cgroup /c/..: not*" },
      { { "--cgroup", "/c", "--cgroup", "/c" }, "--cgroup /c: given twice" },
      { { "--cgroup-set", "/c", "pids.max", "5" }, "--cgroup-set /c: no --cgroup /c before it" },
      { { "--cgroup-oom", "/c", "memory.events", "1 MiB", "--cgroup", "/c" }, "--cgroup-oom /c: no --cgroup /c before it" },
      { { "--cgroup", "/c", "--cgroup-set", "/c", "../pids.max", "5" }, "--cgroup-set /c: ../pids.max is not a file name" },
      { { "--cgroup", "/c", "--cgroup-set", "/c", "..", "5" }, "--cgroup-set /c: .. is not a file name" },
      { { "--cgroup", "/c", "--cgroup-oom", "/c", "a/b", "5" }, "--cgroup-oom /c: a/b is not a file name" },
      { { "--cgroup", "/c", "--cgroup-set", "/c", "", "5" }, "--cgroup-set DIR FILE VALUE: an argument is empty" },
      { { "--cgroup", "" }, "--cgroup DIR: an argument is empty" },
   };
   for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
      const char *w[MAXW] = { PV, "--image", "/i" };
      int n = 4;
      for (int k = 0; k < 8 && cases[i].w[k]; k++)
         w[n++] = cases[i].w[k];
      w[n] = NULL;
      refused(cases[i].want, w, cases[i].want);
   }
   char *ok[] = { PV, "--image", "/i", "--cgroup", "/a", "--cgroup", "/b", "--cgroup-set", "/b", "pids.max", "max", NULL };
   struct plan p;
   plan_init(&p);
   plan_parse_words(&p, 12, ok, NULL);
   CHECK(p.n_cgroups == 3 && !strcmp(p.cgroups[2].dir, "/b") && !strcmp(p.cgroups[2].value, "max"), "cgroups: two dirs");
}

/* --hostname: what sethostname takes and resolvers accept; --slirp4netns only with --net-ns. */
static void network(void)
{
   static const char *const bad[] = { "", "-x", ".x", "a b", "a/b", "a\nb",
      "x2345678901234567890123456789012345678901234567890123456789012345" };
   for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
      const char *w[] = { PV, "--image", "/i", "--hostname", bad[i], NULL };
      refused(bad[i], w, "--hostname: not a host name (1 to 64 letters, digits, '-' or '.')");
   }
   const char *w[] = { PV, "--image", "/i", "--slirp4netns", "/usr/bin/slirp4netns", NULL };
   refused("slirp without netns", w, "--slirp4netns needs --net-ns");
   const char *k[] = { PV, "--image", "/i", "--join-keep", "tmp/ctr.1.2", NULL };
   refused("relative keep dir", k, "--join-keep: tmp/ctr.1.2 is not an absolute path");
}

/* Bind modes: exactly ro, rw, ro?, rw?. */
static void modes(void)
{
   static const char *const good[][3] = { { "ro", "1", "0" }, { "rw", "0", "0" }, { "ro?", "1", "1" }, { "rw?", "0", "1" } };
   for (int i = 0; i < 4; i++) {
      char *v[] = { PV, "--image", "/i", "--bind", "/s", "/d", (char *)good[i][0], NULL };
      struct plan p;
      plan_init(&p);
      plan_parse_words(&p, 8, v, NULL);
      CHECK(p.n_binds == 1 && p.binds[0].ro == (good[i][1][0] == '1') && p.binds[0].optional == (good[i][2][0] == '1'),
            "mode %s", good[i][0]);
   }
   static const char *const bad[] = { "rwx", "r", "", "RO", "ro??", "?", "rw ", "ro?x" };
   for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
      const char *w[] = { PV, "--image", "/i", "--bind", "/s", "/d", bad[i], NULL };
      char want[128];
      snprintf(want, sizeof(want), "--bind /s: bad mode \"%s\" (ro, rw, ro? or rw?)", bad[i]);
      refused(bad[i], w, want);
   }
}

/* --env-prepend's name reaches the env-script wrapper's eval: only a variable name. */
static void prepend_names(void)
{
   static const char *const bad[] = { "", "1A", "A-B", "A;B", "$(x)", "A B", "A=B" };
   for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
      const char *w[] = { PV, "--image", "/i", "--env-prepend", bad[i], "/v", NULL };
      char want[128];
      snprintf(want, sizeof(want), "--env-prepend: %s is not a variable name", bad[i]);
      refused(bad[i], w, want);
   }
}

/* Every word with arguments, cut one argument short at the end of the plan. */
static void arities(void)
{
   for (int id = 0; id < PW_COUNT; id++) {
      const struct plan_word_def *d = &plan_word_defs[id];
      if (d->arity == 0 || id == PW_PLAN_VERSION)
         continue;
      const char *a[6], *w[MAXW] = { PV, "--image", "/i", d->name };
      int n = 5, arity = sample((enum plan_word)id, a);
      for (int k = 0; k + 1 < arity; k++)
         w[n++] = a[k];
      w[n] = NULL;
      char want[256];
      snprintf(want, sizeof(want), "%s needs %d argument%s (%s), the plan ends after %d", d->name, d->arity,
               d->arity > 1 ? "s" : "", d->args, d->arity - 1);
      refused(d->name, w, want);
   }
}

static void numbers(void)
{
   static const struct { const char *word, *value, *want; } cases[] = {
      { "--offset", "abc", "--offset: abc is not a number from 0 to 18446744073709551615" },
      { "--offset", "-1", "--offset: -1 is not*" },
      { "--offset", " 1", "--offset:  1 is not*" },
      { "--offset", "+1", "--offset: +1 is not*" },
      { "--offset", "0x10", "--offset: 0x10 is not*" },
      { "--offset", "", "--offset:  is not*" },
      { "--offset", "18446744073709551616", "--offset: 18446744073709551616 is not*" },
      { "--join-count", "0", "--join-count: 0 is not a number from 1 to 2147483647" },
      { "--join-count", "2147483648", "--join-count: 2147483648 is not*" },
      { "--join-count", "3x", "--join-count: 3x is not*" },
      { "--ready-fd", "2", "--ready-fd: 2 is not a number from 3 to 2147483647" },
      { "--ready-fd", "x", "--ready-fd: x is not*" },
      { "--writable-tmpfs-size", "-1", "--writable-tmpfs-size: -1 is not*" },
      { "--writable-tmpfs-size", "1G", "--writable-tmpfs-size: 1G is not*" },
   };
   for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
      const char *w[] = { PV, "--image", "/i", cases[i].word, cases[i].value, NULL };
      refused(cases[i].value, w, cases[i].want);
   }
   static const char *const modes[] = { "8", "0x1", "17777", "", "-1" };
   for (size_t i = 0; i < sizeof(modes) / sizeof(*modes); i++) {
      const char *w[] = { PV, "--image", "/i", "--tmpfs", "/t", modes[i], NULL };
      refused(modes[i], w, "--tmpfs: * is not an octal number from 0 to 4095");
   }
   static const struct { const char *a[4], *want; } ibind[] = {
      { { "/d.sqfs", "x", "/", "/d" }, "--image-bind: x is not a number from 0 to 18446744073709551615" },
      { { "/d.sqfs", "-1", "/", "/d" }, "--image-bind: -1 is not*" },
      { { "/d.sqfs", "0", "sub", "/d" }, "--image-bind /d.sqfs: subpath \"sub\" is not absolute" },
      { { "/d.sqfs", "0", "", "/d" }, "--image-bind /d.sqfs: subpath \"\" is not absolute" },
      { { "", "0", "/", "/d" }, "--image-bind IMAGE OFFSET SUBPATH DST: an argument is empty" },
      { { "/d.sqfs", "0", "/", "" }, "--image-bind IMAGE OFFSET SUBPATH DST: an argument is empty" },
   };
   for (size_t i = 0; i < sizeof(ibind) / sizeof(*ibind); i++) {
      const char *w[] = { PV, "--image", "/i", "--image-bind", ibind[i].a[0], ibind[i].a[1], ibind[i].a[2], ibind[i].a[3], NULL };
      refused("--image-bind", w, ibind[i].want);
   }
   const char *many[2 + 2 + 5 * 17 + 1] = { PV, "--image", "/i" };
   for (int i = 0; i < 17; i++) {
      const char **m = many + 4 + 5 * i;
      m[0] = "--image-bind", m[1] = "/d.sqfs", m[2] = "0", m[3] = "/", m[4] = "/d";
   }
   refused("17 image binds", many, "--image-bind: more than 16 image binds");
   const char *um[] = { PV, "--image", "/i", "--umask", "1000", NULL };
   refused("--umask", um, "--umask: 1000 is not an octal number from 0 to 511");
   static const struct { const char *a[4], *want; } sub[] = {
      { { "1", "0", "1", "1" }, "--subids: 0 is not a number from 1 to 4294967295" },
      { { "1", "1", "1", "0" }, "--subids: 0 is not*" },
      { { "4294967296", "1", "1", "1" }, "--subids: 4294967296 is not*" },
      { { "4294967295", "2", "1", "1" }, "--subids: a range goes past id 4294967295" },
      { { "1", "1", "4294967295", "1" }, NULL },
      { { "1", "1", "2", "4294967295" }, "--subids: a range goes past id 4294967295" },
   };
   for (size_t i = 0; i < sizeof(sub) / sizeof(*sub); i++) {
      const char *w[] = { PV, "--image", "/i", "--subids", "/u", "/g", sub[i].a[0], sub[i].a[1], sub[i].a[2], sub[i].a[3], NULL };
      if (sub[i].want) {
         refused("subids", w, sub[i].want);
         continue;
      }
      struct plan p;
      plan_init(&p);
      plan_parse_words(&p, 11, (char **)w, NULL);
      CHECK(p.subgid_start == 4294967295UL && p.subgid_count == 1, "subids at the top of the range");
   }
}

/* Words out of place: unknown, empty where a path is needed, bad values. */
static void structure(void)
{
   const char *unknown[] = { PV, "--image", "/i", "--frobnicate", NULL };
   refused("unknown word", unknown, "unknown word --frobnicate");
   const char *twice[] = { PV, "--image", "/i", PV, NULL };
   refused("version twice", twice, "--plan-version is the first word only");
   const char *noimage[] = { PV, "--pid-ns", NULL };
   refused("no image", noimage, "no image given");
   const char *writable[] = { PV, "--image", "/i", "--writable", NULL };
   refused("--writable on a SquashFS", writable, "--writable needs a directory image");
   const char *action[] = { PV, "--image", "/i", "--action", "build", NULL };
   refused("--action", action, "--action takes exec, run or shell, not build");
   const char *join[] = { PV, "--image", "/i", "--join", "yes", NULL };
   refused("--join", join, "--join takes auto, on or off, not yes");
   static const char *const empty[][6] = {
      { "--image", "", NULL }, { "--image-dir", "", NULL }, { "--squashfuse", "", NULL },
      { "--bind", "", "/d", "rw", NULL }, { "--bind", "/s", "", "rw", NULL }, { "--tmpfs", "", "755", NULL },
      { "--file", "", "x", NULL }, { "--chdir", "", NULL }, { "--keepenv", "", NULL }, { "--setenv", "", "v", NULL },
      { "--join-tag", "", NULL }, { "--subids", "", "/g", "1", "1", "1" }, { "--drop-env-prefix", "", NULL },
   };
   for (size_t i = 0; i < sizeof(empty) / sizeof(*empty); i++) {
      const char *w[MAXW] = { PV, "--image", "/i" };
      int n = 4;
      for (int k = 0; k < 6 && empty[i][k]; k++)
         w[n++] = empty[i][k];
      if (!strcmp(empty[i][0], "--subids"))
         w[n++] = "1";
      w[n] = NULL;
      char want[256];
      enum plan_word id = plan_word_find(empty[i][0]);
      snprintf(want, sizeof(want), "%s %s: an argument is empty", empty[i][0], plan_word_defs[id].args);
      refused(empty[i][0], w, want);
   }
}

static void versions(void)
{
   const char *none[] = { "--image", "/i", NULL };
   refused("no version", none, "version none, this launcher speaks version 1");
   const char *old[] = { "--plan-version", "0", "--image", "/i", NULL };
   refused("old version", old, "version 0, this launcher speaks version 1");
   const char *newer[] = { "--plan-version", "2", "--image", "/i", NULL };
   refused("newer version", newer, "version 2, this launcher speaks version 1");
   const char *junk[] = { "--plan-version", "1x", "--image", "/i", NULL };
   refused("junk version", junk, "version 1x, this launcher speaks version 1");
   const char *bare[] = { "--plan-version", NULL };
   refused("bare version word", bare, "version none, this launcher speaks version 1");
   const char *empty[] = { NULL };
   refused("empty plan", empty, "version none, this launcher speaks version 1");
   struct run r = launch_file(plan_file(newer));
   CHECK(strstr(r.err, "\nctr: hint: re-create the plan file ") && strstr(r.err, " with ctr plan\n"),
         "version hint: %s", r.err);
   /* The words as arguments (plain Node's runLauncher) need the version too. */
   char *argv[] = { "ctr-launch", "--image", "/i", "--", "true", NULL };
   r = launch(argv);
   static const char want[] = "ctr: error: launch plan: version none, this launcher speaks version 1\nctr: hint: ";
   CHECK(r.status == 255 && !strncmp(r.err, want, sizeof(want) - 1), "argv without a version: %s", r.err);
}

/* Bytes that are not a whole plan, and plans too big to read. */
static void files(void)
{
   static const char trunc[] = "#!/x --plan\n--plan-version\0" "1\0--image\0/i";
   struct run r = launch_file(raw_file(trunc, sizeof(trunc) - 1));
   CHECK(r.status == 255 && strstr(r.err, ": truncated (last word not NUL-terminated)\n"), "truncated: %s", r.err);
   r = launch_file(raw_file("#!/x --plan", 11));
   CHECK(r.status == 255 && strstr(r.err, ": no plan after the #! line\n"), "no newline: %s", r.err);
   char *missing[] = { "ctr-launch", "--plan", "/nonexistent/plan", NULL };
   r = launch(missing);
   CHECK(r.status == 255 && !strcmp(r.err, "ctr: error: launch plan: cannot read plan file /nonexistent/plan: "
         "No such file or directory\n"), "missing file: %s", r.err);
   /* Over the byte limit: refused by its size, before it is read. */
   char path[64];
   snprintf(path, sizeof(path), "%s/huge.plan", dir);
   int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
   CHECK(fd >= 0 && ftruncate(fd, (off_t)PLAN_MAX_BYTES + 1) == 0, "huge file");
   close(fd);
   r = launch_file(path);
   CHECK(r.status == 255 && strstr(r.err, ": 16777217 bytes, over the limit of 16 MiB\n"), "huge: %s", r.err);
   /* Under the byte limit, over the word limit. */
   size_t len = (size_t)(PLAN_MAX_WORDS + 1) * 2;
   char *many = malloc(len + 32);
   size_t at = (size_t)sprintf(many, "#!/x --plan\n");
   for (int i = 0; i <= PLAN_MAX_WORDS; i++)
      many[at++] = 'x', many[at++] = '\0';
   r = launch_file(raw_file(many, at));
   free(many);
   CHECK(r.status == 255 && strstr(r.err, ": more than 65536 words\n"), "many words: %s", r.err);
}

static void verbs(void)
{
   char *version[] = { "ctr-launch", "--version", NULL };
   struct run r = launch(version);
   CHECK(r.status == 0 && strstr(r.out, "ctr-launch ") == r.out && strstr(r.out, ", plan version 1, FUSE server: ") &&
         !strchr(r.out, '\n')[1], "--version: %d %s", r.status, r.out);
   const char *dirplan[] = { PV, "--image-dir", "/", "--bind", "/proc", "/proc", "rw", "--bind", "/nonexistent", "/x", "ro?", NULL };
   char *check[] = { "ctr-launch", "--check-plan", (char *)plan_file(dirplan), NULL };
   r = launch(check);
   CHECK(r.status == 0 && !*r.err, "--check-plan, nothing missing: %d %s", r.status, r.err);
   const char *bad[] = { PV, "--image", "/nonexistent/i.sif", "--bind", "/nonexistent/b", "/b", "rw", NULL };
   check[2] = (char *)plan_file(bad);
   r = launch(check);
   CHECK(r.status == 255 && strstr(r.err, "ctr: error: image /nonexistent/i.sif: No such file or directory\n") == r.err &&
         strstr(r.err, "\nctr: error: bind source /nonexistent/b: No such file or directory\n"), "--check-plan: %s", r.err);
   const char *img[] = { PV, "--image", "/old.sif", "--offset", "1", "--setenv", "X", "--image", "--", "cmd", "--image", NULL };
   char out[64];
   snprintf(out, sizeof(out), "%s/rewritten.plan", dir);
   char *rw[] = { "ctr-launch", "--rewrite-image", (char *)plan_file(img), "/new.sif", out, NULL };
   r = launch(rw);
   char got[512];
   int fd = open(out, O_RDONLY);
   size_t len = fd < 0 ? 0 : (size_t)read(fd, got, sizeof(got));
   close(fd);
   static const char want[] = "#!/ctr-launch --plan\n--plan-version\0" "1\0--image\0/new.sif\0--offset\0" "1\0"
                              "--setenv\0X\0--image\0--\0cmd\0--image";
   CHECK(r.status == 0 && len == sizeof(want) && !memcmp(got, want, len), "--rewrite-image: %d %s", r.status, r.err);
   rw[2] = (char *)plan_file(dirplan);
   r = launch(rw);
   CHECK(r.status == 255 && strstr(r.err, " has no --image to replace (a directory image?)\n"), "rewrite a dir: %s", r.err);
   rw[2] = (char *)plan_file((const char *[]){ "--image", "/old.sif", NULL });
   r = launch(rw);
   CHECK(r.status == 255 && strstr(r.err, "launch plan: version none"), "rewrite an old plan: %s", r.err);
}

int main(void)
{
   if (!mkdtemp(dir)) {
      perror("mkdtemp");
      return 1;
   }
   golden();
   modes();
   prepend_names();
   network();
   criu();
   arities();
   numbers();
   structure();
   cgroups();
   caps_and_timeout();
   versions();
   files();
   verbs();
   char cmd[64];
   snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
   if (system(cmd) != 0)
      printf("could not remove %s\n", dir);
   printf("plan_test: %d checks, %d failed\n", checks, failures);
   return failures ? 1 : 0;
}
