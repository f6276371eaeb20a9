// Shared by the stream tests: small tarballs made by the real tools, and scratch space.
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function scratch(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ctr-stream-${prefix}-`));
}

/** A tar of a few files (some bigger than one tar block), made by tar(1). */
export async function smallTar(dir: string): Promise<Buffer> {
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'a.txt'), 'hello\n');
  fs.writeFileSync(path.join(tree, 'sub/big'), Buffer.alloc(300_000, 7));
  const out = await execa('tar', ['-C', tree, '-cf', '-', '.'], { encoding: 'buffer' });
  return Buffer.from(out.stdout as Uint8Array);
}

export async function zstdOf(data: Uint8Array): Promise<Buffer> {
  return Buffer.from((await execa('zstd', ['-q', '-c'], { input: data, encoding: 'buffer' })).stdout as Uint8Array);
}

/** `data` in chunks of `size` bytes, as a file or network stream hands them out. */
export async function* chunked(data: Uint8Array, size = 4096): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

export async function collect(src: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const got: Uint8Array[] = [];
  for await (const c of src) got.push(c);
  return Buffer.concat(got);
}

export async function whyOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}
