// Ported from Apptainer's e2e/cache/cache.go (their cases, our tests): `ctr cache list`
// and `ctr cache clean` over both of ctr's caches, the OCI blobs (type blob) and the SIFs
// that `ctr exec oci:...|docker://...` runs from (type oci, $CTR_CACHEDIR/sif), filled by a
// real run from the OCI test layout. ctr never asks before cleaning (Apptainer asks
// without --force): a documented difference, so the interactive cases assert --force's
// outcome and that no prompt is read.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { userTmp } from '../helpers/user.js';
import { testLayout } from '../oci/fixtures.js';
import { ctrUser, ownLeftovers } from './fixture.js';

const ctx = { dir: '', layout: '', n: 0 };
const Cache = suite('compat cache');

Cache.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-cache-');
  ctx.layout = await testLayout();
});
Cache.after.each(async () => assert.equal(await ownLeftovers(), [], 'processes left behind'));
Cache.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

/** A fresh cache dir holding one SIF (from running the layout's image) and its env. */
async function filled(): Promise<{ env: Record<string, string>; sifDir: string }> {
  const env = { CTR_CACHEDIR: path.join(ctx.dir, `cache${ctx.n++}`) };
  const r = await ctrUser(['exec', `oci:${ctx.layout}:test`, 'true'], env, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  const sifDir = path.join(env.CTR_CACHEDIR, 'sif');
  assert.is(fs.readdirSync(sifDir).length, 1);
  return { env, sifDir };
}

const cache = (args: string[], env: Record<string, string>) => ctrUser(['cache', ...args], env, ctx.dir);

Cache('e2e/cache/cache.go testNoninteractiveCacheCmds :: clean force empties the cache', async () => {
  const { env, sifDir } = await filled();
  const r = await cache(['clean', '--force'], env);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^removed 1 image \(SIF\), [\d.]+ [KM]iB, from .*\/sif$/m);
  assert.equal(fs.readdirSync(sifDir), []);
});

Cache('e2e/cache/cache.go testNoninteractiveCacheCmds :: clean force days beyond age keeps, days within age (0) removes', async () => {
  const { env, sifDir } = await filled();
  const keep = await cache(['clean', '--force', '--days', '30'], env);
  assert.is(keep.code, 0, keep.stderr);
  assert.match(keep.stdout, /^removed 0 images \(SIF\) unused for more than 30 days/m);
  assert.is(fs.readdirSync(sifDir).length, 1);
  const gone = await cache(['clean', '--force', '--days', '0'], env);
  assert.is(gone.code, 0, gone.stderr);
  assert.equal(fs.readdirSync(sifDir), []);
});

Cache('e2e/cache/cache.go testNoninteractiveCacheCmds :: clean help, list help', async () => {
  for (const sub of ['clean', 'list']) {
    const r = await cache([sub, '--help'], {});
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /--type/);
  }
});

Cache('e2e/cache/cache.go testNoninteractiveCacheCmds :: list type (oci) says how many container files; blob only the blobs', async () => {
  const { env } = await filled();
  const r = await cache(['list', '--type', 'oci'], env);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^1 image \(SIF\), [\d.]+ [KM]iB in .*\/sif\n$/);
  const b = await cache(['list', '-T', 'blob'], env);
  assert.match(b.stdout, /^0 blobs, 0 B in .*blobs\/sha256\n$/, 'oci: layouts are read in place, not cached');
  const net = await cache(['list', '--type', 'net'], env);
  assert.is(net.code, 255);
  assert.is(net.stderr.split('\n')[0], 'ctr: error: --type net: ctr keeps no cache of that type (only blob and oci)');
});

Cache('e2e/cache/cache.go testNoninteractiveCacheCmds :: list verbose: a NAME table with every entry', async () => {
  const { env, sifDir } = await filled();
  const r = await cache(['list', '--verbose'], env);
  assert.is(r.code, 0, r.stderr);
  const [head, row] = r.stdout.split('\n');
  assert.match(head, /^NAME\s+DATE CREATED\s+SIZE\s+TYPE$/);
  assert.match(row, new RegExp(`^${fs.readdirSync(sifDir)[0]}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+[\\d.]+ [KM]iB\\s+oci$`));
  assert.match(r.stdout, /\ntotal [\d.]+ [KM]iB\n$/);
});

Cache('e2e/cache/cache.go testInteractiveCacheCmds :: clean dry-run removes nothing; clean type removes only that type; no prompt', async () => {
  const { env, sifDir } = await filled();
  const blobs = path.join(env.CTR_CACHEDIR, 'blobs/sha256');
  fs.mkdirSync(blobs, { recursive: true });
  fs.writeFileSync(path.join(blobs, 'a'.repeat(64)), 'x');
  fs.chownSync(path.join(blobs, 'a'.repeat(64)), fs.statSync(ctx.dir).uid, fs.statSync(ctx.dir).gid);
  const dry = await cache(['clean', '--dry-run'], env);
  assert.is(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^would remove sha256:a{64} \(1 B\)$/m);
  assert.match(dry.stdout, /^would remove 1 image \(SIF\)/m);
  assert.is(fs.readdirSync(sifDir).length, 1);
  const oci = await cache(['clean', '--type', 'oci'], env);
  assert.is(oci.code, 0, oci.stderr);
  assert.equal(fs.readdirSync(sifDir), []);
  assert.equal(fs.readdirSync(blobs), ['a'.repeat(64)], 'blobs kept');
  // The cleaned entry is made again on the next run.
  const again = await ctrUser(['exec', `oci:${ctx.layout}:test`, 'true'], env, ctx.dir);
  assert.is(again.code, 0, again.stderr);
  assert.is(fs.readdirSync(sifDir).length, 1);
});

Cache.run();
