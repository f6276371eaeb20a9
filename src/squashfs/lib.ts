// libsquashfs 1.2 (squashfs-tools-ng) through koffi: one declarative function table, a
// loader that finds the library once (CTR_LIBSQUASHFS, then the soname), and helpers for
// the `static inline` parts of the API (sqfs_destroy and vtable members), which the shared
// library does not export: we call the object's function pointers ourselves.
//
// koffi 3 passes and returns pointers as BigInt; NULL comes back as null.

import koffi, { type LibraryHandle } from 'koffi';
import { CtrError } from '../errors.js';
import * as S from './structs.js';

const ptr = 'void *';
const outPtr = koffi.out(koffi.pointer('void *'));
const outU16 = koffi.out(koffi.pointer('uint16_t'));
const outU32 = koffi.out(koffi.pointer('uint32_t'));
const outU64 = koffi.out(koffi.pointer('uint64_t'));

/** name: [return type, argument types]. Handles are `void *` (BigInt) on the JS side. */
const TABLE = {
  sqfs_free: ['void', [ptr]],

  sqfs_compressor_config_init: ['int', [ptr, 'int', 'size_t', 'uint16_t']],
  sqfs_compressor_create: ['int', [ptr, outPtr]],

  sqfs_super_init: ['int', [ptr, 'size_t', 'uint32_t', 'int']],
  sqfs_super_write: ['int', [ptr, ptr]],
  sqfs_super_read: ['int', [ptr, ptr]],

  sqfs_block_writer_create: [ptr, [ptr, 'size_t', 'uint32_t']],
  sqfs_frag_table_create: [ptr, ['uint32_t']],
  sqfs_frag_table_write: ['int', [ptr, ptr, ptr, ptr]],

  sqfs_id_table_create: [ptr, ['uint32_t']],
  sqfs_id_table_id_to_index: ['int', [ptr, 'uint32_t', outU16]],
  sqfs_id_table_index_to_id: ['int', [ptr, 'uint16_t', outU32]],
  sqfs_id_table_write: ['int', [ptr, ptr, ptr, ptr]],
  sqfs_id_table_read: ['int', [ptr, ptr, ptr, ptr]],

  sqfs_block_processor_create_ex: ['int', [koffi.pointer(S.sqfs_block_processor_desc_t), outPtr]],
  sqfs_block_processor_begin_file: ['int', [ptr, ptr, ptr, 'uint32_t']],
  sqfs_block_processor_append: ['int', [ptr, ptr, 'size_t']],
  sqfs_block_processor_end_file: ['int', [ptr]],
  sqfs_block_processor_finish: ['int', [ptr]],

  sqfs_meta_writer_create: [ptr, [ptr, ptr, 'uint32_t']],
  sqfs_meta_writer_flush: ['int', [ptr]],
  sqfs_meta_writer_get_position: ['void', [ptr, outU64, outU32]],
  // The same, writing into memory we own (no out-parameter marshalling: once per inode).
  sqfs_meta_writer_get_position_raw: ['void', [ptr, ptr, ptr]],
  sqfs_meta_write_write_to_file: ['int', [ptr]],
  sqfs_meta_writer_write_inode: ['int', [ptr, ptr]],

  sqfs_dir_writer_create: [ptr, [ptr, 'uint32_t']],
  sqfs_dir_writer_begin: ['int', [ptr, 'uint32_t']],
  sqfs_dir_writer_add_entry: ['int', [ptr, 'str', 'uint32_t', 'uint64_t', 'uint16_t']],
  sqfs_dir_writer_end: ['int', [ptr]],
  sqfs_dir_writer_create_inode: [ptr, [ptr, 'size_t', 'uint32_t', 'uint32_t']],

  sqfs_xattr_writer_create: [ptr, ['uint32_t']],
  sqfs_xattr_writer_begin: ['int', [ptr, 'uint32_t']],
  sqfs_xattr_writer_add: ['int', [ptr, 'str', ptr, 'size_t']],
  sqfs_xattr_writer_end: ['int', [ptr, outU32]],
  sqfs_xattr_writer_flush: ['int', [ptr, ptr, ptr, ptr]],

  sqfs_inode_set_xattr_index: ['int', [ptr, 'uint32_t']],
  sqfs_inode_make_extended: ['int', [ptr]],

  sqfs_dir_reader_create: [ptr, [ptr, ptr, ptr, 'uint32_t']],
  sqfs_dir_reader_open_dir: ['int', [ptr, ptr, 'uint32_t']],
  sqfs_dir_reader_read: ['int', [ptr, outPtr]],
  sqfs_dir_reader_get_inode: ['int', [ptr, outPtr]],
  sqfs_dir_reader_get_root_inode: ['int', [ptr, outPtr]],
  sqfs_dir_reader_find_by_path: ['int', [ptr, ptr, 'str', outPtr]],

  sqfs_data_reader_create: [ptr, [ptr, 'size_t', ptr, 'uint32_t']],
  sqfs_data_reader_load_fragment_table: ['int', [ptr, ptr]],
  sqfs_data_reader_read: ['int32_t', [ptr, ptr, 'uint64_t', ptr, 'uint32_t']],
} as const;

type Fn = (...args: any[]) => any;
export type SqfsLib = { [K in keyof typeof TABLE]: Fn };

let loaded: SqfsLib | undefined;

/** The bound library, loaded on first use. */
export function sqfs(): SqfsLib {
  if (loaded) return loaded;
  const path = process.env.CTR_LIBSQUASHFS || 'libsquashfs.so.1';
  let handle: LibraryHandle;
  try {
    handle = koffi.load(path);
  } catch (err) {
    throw new CtrError(`cannot load ${path}`, (err as Error).message, {
      hint: 'install libsquashfs1 (squashfs-tools-ng >= 1.2) or point CTR_LIBSQUASHFS at libsquashfs.so.1',
      cause: err,
    });
  }
  S.checkLayouts();
  const lib: Record<string, Fn> = {};
  for (const [name, [ret, args]] of Object.entries(TABLE)) {
    lib[name] = handle.func(name.replace(/_raw$/, ''), ret, args as unknown as string[]);
  }
  loaded = lib as SqfsLib;
  return loaded;
}

// Vtable members (sqfs_object_t.destroy, sqfs_compressor_t.write_options/read_options).
const destroyProto = koffi.proto('void sqfs_destroy_fn(void *obj)');
const cmpOptionsProto = koffi.proto('int sqfs_cmp_options_fn(void *cmp, void *file)');

/** sqfs_destroy(): the static inline in predef.h, done by hand. Safe on 0n/null. */
export function destroy(obj: bigint | null | undefined): void {
  if (!obj) return;
  const fn = koffi.decode(obj, 'void *') as bigint | null;
  if (fn) koffi.call(fn, destroyProto, obj);
}

export function compressorWriteOptions(cmp: bigint, file: bigint): number {
  const vt = koffi.decode(cmp, S.sqfs_compressor_vtable) as { write_options: bigint };
  return koffi.call(vt.write_options, cmpOptionsProto, cmp, file) as number;
}

export function compressorReadOptions(cmp: bigint, file: bigint): number {
  const vt = koffi.decode(cmp, S.sqfs_compressor_vtable) as { read_options: bigint };
  return koffi.call(vt.read_options, cmpOptionsProto, cmp, file) as number;
}

let memcpyFn: ((dst: bigint | Uint8Array, src: bigint | Uint8Array, n: number) => void) | undefined;

/**
 * libc memcpy, for moving a few bytes between native memory and a reused Buffer: one cheap
 * call, where a koffi.view() per pointer costs an ArrayBuffer (about ten times as much).
 */
export function memcpy(dst: bigint | Uint8Array, src: bigint | Uint8Array, n: number): void {
  memcpyFn ??= koffi.load(null).func('memcpy', 'void', ['void *', 'void *', 'size_t']) as unknown as typeof memcpyFn;
  memcpyFn!(dst, src, n);
}

/** A DataView over native memory (no copy): valid only while the memory is. */
export function nativeView(p: bigint, len: number): DataView {
  return new DataView(koffi.view(p, len));
}
