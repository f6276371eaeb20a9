/* The launcher's verbs for whoever handles plan files without launching them (the Slurm
 * plugin, ctr-srun, an administrator), so that nothing else has to parse a plan:
 *
 *   ctr-launch --version                       launcher version, plan version, build
 *   ctr-launch --check-plan FILE               what this node must have for FILE to
 *                                              start: one line per problem, exit 255
 *   ctr-launch --rewrite-image FILE PATH [OUT] FILE with its --image replaced by PATH
 *                                              (a staged copy), to OUT (atomically;
 *                                              may be FILE) or stdout
 *   ctr-launch --seccomp-program plain|fake-ids  the command's seccomp filter, one
 *                                              instruction a line (launch_seccomp.c)
 *   ctr-launch --criu-enter PID INTERP LIBPATH CRIU ARG...  the host's CRIU in the
 *                                              namespaces of PID (launch_criu.c)
 *
 * FILE is parsed as a launch would parse it: a malformed or old plan is refused the
 * same way, before anything else is said about it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"
#include "plan_words.h"

#ifndef CTR_VERSION
#define CTR_VERSION "unknown"
#endif

static void version(void)
{
#ifdef CTR_INPROCESS_FUSE
   const char *fuse = "in process (libsquashfuse; CTR_FUSE=exec runs squashfuse_ll)";
#else
   const char *fuse = "squashfuse_ll (built without libsquashfuse)";
#endif
   printf("ctr-launch %s, plan version %d, FUSE server: %s\n", CTR_VERSION, PLAN_VERSION, fuse);
   exit(0);
}

/* The words of FILE, parsed strictly (dies with one line when they don't parse). */
static char **parsed_file(const char *path, int *n, int *end, const char **launcher)
{
   struct plan p;
   plan_init(&p);
   char **v = plan_file_words(path, n, launcher);
   char *hint = xasprintf("re-create the plan file %s with ctr plan", path);
   plan_parse_words(&p, *n, v, hint);
   free(hint);
   *end = p.n_words;
   return v;
}

static void report(void *ctx, const char *what, const char *path, int err)
{
   (void)ctx;
   if (!path)
      fprintf(stderr, "ctr: error: %s: not in the plan, and this launcher has no FUSE server of its own\n", what);
   else
      fprintf(stderr, "ctr: error: %s %s: %s\n", what, path, strerror(err));
}

static void check(const char *path)
{
   int n, end;
   char **v = parsed_file(path, &n, &end, NULL);
   struct plan p;
   plan_init(&p); /* for CTR_FUSE */
#ifdef CTR_INPROCESS_FUSE
   int sqfuse = p.squashfuse_exec ? PLAN_SQFUSE_NEEDED : PLAN_SQFUSE_UNNEEDED;
#else
   int sqfuse = PLAN_SQFUSE_NEEDED;
#endif
   exit(plan_check(v, end, sqfuse, report, NULL) ? EXIT_LAUNCH_FAILED : 0);
}

static void rewrite_image(const char *path, const char *image, const char *out)
{
   int n, end;
   const char *launcher;
   char **v = parsed_file(path, &n, &end, &launcher);
   int i = plan_find(v, end, PW_IMAGE);
   if (i < 0)
      DIE_PLAIN("launch plan: %s has no --image to replace (a directory image?)", path);
   if (image[0] != '/')
      DIE_PLAIN("launch plan: --rewrite-image: %s is not an absolute path", image);
   if (!launcher)
      DIE_PLAIN("launch plan: %s: not a plan file (no #! line)", path);
   v[i + 1] = (char *)image;
   size_t len;
   char *buf = plan_serialize(launcher, v, n, &len);
   if (!buf)
      DIE_PLAIN("out of memory");
   if (!out || !strcmp(out, "-")) {
      if (!write_all(1, buf, len))
         DIE("cannot write the plan to stdout");
      exit(0);
   }
   /* Atomically, with FILE's mode: OUT may be FILE itself, and may be run meanwhile. */
   struct stat st;
   if (stat(path, &st) < 0)
      DIE("cannot stat %s", path);
   char *tmp = xasprintf("%s.tmp.%d", out, (int)getpid());
   int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
   if (fd < 0)
      DIE("cannot write %s", tmp);
   if (!write_all(fd, buf, len) || fchmod(fd, st.st_mode & 07777) < 0 || close(fd) < 0 || rename(tmp, out) < 0) {
      int err = errno;
      unlink(tmp);
      die_errno(err, NULL, "cannot write %s", out);
   }
   exit(0);
}

void plan_verb(int argc, char **argv)
{
   const char *verb = argv[1];
   if (!strcmp(verb, "--version") && argc == 2)
      version();
   else if (!strcmp(verb, "--check-plan") && argc == 3)
      check(argv[2]);
   else if (!strcmp(verb, "--rewrite-image") && (argc == 4 || argc == 5))
      rewrite_image(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
   else if (!strcmp(verb, "--criu-enter"))
      criu_enter_verb(argc, argv);
   else if (!strcmp(verb, "--seccomp-program") && argc == 3 && (!strcmp(argv[2], "plain") || !strcmp(argv[2], "fake-ids")))
      seccomp_dump(!strcmp(argv[2], "fake-ids"));
   else if (!strcmp(verb, "--version") || !strcmp(verb, "--check-plan") || !strcmp(verb, "--rewrite-image"))
      DIE_PLAIN("usage: ctr-launch --version | --check-plan FILE | --rewrite-image FILE PATH [OUT]");
}
