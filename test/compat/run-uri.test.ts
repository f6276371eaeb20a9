// Ported from Apptainer's e2e/actions/actions.go RunFromURI: `ctr exec docker://REF CMD`
// and `ctr run oci:DIR:TAG` run the image straight from the reference, through ctr's SIF
// cache ($CTR_CACHEDIR/sif): converted once, then only looked up. A local registry
// (docker-registry) and the OCI test layout stand in for Docker Hub.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { userTmp } from '../helpers/user.js';
import { push, startRegistry, testLayout, type Registry } from '../oci/fixtures.js';
import { ctrUser, ownLeftovers } from './fixture.js';

const ctx = { dir: '', layout: '', env: {} as Record<string, string> };
let reg: Registry;
const RunUri = suite('compat run from URI');

RunUri.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-uri-');
  ctx.layout = await testLayout();
  ctx.env = { CTR_CACHEDIR: path.join(ctx.dir, 'cache') };
  reg = await startRegistry();
  await push(ctx.layout, 'test', `${reg.host}/compat/test:1`);
});
RunUri.after.each(async () => assert.equal(await ownLeftovers(), [], 'processes left behind'));
RunUri.after(async () => {
  await reg.stop();
  fs.rmSync(ctx.dir, { recursive: true, force: true });
});

RunUri('e2e/actions/actions.go RunFromURI :: exec docker://REF runs it, converted once into the SIF cache', async () => {
  const ref = `docker://${reg.host}/compat/test:1`;
  const first = await ctrUser(['exec', '--no-https', ref, 'cat', '/data/replace.txt'], ctx.env, ctx.dir);
  assert.is(first.code, 0, first.stderr);
  assert.is(first.stdout, 'v2\n');
  assert.is(first.stderr, '', 'progress is shown on a terminal only');
  const sifs = fs.readdirSync(path.join(ctx.dir, 'cache/sif'));
  assert.is(sifs.length, 1);
  assert.match(sifs[0], /^[0-9a-f]{64}\.sif$/);
  const mtime = fs.statSync(path.join(ctx.dir, 'cache/sif', sifs[0])).mtimeMs;
  const again = await ctrUser(['exec', '--no-https', ref, 'sh', '-c', 'echo "$GREETING"'], ctx.env, ctx.dir);
  assert.is(again.stderr, '');
  assert.is(again.stdout, 'hello world\n');
  assert.equal(fs.readdirSync(path.join(ctx.dir, 'cache/sif')), sifs, 'the same entry, not a second one');
  assert.is(fs.statSync(path.join(ctx.dir, 'cache/sif', sifs[0])).mtimeMs, mtime, 'not rewritten');
});

RunUri('e2e/actions/actions.go RunFromURI :: run oci:DIR:TAG runs the image\'s ENTRYPOINT and CMD', async () => {
  const r = await ctrUser(['run', `oci:${ctx.layout}:test`], ctx.env, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, "/work: default it's\n");
});

RunUri.run();
