/* ctr-launch: carries out a launch plan composed by ctr's TypeScript side.
 *
 * The boundary: TypeScript decides *what* the container is (which image, which binds,
 * which environment policy); this program only does it, single-threaded, with no policy
 * of its own. The plan is a flat argument list (plan_words.def is the vocabulary),
 * given on the command line or read NUL-separated from a plan file, so a plan computed
 * once can be launched by many ranks without Node.
 *
 * Exit codes are a contract (see EXIT_* below): the command's own status passes through
 * untouched because this process becomes the command (execve); the launcher's own
 * failures use 255, a command that can't be found 127, one that can't be run 126. */
#ifndef CTR_LAUNCH_H
#define CTR_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define EXIT_LAUNCH_FAILED 255
#define EXIT_CMD_NOT_FOUND 127
#define EXIT_CMD_NOT_EXEC 126

/* Where the scratch root (a tmpfs) is mounted before the first pivot. Any directory that
 * exists on every host will do: after pivot_root the host's own /tmp is visible again
 * under /oldroot/tmp, so nothing of the host is hidden. */
#define SCRATCH_BASE "/tmp"

enum bind_kind { BIND_DIR_OR_FILE, BIND_TMPFS, BIND_FILE_CONTENT, BIND_FILE_MERGE, BIND_IMAGE };

struct bind {
   enum bind_kind kind;
   const char *src;     /* host path (absolute, symlinks resolved by the planner) */
   const char *dst;     /* path inside the container */
   const char *content; /* BIND_FILE_*: bytes of the new file, or the line to merge */
   mode_t mode;         /* BIND_TMPFS: mode of its root directory */
   const char *subpath; /* BIND_IMAGE: src is a SquashFS file (at offset); this path inside it */
   unsigned long long offset;
   size_t image_n;      /* BIND_IMAGE: its number, 0.. (its mount is SCRATCH_BASE/ibindN) */
   bool ro;
   bool optional;       /* skip silently when src is missing (e.g. /etc/localtime) */
};

enum action { ACTION_EXEC, ACTION_RUN, ACTION_SHELL };
enum join { JOIN_OFF, JOIN_AUTO, JOIN_ON };

/* A cgroup word (launch_cgroup.c): 'c' --cgroup DIR, 's' --cgroup-set DIR FILE VALUE,
 * 'o' --cgroup-oom DIR FILE LIMIT. */
struct cgroup_op {
   char op;
   const char *dir, *file, *value;
};

struct env_op {
   char op;             /* 'k' keep (with clearenv), 'u' unset, 's' set, 'o' override, 'p' prepend */
   const char *name;
   const char *value;
};

struct plan {
   const char *image;        /* SquashFS file or directory, absolute host path */
   bool image_is_dir;
   unsigned long long offset;/* SquashFS byte offset inside the image file (SIF) */
   const char *squashfuse;   /* absolute host path of squashfuse_ll */
   bool squashfuse_exec;     /* run that, even with a built-in server (CTR_FUSE=exec) */
   bool map_root;            /* uid/gid 0 inside (--fakeroot); else identity */
   const char *newuidmap, *newgidmap; /* --subids: fake root over the user's subordinate */
   unsigned long subuid_start, subuid_count, subgid_start, subgid_count; /* id ranges */
   bool fake_ids;            /* seccomp fakes chown/setuid-family (--subids: fallback) */
   bool host_root;           /* namespaces only: the command runs on the host's tree */
   unsigned long long tmpfs_size; /* --writable-tmpfs upper layer, bytes; 0: unlimited */
   bool writable_image;      /* directory image mounted read-write (building) */
   bool writable_tmpfs;
   bool pid_ns;              /* a PID namespace with an init, unless under a job launcher */
   bool pid_ns_in_step;      /* ... and under one too: the plan runs no rank */
   struct bind *binds;
   size_t n_binds;
   const char *chdir;
   bool clearenv;
   struct env_op *env;
   size_t n_env;
   const char **env_prefixes;/* host PREFIXNAME=v becomes an override NAME=v */
   size_t n_env_prefixes;
   const char **drop_prefixes;/* host variables with these prefixes are removed */
   size_t n_drop_prefixes;
   bool no_eval;             /* override values taken literally, not shell-evaluated */
   bool chdir_optional;      /* a missing --chdir directory warns and falls back to / */
   bool set_umask;           /* --umask given: the command's umask is UMASK */
   mode_t umask;
   enum action action;
   enum join join;           /* share one container among the ranks of a job step */
   const char *join_tag;     /* the step's name, when the environment doesn't give it */
   int join_count;           /* ranks expected on this node, when not in the environment */
   const char *join_keep;    /* a kept (named) container: its holder stays while this directory exists */
   bool join_instance;       /* an instance: a PID namespace with an init; the tag is the key */
   int ready_fd;             /* joined: the init's host pid goes here; -1: none */
   char **words;             /* the plan's own words (not the command): the join key */
   int n_words;
   char **argv;              /* the command and its arguments */
   bool new_keyring;         /* a session keyring of the command's own (--contain) */
   struct cgroup_op *cgroups;/* resource limits, in plan order (launch_cgroup.c) */
   size_t n_cgroups;
   int debug;
   bool net_ns;              /* a network namespace with only loopback (--net) */
   const char *hostname;     /* a UTS namespace with this host name */
   const char *slirp4netns;  /* outbound access through this slirp4netns (launch_net.c) */
   const char *overlay_dir;  /* writable overlay kept in DIR/upper, DIR/work */
   const char *overlay_image;/* writable overlay kept in an ext3 image, served by: */
   const char *fuse2fs;
   const char *fuse_overlayfs;
   struct lower { const char *path; unsigned long long offset; } *lowers; /* --overlay-lower */
   size_t n_lowers;
   bool no_mountpoints;      /* --writable on the user's own directory: no mount point made in it */
   bool set_caps;            /* --caps: */
   unsigned long long cap_drop, cap_add; /* masks, bit N = capability N */
   unsigned runscript_timeout_ms; /* the env scripts' time limit (init enforces it); 0: none */
   bool tmpfs_fuse;          /* --writable-tmpfs through fuse-overlayfs (p->fuse_overlayfs) */
   bool checkpointable;      /* CRIU can dump the command from inside (launch_criu.c) */
   const char *criu[3];      /* --criu INTERP LIBPATH CRIU: the command is CRIU (restore) */
};

/* launch_plan.c (the words: plan_words.def) */
void plan_parse(struct plan *p, int argc, char **argv);
void planner_reap(void); /* the planner --ask started, once the container is built */
void plan_init(struct plan *p);
/* Parse words V[0..N) into P, dying with one line on a bad plan (HINT for a version
 * mismatch); returns the index of the command (past "--"), or N. */
int plan_parse_words(struct plan *p, int n, char **v, const char *hint);
/* A plan file's words (dies when unreadable or malformed); LAUNCHER: its #! line's. */
char **plan_file_words(const char *path, int *n, const char **launcher);

/* launch_plancache.c: --ask's plans kept for later launches (see there). begin returns
 * a cached plan's words (then *N), or NULL: plan, with child (in the planner, before
 * exec) and forked (in the launcher, after fork), then store the plan read. */
struct plancache {
   int dirfd, lock, inputs[2];
   char dir[4096], name[32];
   char **key;
   size_t n_key;
   struct timespec t0;
   bool waited;
};
char **plancache_begin(struct plancache *pc, int argc, char **argv, int *n);
void plancache_child(const struct plancache *pc);
void plancache_forked(struct plancache *pc);
void plancache_store(struct plancache *pc, char *plan, size_t len);
void plancache_report(void); /* --debug: hit or miss, and why (once the plan is parsed) */

/* launch_verbs.c: --version, --check-plan FILE, --rewrite-image FILE PATH [OUT]; each
 * exits. Returns when ARGV[1] is none of them. */
void plan_verb(int argc, char **argv);

/* launch_criu.c: checkpoint/restore with CRIU from inside the container's namespaces */
#define CRIU_CMD_PID 100      /* a checkpointable command's PID: restore's CRIU is PID 2 */
void criu_check_plan(const struct plan *p);
void criu_open_host_root(const struct plan *p); /* before any namespace: --criu's tree */
void criu_command_pid(void);  /* init: the next fork is CRIU_CMD_PID */
void criu_restore_failed(const struct plan *p, int code) __attribute__((noreturn)); /* why, in one line */
void criu_exec(const struct plan *p, char **args) __attribute__((noreturn));
void criu_enter_verb(int argc, char **argv) __attribute__((noreturn)); /* --criu-enter */

/* launch_ns.c */
void ns_enter(const struct plan *p);
void ns_lock_mounts(const struct plan *p); /* --fakeroot: the command one namespace in */
unsigned long ns_id_range(const char *which); /* "uid"/"gid": ids 0..N-1 mapped; 0: initial ns */

/* launch_net.c: --net-ns, --hostname, --slirp4netns (see there for the order) */
int net_unshare_flags(const struct plan *p);
void net_prepare(const struct plan *p);   /* before unshare: the slirp4netns helper */
void net_setup(const struct plan *p);     /* after the id maps: lo, host name, slirp4netns */
void net_helper_stop(void);
void net_helper_reaped(pid_t pid);
/* The container's helper processes besides the FUSE server (slirp4netns, fuse2fs), for a
 * parent that outlives the container: end them (fuse2fs cleanly: it writes the image back)
 * and reap them; helper_reaped: PID was reaped elsewhere, don't signal its number later. */
void helpers_stop(void);
/* Image binds (launch_ibind.c): ibind_open before the scratch tmpfs hides the files,
 * ibind_start before the pivot (each image mounted at SCRATCH_BASE/ibindN, its SUBPATH
 * opened within it), ibind_tree after it (a read-only clone of that path), ibind_stop
 * and ibind_reaped for their FUSE servers. */
#define MAX_IMAGE_BINDS 16
void ibind_open(const struct plan *p);
void ibind_start(const struct plan *p);
int ibind_source(const struct bind *b);
int ibind_tree(const struct bind *b);
void ibind_stop(void);
void ibind_reaped(pid_t pid);
void helper_reaped(pid_t pid);

/* launch_overlay.c: the writable layer kept across runs (--overlay-dir, --overlay-image) */
#define MAX_LOWERS 16
struct overlay_upper {
   int lower_fd[MAX_LOWERS];/* --overlay-lower images, opened likewise */
   int dir_fd;              /* --overlay-dir, opened before the scratch root can hide it */
   int image_fd;            /* --overlay-image, likewise (and locked) */
   int upper_fd, work_fd;   /* the layer's upper/ and work/ once there */
};
#define OVERLAY_MNT "/ovl"  /* fuse2fs's mount point in the scratch root */
void overlay_open(const struct plan *p, struct overlay_upper *o); /* in the mount ns, before the scratch root */
void overlay_start(const struct plan *p, struct overlay_upper *o); /* on it, before the pivot: fuse2fs mounts */
/* "upperdir=...,workdir=..." as the scratch root sees them (after the first pivot) */
char *overlay_upper_opts(const struct overlay_upper *o);
/* --overlay-image: fuse-overlayfs of LOWERS (host paths before the pivot) and the image's
 * layer, mounted on MNT; started before the pivot, it serves once told to go (after the
 * skeleton's mount points are made), and _go waits until it answers at MNT. */
void overlay_fuse_root(const struct plan *p, struct overlay_upper *o, const char *lowers, const char *mnt);
void overlay_fuse_root_go(const struct plan *p, const char *mnt);
void overlay_close(struct overlay_upper *o);
/* The read-only layers' mount points under BASE, top first, each followed by ':'; "" if none. */
char *overlay_lowers(const struct plan *p, const char *base);

/* launch_seccomp.c: TIOCSTI/TIOCLINUX refused; with FAKE_IDS, ownership calls faked */
void seccomp_install(bool fake_ids);
void seccomp_dump(bool fake_ids) __attribute__((noreturn)); /* --seccomp-program */

/* launch_main.c */
int image_open(const struct plan *p);

/* launch_join.c */
/* JOIN_NOT_JOINED_IN_STEP: a job launcher started us, but joining is off (--no-join). */
enum join_result { JOINED, JOIN_NO_STEP, JOIN_NOT_JOINED_IN_STEP };
enum join_result join_container(const struct plan *p, int argc, char **argv);

/* launch_init.c: returns in the command's process, inside a new PID namespace. With
 * --runscript-timeout, g_scripts_fd is the command's end of the pipe it says on that the
 * env scripts are done (-1 otherwise); see there. */
void pidns_supervise(const struct plan *p);
extern int g_scripts_fd;

/* launch_caps.c: --caps, in the command's process just before the exec */
void caps_apply(const struct plan *p);
/* An instance's init (PID 1 of its PID namespace): reaps, relays, ends the instance. */
void instance_init(void) __attribute__((noreturn));
void fresh_proc(void); /* /proc of the PID namespace we are init of */
/* Joined an instance (setns'd its PID namespace): returns in a child that is in it, while
 * this process waits, relays signals and exits with the child's status; UNTIL_END (the
 * instance's start): only once the instance has ended, so its cgroups last as long. */
void pidns_joined_supervise(bool until_end);
extern pid_t g_instance_init; /* launch_join.c: the host pid of the joined instance's init */

/* launch_cgroup.c: resource limits in cgroups delegated to the user */
void cgroup_setup(const struct plan *p);  /* before anything else: make, set, start the reaper */
void cgroup_join(void);                   /* in the command's process, before the exec */
void cgroup_finish(void);                 /* the container has ended: note OOM kills, remove */

/* launch_mount.c */
void mount_container(const struct plan *p, int image_fd);
extern pid_t g_fuse_server; /* the FUSE server mount_container started, if any */
void fuse_server_reap(void); /* end it and reap it (a parent that outlives the container) */

/* launch_sqfs_check.c: refuses (exit 255, one line) an image whose layout is not sane */
void sqfs_check_image(const struct plan *p, int image_fd);

/* launch_fuse.c */
pid_t fuse_mount_squashfs(const struct plan *p, const char *mnt, int image_fd);
void fuse_wait_ready(const struct plan *p, const char *mnt, pid_t server);
void fuse_prefetch(const struct plan *p, const char *root);
#define RUNSCRIPT "/.singularity.d/runscript" /* run's command (launch_exec.c) */
bool fuse_in_process(const struct plan *p);
extern bool g_fuse_quiet; /* the server's stderr to /dev/null (a holder's: see launch_join.c) */
extern bool g_fuse_shared; /* the server of a node's shared container: a worker per CPU */

/* launch_exec.c */
void env_compose(const struct plan *p);
void enter_workdir(const struct plan *p);
void exec_command(const struct plan *p) __attribute__((noreturn));

/* launch_envscript.c */
bool env_scripts_apply_simple(char **paths, size_t n);
bool env_quoted_ok(const char *q);
char *env_eval_quoted(const char *q);

/* launch_misc.c: one error vocabulary. die() prints "ctr: error: <msg>: <strerror>" when
 * errno is set, adds a hint line when given, and exits 255. */
extern int g_debug;
void die_errno(int err, const char *hint, const char *fmt, ...)
   __attribute__((noreturn, format(printf, 3, 4)));
void die_code(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define DIE(...) die_errno(errno, NULL, __VA_ARGS__)
#define DIE_HINT(hint, ...) die_errno(errno, hint, __VA_ARGS__)
#define DIE_PLAIN(...) die_errno(0, NULL, __VA_ARGS__)
#define DIE_HINT_PLAIN(hint, ...) die_errno(0, hint, __VA_ARGS__)

/* launch_front.c: the launcher started as ctr (bin/ctr without a shell). front_main
 * execs what bin/ctr would, or returns the argv of `ctr-launch --ask ...` to go on with. */
bool front_named(const char *argv0);
char **front_main(int argc, char **argv, int *out_argc);

/* In a job, lines say "node NODE rank N pid P: " after the level (call first in main). */
void report_init(void);

/* A child's failure, told to its parent over a pipe: once a child has called
 * child_report_in_child(), its die_*() lines go up the pipe instead of to stderr, and the
 * parent, when it sees the child gone, says in one line what really failed (instead of
 * blaming what it saw fail next). child_report_done(): the child is past its set-up. */
struct child_report { int rd, wr; };
extern int g_report_fd;
void child_report_open(struct child_report *r);
void child_report_in_child(struct child_report *r);
void child_report_in_parent(struct child_report *r);
void child_report_done(struct child_report *r);
const char *child_report_read(struct child_report *r); /* the child's words, or NULL */
/* Fork one of the launcher's helper processes (FUSE servers, the namespace keeper): in the
 * child (0 returned) the report pipe R is in use and DEATHSIG comes when we die; a fork
 * that fails is fatal, naming WHAT. */
pid_t fork_helper(struct child_report *r, int deathsig, const char *what);
/* In a child just forked: die by DEATHSIG with the parent whose pidfd is PARENT (and at
 * once, if it has died already); PARENT is closed. */
void die_with_parent(int parent, int deathsig, const char *what);

char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *xcalloc(size_t n, size_t size);
void write_file(const char *path, const char *content, size_t len);
/* A file of image content: regular (not a FIFO or device: opened O_NONBLOCK, it can't
 * block), at most CAP bytes, else one error line about WHAT. */
char *read_bounded(int fd, size_t cap, const char *what, size_t *len);
/* FD to its end, NUL-terminated, starting with a buffer of HINT bytes; NULL (nothing
 * kept) past CAP bytes, so the caller says why in its own words. */
char *read_capped(int fd, size_t cap, size_t hint, const char *what, size_t *len);
char *read_fd(int fd, const char *what, size_t *len); /* to end of file, NUL-terminated */
bool write_all(int fd, const char *buf, size_t len);
long ms_now(void); /* CLOCK_MONOTONIC, in milliseconds */ /* all of BUF, through EINTR; false on error */
/* A small kernel file (/proc/...) into BUF, NUL-terminated: its length, or -1. */
ssize_t read_small(const char *path, char *buf, size_t size);
void mkdir_p(const char *path, mode_t mode);
bool path_exists(const char *path);
bool is_dir(const char *path);
char *resolve_in_root(const char *root, const char *path);
int open_in_root(int rootfd, const char *rel, int flags);

#endif
