// Numbers in words a user reads.

/** Bytes: 512 B, 1.5 KiB, 12.0 MiB. */
export function humanSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) [v, i] = [v / 1024, i + 1];
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
