// Compression and tar recognised from the first bytes, not from names.
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isTar, sniff, tarCompression } from '../../src/stream/sniff.js';
import { scratch, smallTar, zstdOf } from './helpers.js';

const Sniff = suite('sniff');

Sniff('magic :: gzip, zstd and anything else', async () => {
  assert.is(sniff(gzipSync('x')), 'gzip');
  assert.is(sniff(await zstdOf(Buffer.from('x'))), 'zstd');
  assert.is(sniff(Buffer.from('plain text')), 'none');
});

Sniff('short :: fewer bytes than a magic are not a match', () => {
  assert.is(sniff(new Uint8Array([0x1f])), 'none');
  assert.is(sniff(new Uint8Array([0x28, 0xb5, 0x2f])), 'none');
  assert.is(sniff(new Uint8Array(0)), 'none');
});

Sniff('tar :: ustar at 257; a tarball is a tar or a compressed stream', async () => {
  const tar = await smallTar(scratch('sniff'));
  assert.ok(isTar(tar));
  assert.is(tarCompression(tar), 'none');
  assert.is(tarCompression(gzipSync(tar)), 'gzip');
  assert.is(tarCompression(await zstdOf(tar)), 'zstd');
  assert.is(tarCompression(Buffer.from('just some text\n')), undefined);
  assert.not.ok(isTar(tar.subarray(100)));
});

Sniff('views :: a subarray is read at its own offset', async () => {
  const tar = await smallTar(scratch('sniff'));
  const padded = Buffer.concat([Buffer.alloc(10), tar]);
  assert.ok(isTar(padded.subarray(10)));
});

Sniff.run();
