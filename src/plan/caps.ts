// --drop-caps, --add-caps, --no-privs, --keep-privs and --security, as far as they make
// sense rootless. The command's capabilities are those of the container's user
// namespace (nothing of the host's): a user inside has none in effect, root under
// --fakeroot has all. What the launcher can change there it does (the plan word --caps:
// DROP leaves every set, the bounding set too; ADD is raised into the ambient set so a
// command that is not root holds it). Names as Apptainer takes them: any case, with or
// without CAP_, and ALL. Pure.
import { CtrError } from '../errors.js';

/** linux/capability.h, by number. */
export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

const ALL = (1n << BigInt(CAPABILITIES.length)) - 1n;

/** What the launcher is told: masks over capability numbers. */
export interface Caps {
  drop: bigint;
  add: bigint;
}

/** NAMES (from FLAG) as a mask; an unknown name is refused (Apptainer warns and goes on). */
export function capMask(names: readonly string[], flag: string): bigint {
  let mask = 0n;
  for (const raw of names) {
    const upper = raw.trim().toUpperCase();
    const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
    if (name === 'CAP_ALL') return ALL;
    const n = (CAPABILITIES as readonly string[]).indexOf(name);
    if (n < 0) throw new CtrError(`${flag} ${raw}`, 'not a capability', { hint: 'names as in capabilities(7), e.g. CAP_NET_RAW (or ALL)' });
    mask |= 1n << BigInt(n);
  }
  return mask;
}

/** The flags as LaunchOptions.caps (absent when none was given): --no-privs drops all
 * but what --add-caps names; --drop-caps wins over --add-caps, as in Apptainer. */
export function capabilityOptions(drop: string[], add: string[], noPrivs: boolean, keepPrivs: boolean): { caps?: Caps } {
  if (keepPrivs) {
    throw new CtrError('--keep-privs', 'there is no host root privilege to keep: ctr runs as you',
      { hint: "under --fakeroot root in the container has every capability already (its user namespace's)" });
  }
  if (!drop.length && !add.length && !noPrivs) return {};
  const dropped = capMask(drop, '--drop-caps');
  const added = capMask(add, '--add-caps') & ~dropped;
  return { caps: { drop: (noPrivs ? ALL & ~added : 0n) | dropped, add: added } };
}

/** --security: none of its forms can be done rootless by ctr (yet): one line each. */
export function securityOptions(specs: string[]): Record<string, never> {
  for (const spec of specs) {
    const kind = spec.split(':')[0];
    const why = kind === 'uid' || kind === 'gid' ? 'the container runs as you (or as root with --fakeroot); other ids need a real root'
      : kind === 'seccomp' ? "a seccomp profile of your own is not supported: ctr installs its own filter (TIOCSTI refused)"
        : kind === 'apparmor' || kind === 'selinux' ? `changing the ${kind} profile needs privileges ctr does not have`
          : 'not a security option (seccomp:, apparmor:, selinux:, uid:, gid:)';
    throw new CtrError(`--security ${spec}`, why);
  }
  return {};
}

/** A mask as the plan word's hex argument. */
export function capHex(mask: bigint): string {
  return mask.toString(16);
}
