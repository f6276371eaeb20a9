// What a byte stream is, from its first bytes rather than a file name or a media type
// (registries and tools label layers inconsistently): gzip or zstd by their magic, a plain
// tar by the "ustar" at offset 257 of its first header.

export type Compression = 'gzip' | 'zstd' | 'none';

/** Bytes enough to tell every format here apart (the first tar header's magic included). */
export const SNIFF_BYTES = 512;

const USTAR_AT = 257;

export function sniff(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** Whether `head` starts a POSIX (ustar) or GNU tar archive. */
export function isTar(head: Uint8Array): boolean {
  return head.length >= USTAR_AT + 5 && Buffer.from(head.buffer, head.byteOffset + USTAR_AT, 5).toString('latin1') === 'ustar';
}

/** A tarball's compression, or undefined when `head` starts nothing a tarball reader takes. */
export function tarCompression(head: Uint8Array): Compression | undefined {
  const c = sniff(head);
  if (c !== 'none') return c;
  return isTar(head) ? 'none' : undefined;
}
