// What a caller hands the SquashFS writer: one entry per path, with its contents.
import type { CompressorName } from './structs.js';
import type { EntryType } from './tree.js';

/** File contents: bytes, a file to read, an open descriptor (read from its current position), or a stream. */
export type FileData = Uint8Array | { path: string; size?: number } | { fd: number; size?: number } | AsyncIterable<Uint8Array>;

export interface TreeEntry {
  /** Path inside the image; '' or '/' is the root. Missing parent directories are created (0755). */
  path: string;
  type: EntryType;
  /** Permission bits; file-type bits are ignored. */
  mode: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch; ignored when the writer has a fixed `mtime`. */
  mtime?: number;
  /** Symlink target, or for 'hardlink' the image path of the inode to link to. */
  target?: string;
  /** Device number for 'char'/'block' (as in stat.rdev). */
  rdev?: number;
  /** Contents of a 'file' (none: empty file). */
  data?: FileData;
  /** Extended attributes, full names ('user.foo', 'security.capability'). */
  xattrs?: Record<string, Uint8Array | string>;
}

export interface WriterOptions {
  /** Byte offset inside the output file where the image starts (to write inside a SIF). */
  offset?: number;
  compressor: CompressorName;
  /** Compression level; the library's default when absent (gzip 9, xz 6, zstd 15). */
  level?: number;
  /** Data block size in bytes, a power of two from 4 KiB to 1 MiB; default 128 KiB as gensquashfs. */
  blockSize?: number;
  /** Compression threads; default os.availableParallelism(). */
  workers?: number;
  /**
   * Fixed timestamp for every inode and the super block (reproducible builds). Defaults to
   * SOURCE_DATE_EPOCH when that is set; otherwise entries keep their own mtimes and the
   * super block gets the current time.
   */
  mtime?: number;
}

export const isStream = (d: FileData): d is AsyncIterable<Uint8Array> =>
  !(d instanceof Uint8Array) && typeof (d as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function';
