// The ld.so cache (/etc/ld.so.cache), read the way `ldconfig -p` prints it: which
// library names the dynamic loader knows and where their files are. --nv and --rocm find
// the driver's libraries by name here, as Apptainer does with `ldconfig -p`, without
// starting ldconfig. Pure: bytes in, entries out.
//
// glibc's format (elf/cache.c, sysdeps/generic/ldconfig.h): optionally the old
// "ld.so-1.7.0" table, then the new one: magic "glibc-ld.so.cache1.1", nlibs (u32),
// len_strings (u32), flags, padding, extension offset, 3 unused u32 (48 bytes), then
// nlibs entries of { i32 flags; u32 key; u32 value; u32 osversion; u64 hwcap } whose
// key/value are offsets of NUL-terminated strings from the start of the new header.

export interface LdCacheEntry {
  /** The name the loader looks up ("libcuda.so.1"). */
  name: string;
  /** The file it maps that name to. */
  path: string;
  /** glibc's entry flags: the ELF class and machine (FLAG_X8664_LIB64 is 0x0303). */
  flags: number;
}

const OLD_MAGIC = 'ld.so-1.7.0';
const NEW_MAGIC = 'glibc-ld.so.cache1.1';
const NEW_HEADER = 48;
const NEW_ENTRY = 24;

/** The entries of CACHE; [] for anything that is not a cache (the loader ignores it too). */
export function parseLdCache(cache: Buffer): LdCacheEntry[] {
  let base = 0;
  if (cache.subarray(0, OLD_MAGIC.length).toString('latin1') === OLD_MAGIC) {
    if (cache.length < 16) return [];
    const nOld = cache.readUInt32LE(12);
    base = (16 + nOld * 12 + 7) & ~7;
  }
  if (cache.length < base + NEW_HEADER || cache.subarray(base, base + NEW_MAGIC.length).toString('latin1') !== NEW_MAGIC) return [];
  const n = cache.readUInt32LE(base + 20);
  if (base + NEW_HEADER + n * NEW_ENTRY > cache.length) return [];
  const str = (off: number): string | undefined => {
    const at = base + off;
    if (at >= cache.length) return undefined;
    const end = cache.indexOf(0, at);
    return end < 0 ? undefined : cache.subarray(at, end).toString('utf8');
  };
  const out: LdCacheEntry[] = [];
  for (let i = 0; i < n; i++) {
    const e = base + NEW_HEADER + i * NEW_ENTRY;
    const name = str(cache.readUInt32LE(e + 4));
    const path = str(cache.readUInt32LE(e + 8));
    if (name && path?.startsWith('/')) out.push({ name, path, flags: cache.readInt32LE(e) });
  }
  return out;
}

/** glibc's machine bits of an entry's flags (FLAG_REQUIRED_MASK) for the host's arch. */
const MACHINE: Record<string, number> = { x64: 0x0300, arm64: 0x0a00, ppc64: 0x0500, riscv64: 0x1000 };

/** Does ENTRY suit a process of ARCH (Node's process.arch)? 32-bit entries don't. */
export function entryFits(entry: LdCacheEntry, arch: string): boolean {
  const want = MACHINE[arch];
  return want === undefined || (entry.flags & 0xff00) === want;
}
