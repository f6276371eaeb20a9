// ctr build OUT.sif SOURCE: SOURCE is a directory, a SquashFS file, a rootfs tarball
// (.tar, gzip or zstd; streamed, never unpacked), or a definition file.
// A definition file is built in a temporary directory (bootstrap, %setup, %files,
// /.singularity.d, %post and %test through the launcher as root in a user namespace),
// then packed. Nothing is left behind on failure or Ctrl-C: not the temporary tree,
// not a partial OUT.
import { execa } from 'execa';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, cp, lstat, mkdir, readdir, readFile, realpath, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { makeTempDir, tempBeside } from '../tmp.js';
import { basename, dirname, join, resolve } from 'node:path';
import { endianness } from 'node:os';
import { CtrError, describeSystemError, STRERROR } from '../errors.js';
import { Cleanup } from '../host/cleanup.js';
import { isSquashfs } from '../squashfs/superblock.js';
import { readHead, sourceDateEpoch } from '../files.js';
import { goArchFromNode } from '../sif/format.js';
import { writeSif, partitionObject } from '../sif/write.js';
import { composeBuildPlan } from '../plan/build-plan.js';
import { runLauncher } from '../launch/launcher.js';
import { APT_NO_SANDBOX, chooseFakeroot, describeFakeroot, type FakerootChoice, type FakerootMode } from '../plan/fakeroot.js';
import { findSubIds } from '../host/subids.js';
import { insideBuildNamespace, runInBuildNamespace } from './userns.js';
import { userInfo } from 'node:os';
import type { CompressorName } from '../squashfs/structs.js';
import { bootstrap, unpackInto } from './bootstrap.js';
import { writeApps } from './apps.js';
import { parseDefinition, parseLabels, type Definition } from './definition.js';
import { writeLabels, writeSingularityDir } from './metadata.js';
import { checkOutput, packSif, sifIdentity } from './pack.js';
import { progress, RateMeter } from './progress.js';
import { pipeline, Transform, type Readable } from 'node:stream';
import { isSif, resif } from './resif.js';
import { tarCompression, writeSquashfsFromTar } from './tar.js';

export interface BuildOptions {
  force: boolean;
  compressor: CompressorName;
  level?: number;
  /** Plain HTTP to registries (docker:// sources, Bootstrap: docker). */
  noHttps?: boolean;
  /** How %post's fake root makes many ids (plan/fakeroot.ts); default auto. */
  fakerootMode?: FakerootMode;
  /** OUT is a directory image (Apptainer's --sandbox), not a SIF. */
  sandbox?: boolean;
  /** --fix-perms: the owner may read, write and (directories) enter everything in the sandbox. */
  fixPerms?: boolean;
  /** --update: the sandbox OUT is the base a definition file's sections apply to (no bootstrap). */
  update?: boolean;
}

/** The build's own exit: the status of the same build run inside its user namespace. */
export class BuildRanElsewhere extends Error {
  constructor(readonly code: number) {
    super(`build exited with ${code}`);
  }
}

/** Image references that `ctr pull` takes are build sources too. */
const OCI_SOURCE = /^(docker:\/\/|oci:|oci-archive:|docker-archive:)/;

export const DEFAULT_COMPRESSOR: CompressorName = 'zstd';
export const DEFAULT_LEVEL = 3;

export async function build(out: string, source: string, opts: BuildOptions): Promise<void> {
  if (opts.update && !opts.sandbox) throw new CtrError('--update', 'only with --sandbox (it updates a directory image)', { hint: `ctr build --update --sandbox ${out} ${source}` });
  if (opts.update && !opts.force) {
    const st = await stat(out).catch(() => undefined);
    if (!st?.isDirectory()) throw new CtrError(`--update ${out}`, st ? 'not a directory (a sandbox to update)' : 'no such sandbox to update');
  } else {
    await checkOutput(out, opts.force);
  }
  if (opts.sandbox && opts.force) await checkReplaceable(out);
  if (opts.sandbox) return buildSandbox(out, source, opts);
  if (OCI_SOURCE.test(source)) {
    const { pullToSif } = await import('../oci/index.js');
    await pullToSif(source, out, { force: opts.force, compressor: opts.compressor, level: opts.level, https: !opts.noHttps });
    return;
  }
  const epoch = sourceDateEpoch();
  const arch = goArchFromNode(process.arch, endianness()) ?? process.arch;
  const st = await stat(source).catch((err) => { throw new CtrError(`build source ${source}`, describeSystemError(err)); });
  const cleanup = new Cleanup('build');
  cleanup.file(() => [tempBeside(out)]);
  try {
    if (st.isDirectory()) {
      progress(`packing ${source}`);
      await packSif(source, out, { ...opts, epoch, arch, meter: new RateMeter(() => `packing ${source}`) });
    } else {
      const head = await readHead(source, 4096, `build source ${source}`);
      if (isSif(head)) {
        progress(`copying the image of SIF ${source}`);
        await resif(source, out, epoch);
      } else if (isSquashfs(head)) {
        progress(`wrapping SquashFS ${source}`);
        await writeSif(out, [partitionObject({ path: source }, { arch })], { arch, ...sifIdentity(epoch) });
      } else if (tarCompression(head)) {
        progress(`packing tarball ${source}`);
        const meter = new RateMeter(() => `reading ${source}`, st.size);
        const writeAt = async ({ fh, offset }: { fh: FileHandle; offset: number }) => (await writeSquashfsFromTar(
          metered(createReadStream(source), meter), fh.fd, { offset, compressor: opts.compressor, level: opts.level, mtime: epoch, name: source })).bytes;
        try {
          await writeSif(out, [partitionObject({ writeAt }, { arch })], { arch, ...sifIdentity(epoch) });
        } finally {
          meter.end();
        }
      } else if (isDefinition(head)) {
        if (await inBuildNamespace(cleanup, opts)) return;
        const rootfs = await makeTempDir('ctr-build-');
        cleanup.dir(rootfs);
        const def = await buildDefinition(parseDefinition(await readFile(source, 'utf8'), source), rootfs, opts, epoch, cleanup);
        progress('packing the root file system');
        // Inside the build's namespace the owners are real ids (root, _apt, ...): keep them.
        await packSif(rootfs, out, { ...opts, epoch, arch, deffile: def.raw, labels: def.labels, keepOwnership: insideBuildNamespace(), meter: new RateMeter(() => 'packing') });
      } else {
        throw new CtrError(`build source ${source}`, 'not a directory, SIF, SquashFS image, tarball or definition file');
      }
    }
  } catch (err) {
    throw diskFull(err, out) ?? err;
  } finally {
    await cleanup.run();
  }
}

/** --force removes what is at OUT: a directory only when it is empty or an image (it
 * has /.singularity.d), never a home directory given by mistake. */
async function checkReplaceable(out: string): Promise<void> {
  const st = await lstat(out).catch(() => undefined);
  if (!st?.isDirectory()) return;
  const names: string[] = await readdir(out).catch(() => []);
  if (names.length && !names.includes('.singularity.d')) {
    throw new CtrError(`--force ${out}`, 'a directory that is not a container image (no /.singularity.d): not removed', { hint: 'remove it yourself, or build elsewhere' });
  }
}

/** SOURCE's bytes, counted by METER on their way through (errors pass on). */
function metered(source: Readable, meter: RateMeter): Readable {
  const count = new Transform({ transform(chunk: Buffer, _enc, done) { meter.add(chunk.length); done(null, chunk); } });
  pipeline(source, count, () => {});
  return count;
}

const isDefinition = (head: Buffer) => /^\s*(#.*\n\s*)*bootstrap\s*:/i.test(head.toString('utf8'));

/** A definition file's build runs over a subordinate id range in a namespace of its own:
 * true when this process started it there (and it is done), false to build here. */
async function inBuildNamespace(cleanup: Cleanup, opts: BuildOptions): Promise<boolean> {
  const fakeroot = buildFakeroot(opts);
  if (insideBuildNamespace()) return false;
  progress(describeFakeroot(fakeroot));
  if (fakeroot.mode !== 'subuid') return false;
  cleanup.disarm();
  const code = await runInBuildNamespace(fakeroot);
  if (code !== 0) throw new BuildRanElsewhere(code);
  return true;
}

/**
 * ctr build --sandbox DIR SOURCE: the root file system as a directory, as Apptainer's
 * sandbox. Made beside DIR and renamed into place at the end (an existing DIR, with
 * --force, is replaced only then). SIF and SquashFS sources are unpacked, a directory is
 * copied, a definition file is built in place; tarballs and OCI references go through a
 * SIF first. After a build over a subordinate range, files %post gave to other ids
 * belong to those ids on the host, as with Apptainer's --fakeroot sandboxes.
 */
async function buildSandbox(out: string, source: string, opts: BuildOptions): Promise<void> {
  const cleanup = new Cleanup('build');
  const tree = tempBeside(out.replace(/\/+$/, ''));
  const viaSif = tempBeside(out.replace(/\/+$/, ''), `${process.pid}.sif`);
  cleanup.file(() => [viaSif]);
  try {
    if (OCI_SOURCE.test(source) && opts.update && !opts.force) {
      progress(`${source} is not a definition file: nothing to apply to ${out}`);
      return;
    }
    if (OCI_SOURCE.test(source)) {
      await build(viaSif, source, { ...opts, sandbox: false, update: false, force: true });
      source = viaSif;
    }
    const st = await stat(source).catch((err) => { throw new CtrError(`build source ${source}`, describeSystemError(err)); });
    const head = st.isDirectory() ? undefined : await readHead(source, 4096, `build source ${source}`);
    const update = opts.update && !opts.force;
    if (head && isDefinition(head)) {
      const def = parseDefinition(await readFile(source, 'utf8'), source);
      if (await inBuildNamespace(cleanup, opts)) return;
      cleanup.dir(tree);
      if (update) {
        // The sandbox as it is is the base; the sections apply to a copy, swapped in at the end.
        progress(`building into ${out} (--update: no bootstrap)`);
        const cp = await execa('cp', ['-a', '--', out.replace(/\/+$/, ''), tree], { reject: false, all: true });
        if (cp.exitCode !== 0) throw new CtrError(`cannot copy ${out}`, String(cp.all ?? '').trim().split('\n').pop() ?? `cp exited with ${cp.exitCode}`);
      } else {
        await mkdir(tree);
      }
      await buildDefinition(def, tree, { ...opts, noBootstrap: update }, sourceDateEpoch(), cleanup);
    } else if (update) {
      // As Apptainer: an image source brings no sections to apply; the sandbox stays.
      progress(`${source} is not a definition file: nothing to apply to ${out}`);
      return;
    } else {
      if (head && !isSif(head) && !isSquashfs(head)) {
        if (!tarCompression(head)) throw new CtrError(`build source ${source}`, 'not a directory, SIF, SquashFS image, tarball or definition file');
        await build(viaSif, source, { ...opts, sandbox: false, update: false, force: true });
        source = viaSif;
      }
      await mkdir(tree);
      cleanup.dir(tree);
      progress(`${st.isDirectory() ? 'copying' : 'unpacking'} ${source === viaSif ? 'the image' : source} to ${out}`);
      await unpackInto(source, tree);
    }
    await chmod(tree, 0o755);
    // Apptainer's --fix-perms: a tree the user can delete again (an image's 0555 directories).
    if (opts.fixPerms) await execa('chmod', ['-R', 'u+rwX', tree]);
    if (opts.force || update) {
      await execa('chmod', ['-R', 'u+rwX', out], { reject: false });
      await rm(out, { recursive: true, force: true });
    }
    await rename(tree, out).catch((err) => { throw new CtrError(`cannot make ${out}`, describeSystemError(err)); });
  } catch (err) {
    throw diskFull(err, out) ?? err;
  } finally {
    await cleanup.run();
  }
}

/** Builds a definition file's root file system in ROOTFS (an empty directory); returns
 * the definition with its final labels. */
async function buildDefinition(def: Definition, rootfs: string, opts: BuildOptions & { noBootstrap?: boolean }, epoch: number | undefined, cleanup: Cleanup): Promise<Definition> {
  await chmod(rootfs, 0o755); // mkdtemp makes it 0700: that would become the image's /
  if (def.sections.pre) {
    // Apptainer's %pre: on the host, as the user, before the bootstrap (no root file system yet).
    progress('%pre (runs on the host)');
    await hostScript('%pre', def.sections.pre, {}, def.shells.pre);
  }
  if (!opts.noBootstrap) {
    progress(`bootstrap ${def.bootstrap}${def.header.from ? ` from ${def.header.from}` : ''}`);
    await bootstrap(def, rootfs, { noHttps: opts.noHttps });
  }
  // SCIF apps: made here, installed after %post, as Apptainer does.
  const appInstall = await writeApps(rootfs, def.apps);
  if (def.sections.setup) {
    progress('%setup');
    await hostScript('%setup', def.sections.setup, { APPTAINER_ROOTFS: rootfs, SINGULARITY_ROOTFS: rootfs }, def.shells.setup);
  }
  for (const [src, dst] of def.files) {
    const to = join(rootfs, dst);
    await mkdir(dirname(to), { recursive: true });
    await cp(resolve(src), to, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true }).catch((err) => {
      throw new CtrError(`%files ${src}`, describeSystemError(err));
    });
  }
  const labels = {
    'org.label-schema.schema-version': '1.0',
    'org.label-schema.build-date': new Date((epoch ?? Math.floor(Date.now() / 1000)) * 1000).toISOString(),
    'org.label-schema.usage.singularity.deffile.bootstrap': def.header.bootstrap,
    ...(def.header.from ? { 'org.label-schema.usage.singularity.deffile.from': def.header.from } : {}),
    ...def.labels,
  };
  await writeSingularityDir(rootfs, def, labels);
  // One id (the seccomp way, not inside a subordinate range): apt must not drop to _apt.
  const apt = !insideBuildNamespace() && existsSync(join(rootfs, 'etc/apt/apt.conf.d'));
  if (def.sections.post || appInstall) {
    progress(def.sections.post ? '%post' : '%appinstall');
    await inContainer('%post', rootfs, true, (def.sections.post ?? '') + appInstall, apt, cleanup, def.shells.post);
    // Labels %post appended to $APPTAINER_LABELS win over %labels, as in Apptainer.
    const added = await takeBuildLabels(rootfs);
    if (Object.keys(added).length) {
      Object.assign(labels, added);
      await writeLabels(rootfs, labels);
    }
  }
  if (def.sections.test) {
    progress('%test');
    await inContainer('%test', rootfs, false, def.sections.test, apt, cleanup, def.shells.test);
  }
  // The mount point of that file, empty, made in the tree: not part of the image.
  if (apt) await rm(join(rootfs, APT_NO_SANDBOX.path), { force: true });
  return { ...def, labels };
}

/** The build's fake root: subuid or seccomp (plan/fakeroot.ts). Inside the build's own
 * namespace %post nests with its range, and fake ids stand by for a single id. */
function buildFakeroot(opts: BuildOptions): FakerootChoice {
  const { username, uid } = userInfo();
  return chooseFakeroot(opts.fakerootMode ?? 'auto', findSubIds(username, uid), uid);
}

/**
 * %post / %test: the image's /bin/sh -e, as root in a user namespace, output shown live.
 * With `-c SHELL`, Apptainer's way: the script is a file, run as `SHELL script` by sh.
 */
async function inContainer(section: string, rootfs: string, writable: boolean, script: string, aptNoSandbox: boolean, cleanup: Cleanup, shell?: string): Promise<void> {
  const hostFiles = new Map([['/etc/resolv.conf', '/etc/resolv.conf'], ['/etc/hosts', '/etc/hosts']]);
  const plan = composeBuildPlan(rootfs, { writable, hostFiles: await realpaths(hostFiles), env: BUILD_SCRIPT_ENV, aptNoSandbox });
  let command = ['/bin/sh', '-e', '-c', script];
  const file = join(rootfs, `.${section.slice(1)}.script`);
  if (shell) {
    if (!writable) throw new CtrError(`${section} -c ${shell}`, 'a shell for %test is not supported (the image is read-only then)');
    await writeFile(file, script, { mode: 0o755 });
    command = ['/bin/sh', '-e', '-c', `${shell} /${basename(file)}`];
  }
  const code = await runLauncher([...plan, '--', ...command]).finally(() => shell ? rm(file, { force: true }) : undefined);
  if (cleanup.interrupted) await new Promise(() => {}); // killed by Ctrl-C: the signal handler reports and exits
  if (code !== 0) throw new CtrError(`${section} failed`, `exit code ${code}`);
}

/** What %post sees, as in Apptainer: where to add environment lines and labels. */
const BUILD_LABELS = '/.build.labels';
const BUILD_SCRIPT_ENV = {
  APPTAINER_ENVIRONMENT: '/.singularity.d/env/91-environment.sh',
  SINGULARITY_ENVIRONMENT: '/.singularity.d/env/91-environment.sh',
  APPTAINER_LABELS: BUILD_LABELS,
  SINGULARITY_LABELS: BUILD_LABELS,
};

/** The labels %post wrote to $APPTAINER_LABELS (`NAME VALUE` lines); the file is removed. */
async function takeBuildLabels(rootfs: string): Promise<Record<string, string>> {
  const at = join(rootfs, BUILD_LABELS);
  const st = await lstat(at).catch(() => undefined);
  if (!st) return {};
  if (!st.isFile() || st.size > 1 << 20) throw new CtrError(`%post ${BUILD_LABELS}`, 'not a regular file of at most 1 MiB');
  const labels = parseLabels(await readFile(at, 'utf8'));
  await rm(at, { force: true });
  return labels;
}

async function hostScript(section: string, script: string, env: Record<string, string>, shell?: string): Promise<void> {
  let r: { exitCode?: number };
  if (shell) {
    const dir = await makeTempDir('ctr-script-');
    try {
      await writeFile(join(dir, 'script'), script, { mode: 0o700 });
      r = await execa('/bin/sh', ['-e', '-c', `${shell} "$0"`, join(dir, 'script')], { env, stdio: 'inherit', reject: false });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  } else {
    r = await execa('/bin/sh', ['-e', '-c', script], { env, stdio: 'inherit', reject: false });
  }
  if (r.exitCode !== 0) throw new CtrError(`${section} failed`, `exit code ${r.exitCode}`);
}

async function realpaths(m: Map<string, string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [dst, src] of m) {
    const r = await realpath(src).catch(() => undefined);
    if (r) out.set(dst, r);
  }
  return out;
}

/** A full disk, wherever it struck (SquashFS writer, SIF writer), said in one plain line. */
function diskFull(err: unknown, out: string): CtrError | undefined {
  for (let e = err as { code?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === 'ENOSPC') return new CtrError(`cannot write ${out}`, STRERROR.ENOSPC, { cause: err });
  }
  return undefined;
}

