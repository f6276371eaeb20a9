// Device numbers. A tar header carries major and minor; the image wants one number.
//
// makedev() is glibc's (sys/sysmacros.h), the dev_t that stat.rdev holds:
//   (major & 0xfff) << 8 | (major & ~0xfff) << 32 | (minor & 0xff) | (minor & ~0xff) << 12
// Its low 32 bits are the kernel's new_encode_dev(), which is what SquashFS stores in a
// device inode (the kernel reads it back with new_decode_dev: major 12 bits, minor 20), and
// what squashfs-tools' mksquashfs and squashfs-tools-ng's tar2sqfs write: the SquashFS
// writer keeps those 32 bits. The number is exact while the high word stays below 2^21
// (every major below 2^21), as a JS number can hold.

export function makedev(major: number, minor: number): number {
  const lo = ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & 0xfff00) << 12)) >>> 0;
  const hi = ((major & 0xfffff000) | (minor >>> 20)) >>> 0;
  return hi * 2 ** 32 + lo;
}

/** glibc's major() and minor() of a dev_t from makedev() or stat.rdev. */
export function devParts(dev: number): { major: number; minor: number } {
  const lo = dev >>> 0;
  const hi = Math.floor(dev / 2 ** 32) >>> 0;
  return {
    major: (((lo >>> 8) & 0xfff) | (hi & 0xfffff000)) >>> 0,
    minor: ((lo & 0xff) | ((lo >>> 12) & 0xfff00) | ((hi & 0xfff) << 20)) >>> 0,
  };
}
