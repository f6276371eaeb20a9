// PlanWriter: the only way TypeScript writes a launch plan's words. The words, their
// arities and meanings are native/plan_words.def (the table the C parser is built from;
// `npm run build` turns it into plan-words.gen.ts). Every method emits one word through
// emit(), which checks the arity against that table, so a plan this writes is one the
// launcher parses; test/plan/words.test.ts checks that every word has a method. Pure.
import { PLAN_VERSION, PLAN_WORDS, type PlanWordId } from './plan-words.gen.js';

export { PLAN_VERSION, PLAN_WORDS, type PlanWordId };

export type BindMode = 'ro' | 'rw';
export type PlanAction = 'exec' | 'run' | 'shell';
export type PlanJoin = 'auto' | 'on' | 'off';

/** Subordinate id ranges for fake root through newuidmap/newgidmap (--subids). */
export interface SubIds {
  newuidmap: string;
  newgidmap: string;
  uidStart: number;
  uidCount: number;
  gidStart: number;
  gidCount: number;
}

export class PlanWriter {
  private readonly out: string[] = [];

  /** Every plan starts with its version: a launcher refuses any other. */
  constructor() {
    this.emit('PLAN_VERSION', String(PLAN_VERSION));
  }

  /** The plan's words (without "--" and a command, which the caller adds). */
  words(): string[] {
    return [...this.out];
  }

  private emit(id: PlanWordId, ...args: string[]): this {
    const w = PLAN_WORDS[id];
    if (args.length !== w.arity) throw new Error(`plan word ${w.name} takes ${w.arity} arguments (${w.args}), given ${args.length}`);
    this.out.push(w.name, ...args);
    return this;
  }

  /** A SquashFS image (bare, or inside a SIF at OFFSET). */
  image(path: string, offset: number): this {
    return this.emit('IMAGE', path).emit('OFFSET', uint(offset, 'offset'));
  }
  imageDir(path: string): this {
    return this.emit('IMAGE_DIR', path);
  }
  writable(): this {
    return this.emit('WRITABLE');
  }
  /** With writable(): the user's own directory image, where no mount point is made. */
  noMountpoints(): this {
    return this.emit('NO_MOUNTPOINTS');
  }
  /** Capabilities (hex masks): DROP leaves every set, the bounding one too; ADD goes into the ambient set. */
  caps(drop: string, add: string): this {
    return this.emit('CAPS', drop, add);
  }
  /** With writableTmpfs(): the overlay is fuse-overlayfs at PATH, showing files as the user's. */
  writableTmpfsFuse(path: string): this {
    return this.emit('WRITABLE_TMPFS_FUSE', path);
  }
  /** The image's env scripts (sourced by its shell) may take MS milliseconds, then the launch fails. */
  runscriptTimeout(ms: number): this {
    return this.emit('RUNSCRIPT_TIMEOUT', uint(ms, 'timeout'));
  }
  squashfuse(path: string): this {
    return this.emit('SQUASHFUSE', path);
  }
  mapRoot(): this {
    return this.emit('MAP_ROOT');
  }
  subids(s: SubIds): this {
    return this.emit('SUBIDS', s.newuidmap, s.newgidmap, uint(s.uidStart, 'uid start'), uint(s.uidCount, 'uid count'),
      uint(s.gidStart, 'gid start'), uint(s.gidCount, 'gid count'));
  }
  fakeIds(): this {
    return this.emit('FAKE_IDS');
  }
  /** Namespaces and id maps only; the command runs on the host's file system. */
  hostRoot(): this {
    return this.emit('HOST_ROOT');
  }
  writableTmpfs(): this {
    return this.emit('WRITABLE_TMPFS');
  }
  /** Size of the --writable-tmpfs upper layer in bytes; 0: unlimited. */
  writableTmpfsSize(bytes: number): this {
    return this.emit('WRITABLE_TMPFS_SIZE', uint(bytes, 'tmpfs size'));
  }
  pidNs(): this {
    return this.emit('PID_NS');
  }
  /** A container CRIU can dump from inside its namespaces (native/launch_criu.c). */
  checkpointable(): this {
    return this.emit('CHECKPOINTABLE');
  }
  /** The command is the host's CRIU: its dynamic loader, library directories (a:b), binary. */
  criu(interp: string, libraryPath: string, criu: string): this {
    return this.emit('CRIU', interp, libraryPath, criu);
  }
  /** The PID namespace inside a job step too: for plans that run no rank. */
  pidNsInStep(): this {
    return this.emit('PID_NS_IN_STEP');
  }
  /** An optional bind is skipped when SRC is missing. */
  bind(src: string, dst: string, mode: BindMode, opts: { optional?: boolean } = {}): this {
    return this.emit('BIND', src, dst, opts.optional ? `${mode}?` : mode);
  }
  /** Bind the path that the launcher's environment variable NAME names (on the node, at launch). */
  bindEnv(name: string, mode: BindMode, opts: { optional?: boolean } = {}): this {
    return this.emit('BIND_ENV', name, opts.optional ? `${mode}?` : mode);
  }
  /** Bind SUBPATH inside the SquashFS at OFFSET in file IMAGE onto DST, read-only (an image bind). */
  imageBind(image: string, offset: number, subpath: string, dst: string): this {
    return this.emit('IMAGE_BIND', image, uint(offset, 'image bind offset'), subpath, dst);
  }
  /** MODE: the root directory's, octal (e.g. '1777'). */
  tmpfs(dst: string, mode: string): this {
    return this.emit('TMPFS', dst, mode);
  }
  file(dst: string, content: string): this {
    return this.emit('FILE', dst, content);
  }
  passwdLine(line: string): this {
    return this.emit('PASSWD_LINE', line);
  }
  groupLine(line: string): this {
    return this.emit('GROUP_LINE', line);
  }
  chdir(dir: string): this {
    return this.emit('CHDIR', dir);
  }
  clearenv(): this {
    return this.emit('CLEARENV');
  }
  keepenv(name: string): this {
    return this.emit('KEEPENV', name);
  }
  unsetenv(name: string): this {
    return this.emit('UNSETENV', name);
  }
  /** Set before the image's env scripts run. */
  setenv(name: string, value: string): this {
    return this.emit('SETENV', name, value);
  }
  /** Set after the image's env scripts. */
  envOverride(name: string, value: string): this {
    return this.emit('ENV_OVERRIDE', name, value);
  }
  envPrefix(prefix: string): this {
    return this.emit('ENV_PREFIX', prefix);
  }
  action(a: PlanAction): this {
    return this.emit('ACTION', a);
  }
  join(j: PlanJoin): this {
    return this.emit('JOIN', j);
  }
  joinTag(tag: string): this {
    return this.emit('JOIN_TAG', tag);
  }
  joinCount(n: number): this {
    if (!Number.isInteger(n) || n < 1) throw new Error(`plan: join count ${n} is not a positive integer`);
    return this.emit('JOIN_COUNT', String(n));
  }
  /** The container outlives its ranks until DIR is removed (a named container, for a job's later steps). */
  joinKeep(dir: string): this {
    if (!dir.startsWith('/')) throw new Error(`plan: join keep directory ${dir} is not absolute`);
    return this.emit('JOIN_KEEP', dir);
  }
  /** A session keyring of the command's own, not the user's (--contain). */
  newKeyring(): this {
    return this.emit('NEW_KEYRING');
  }
  debug(): this {
    return this.emit('DEBUG');
  }
  /** After the env scripts and overrides: VALUE first on the colon list NAME. */
  envPrepend(name: string, value: string): this {
    return this.emit('ENV_PREPEND', name, value);
  }
  /** A cgroup directory delegated to the user; the container's cgroup is made in it. */
  cgroup(dir: string): this {
    return this.emit('CGROUP', dir);
  }
  /** Write VALUE to FILE of the container's cgroup under DIR (after cgroup(DIR)). */
  cgroupSet(dir: string, file: string, value: string): this {
    return this.emit('CGROUP_SET', dir, file, value);
  }
  /** FILE under DIR counts OOM kills: the note names the memory LIMIT. */
  cgroupOom(dir: string, file: string, limit: string): this {
    return this.emit('CGROUP_OOM', dir, file, limit);
  }
  dropEnvPrefix(prefix: string): this {
    return this.emit('DROP_ENV_PREFIX', prefix);
  }
  noEval(): this {
    return this.emit('NO_EVAL');
  }
  chdirOptional(): this {
    return this.emit('CHDIR_OPTIONAL');
  }
  umask(octal: string): this {
    return this.emit('UMASK', octal);
  }
  /** A network namespace of the container's own, only loopback up (--net). */
  netNs(): this {
    return this.emit('NET_NS');
  }
  /** A UTS namespace with host name NAME (--hostname). */
  hostname(name: string): this {
    return this.emit('HOSTNAME', name);
  }
  /** With netNs: outbound access through slirp4netns at PATH (--network slirp4netns). */
  slirp4netns(path: string): this {
    return this.emit('SLIRP4NETNS', path);
  }
  /** A writable overlay kept in host directory DIR (its upper/ and work/). */
  overlayDir(dir: string): this {
    return this.emit('OVERLAY_DIR', dir);
  }
  /** A read-only SquashFS layer over the image (bare, or in a SIF at OFFSET); the last on top. */
  overlayLower(path: string, offset: number): this {
    return this.emit('OVERLAY_LOWER', path, uint(offset, 'overlay offset'));
  }
  /** With joinTag: the shared container is an instance (a PID namespace with an init; the tag alone names it). */
  joinInstance(): this {
    return this.emit('JOIN_INSTANCE');
  }
  /** Once joined, the init's host pid is written to descriptor FD (ctr instance start). */
  readyFd(fd: number): this {
    return this.emit('READY_FD', uint(fd, 'ready descriptor'));
  }
  /** A writable overlay kept in an ext3 image, served by fuse2fs, fuse-overlayfs as the root. */
  overlayImage(path: string, fuse2fs: string, fuseOverlayfs: string): this {
    return this.emit('OVERLAY_IMAGE', path, fuse2fs, fuseOverlayfs);
  }
}

/** A non-negative integer, as the launcher's parser takes it (digits only). */
function uint(n: number, what: string): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`plan: ${what} ${n} is not a non-negative integer`);
  return String(n);
}
