// --fakeroot: which of the two ways to be root over many ids a launch uses. Pure.
//
//   subuid   the user's subordinate ids mapped by newuidmap/newgidmap: _apt, man, nobody
//            are real, distinct ids inside, and a build keeps the owners that package
//            managers set. Needs /etc/subuid and /etc/subgid entries and Debian's uidmap.
//   seccomp  one id (the user, as root) and a seccomp filter that makes chown, the setuid
//            family and device mknod succeed without doing anything (Charliecloud's way).
//            Needs nothing from the site; files are owned by root in a built image.
//
// auto (the default) takes subuid where it can, and the launcher falls back to seccomp
// with a note if newuidmap refuses the range at launch time.
import { CtrError } from '../errors.js';
import type { SubIds, PlanWriter } from './words.js';

export type FakerootMode = 'auto' | 'subuid' | 'seccomp';
export const FAKEROOT_MODES: readonly FakerootMode[] = ['auto', 'subuid', 'seccomp'];

export interface FakerootChoice {
  /** What will be tried first, for --debug and the build's progress line. */
  mode: 'subuid' | 'seccomp';
  subids?: SubIds;
  /** With mode seccomp: why not subuid. */
  why?: string;
  /** seccomp stands by in case newuidmap refuses the range. */
  fallback: boolean;
}

export function chooseFakeroot(mode: FakerootMode, found: { ok: true; subids: SubIds } | { ok: false; why: string }, uid: number): FakerootChoice {
  if (mode === 'seccomp') return { mode: 'seccomp', why: '--fakeroot-mode seccomp', fallback: false };
  if (found.ok) return { mode: 'subuid', subids: found.subids, fallback: mode === 'auto' };
  if (mode === 'subuid') {
    throw new CtrError('--fakeroot-mode subuid', found.why, {
      hint: `an administrator can add "${uid}:100000:65536" (a range no one else has) to /etc/subuid and /etc/subgid and install uidmap`,
    });
  }
  return { mode: 'seccomp', why: found.why, fallback: false };
}

/** The plan words for CHOICE (with --map-root). */
export function writeFakeroot(w: PlanWriter, choice: FakerootChoice): void {
  w.mapRoot();
  if (choice.subids) w.subids(choice.subids);
  if (choice.mode === 'seccomp' || choice.fallback) w.fakeIds();
}

/**
 * apt in the seccomp way: apt drops to _apt for downloads and then checks that the ids
 * really changed (APT::Sandbox::Verify::IDs, on by default), which a faked setresuid
 * can't pass ("Could not switch group"). With one id there is nobody to drop to, so apt
 * is told to stay root, in a read-only file ctr mounts over the image's apt.conf.d.
 */
export const APT_NO_SANDBOX = { path: '/etc/apt/apt.conf.d/00ctr-fakeroot', content: 'APT::Sandbox::User "root";\n' };

/** One line for --debug and the build's progress: which way, and why. */
export function describeFakeroot(c: FakerootChoice): string {
  if (c.mode === 'subuid' && c.subids) {
    const { uidStart: s, uidCount: n } = c.subids;
    return `fake root: subordinate ids ${s}-${s + n - 1}${c.fallback ? ' (seccomp if newuidmap refuses them)' : ''}`;
  }
  return `fake root: one id, privileged calls faked by seccomp (${c.why})`;
}
