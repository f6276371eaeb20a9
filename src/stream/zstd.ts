// zstd decompression through the system's libzstd (the one libsquashfs already loads), by
// koffi: ZSTD_decompressStream() over native in/out buffers that live as long as the
// stream. Each input chunk is decompressed on the calling thread; the stream stays async,
// yielding between output buffers. Several times faster than fzstd (pure JS) was (see the
// commit that added this), and a pull decompresses each layer twice.
import koffi from 'koffi';
import { CtrError } from '../errors.js';

const ptr = 'void *';

/** name: [return type, argument types]; handles are `void *` (BigInt). */
const TABLE = {
  ZSTD_createDStream: [ptr, []],
  ZSTD_freeDStream: ['size_t', [ptr]],
  ZSTD_initDStream: ['size_t', [ptr]],
  ZSTD_decompressStream: ['size_t', [ptr, ptr, ptr]],
  ZSTD_isError: ['unsigned int', ['size_t']],
  ZSTD_getErrorName: ['const char *', ['size_t']],
} as const;

type ZstdLib = { [K in keyof typeof TABLE]: (...args: any[]) => any };

let loaded: ZstdLib | undefined;

function zstd(): ZstdLib {
  if (loaded) return loaded;
  const path = process.env.CTR_LIBZSTD || 'libzstd.so.1';
  let handle;
  try {
    handle = koffi.load(path);
  } catch (err) {
    throw new CtrError(`cannot load ${path}`, (err as Error).message, {
      hint: 'install libzstd1 (libsquashfs1 needs it too) or point CTR_LIBZSTD at libzstd.so.1',
      cause: err,
    });
  }
  const lib: Record<string, (...args: any[]) => any> = {};
  for (const [name, [ret, args]] of Object.entries(TABLE)) lib[name] = handle.func(name, ret, args as unknown as string[]);
  loaded = lib as ZstdLib;
  return loaded;
}

const IN_SIZE = 1 << 20;
const OUT_SIZE = 1 << 20;
// ZSTD_outBuffer { void *dst; size_t size; size_t pos; } then ZSTD_inBuffer, the same shape.
const OUT_BUF = 0, IN_BUF = 24, BUFS = 48;

/**
 * The decompressed bytes of the zstd frames in `src`, in buffers of up to 1 MiB; errors are
 * CtrError(what, "corrupt zstd data: ..."). Input is copied into one native buffer; output
 * is written straight into a fresh Buffer each time (V8 never moves a Buffer's bytes), so
 * what is yielded is never reused and nothing is copied twice.
 */
export async function* unzstd(src: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array> {
  const z = zstd();
  const mem = koffi.alloc('uint8_t', BUFS + IN_SIZE) as bigint;
  const ds = z.ZSTD_createDStream() as bigint | null;
  try {
    if (!ds) throw new CtrError(what, 'cannot allocate a zstd decoder');
    const bytes = new Uint8Array(koffi.view(mem, BUFS + IN_SIZE));
    const bufs = new DataView(bytes.buffer, 0, BUFS);
    const input = bytes.subarray(BUFS);
    const outP = mem + BigInt(OUT_BUF), inP = mem + BigInt(IN_BUF);
    const get = (at: number) => Number(bufs.getBigUint64(at, true));
    const set = (at: number, v: number | bigint) => bufs.setBigUint64(at, BigInt(v), true);
    const check = (ret: number | bigint): number | bigint => {
      if (z.ZSTD_isError(ret)) throw new CtrError(what, `corrupt zstd data: ${z.ZSTD_getErrorName(ret)}`);
      return ret;
    };
    let out = Buffer.allocUnsafeSlow(OUT_SIZE);
    set(OUT_BUF, koffi.address(out));
    set(OUT_BUF + 8, OUT_SIZE);
    set(OUT_BUF + 16, 0);
    set(IN_BUF, mem + BigInt(BUFS));
    check(z.ZSTD_initDStream(ds));
    let hint: number | bigint = 1; // 0 once a frame is complete and fully flushed
    for await (const chunk of src) {
      for (let off = 0; off < chunk.length;) {
        const n = Math.min(IN_SIZE, chunk.length - off);
        input.set(chunk.subarray(off, off + n));
        off += n;
        set(IN_BUF + 8, n);
        set(IN_BUF + 16, 0);
        // Until this input is used up and the decoder has room left (a full output buffer
        // may leave more inside the decoder, even with no input left).
        for (;;) {
          hint = check(z.ZSTD_decompressStream(ds, outP, inP));
          if (get(OUT_BUF + 16) === OUT_SIZE) {
            yield out;
            out = Buffer.allocUnsafeSlow(OUT_SIZE);
            set(OUT_BUF, koffi.address(out));
            set(OUT_BUF + 16, 0);
          } else if (get(IN_BUF + 16) === n) {
            break;
          }
        }
      }
    }
    if (get(OUT_BUF + 16)) yield out.subarray(0, get(OUT_BUF + 16));
    if (hint !== 0 && hint !== 0n) throw new CtrError(what, 'corrupt zstd data: unexpected EOF');
  } finally {
    if (ds) z.ZSTD_freeDStream(ds);
    koffi.free(mem);
  }
}
