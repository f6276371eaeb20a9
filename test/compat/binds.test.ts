// Ported from Apptainer's pkg/runtime/engine/apptainer/config/bind_test.go
// (TestParseBindPath: their cases, our tests) against ctr's parser, and one bind of a path
// with a comma and a colon in it through ctr exec; image binds (image-src=, id=) parsed
// as there and, after e2e/actions/actions.go actionBinds's image cases, bound through
// ctr exec from a bare SquashFS and from SIF partitions.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { parseBinds } from '../../src/plan/binds.js';
import { readSif } from '../../src/sif/read.js';
import { cached } from '../helpers/images.js';
import { SIFTOOL } from '../helpers/paths.js';
import { message } from '../helpers/errors.js';
import { userIds, userTmp } from '../helpers/user.js';
import { apptainerBusyboxSif, ctrUser, ownLeftovers } from './fixture.js';

const Binds = suite('compat binds');
const SRC = 'pkg/runtime/engine/apptainer/config/bind_test.go TestParseBindPath';
const b = (src: string, dst: string, ro = false) => ({ src, dst, ro });

const CASES: Array<[string, string[], ReturnType<typeof b>[]]> = [
  ['srcOnly', ['/opt'], [b('/opt', '/opt')]],
  ['srcOnlyMultiple', ['/opt,/tmp'], [b('/opt', '/opt'), b('/tmp', '/tmp')]],
  ['srcDst', ['/opt:/other'], [b('/opt', '/other')]],
  ['srcDstMultiple', ['/opt:/other,/tmp:/other2,'], [b('/opt', '/other'), b('/tmp', '/other2')]],
  ['srcDstRO', ['/opt:/other:ro'], [b('/opt', '/other', true)]],
  ['srcDstROMultiple', ['/opt:/other:ro,/tmp:/other2:ro'], [b('/opt', '/other', true), b('/tmp', '/other2', true)]],
  ['srcDstRORW', ['/opt:/other:ro,rw'], [b('/opt', '/other', true)]],
  ['srcDstRORWMultiple', ['/opt:/other:ro,rw,/tmp:/other2:ro,rw'], [b('/opt', '/other', true), b('/tmp', '/other2', true)]],
  ['escaped comma and colon', ['/a\\,b\\:c:/d\\:e,/f'], [b('/a,b:c', '/d:e'), b('/f', '/f')]],
];
for (const [name, input, want] of CASES) {
  Binds(`${SRC} :: ${name}`, () => assert.equal(parseBinds(input), want));
}

Binds(`${SRC} :: invalidOption, invalidSpec`, () => {
  assert.is(message(() => parseBinds(['/opt:/other:invalid'])), 'bind /opt:/other:invalid: unknown mode "invalid" (ro or rw)');
  assert.is(message(() => parseBinds(['/opt:/other:rw:invalid'])), 'bind /opt:/other:rw:invalid: expected SRC[:DST[:ro|rw]]');
});

Binds(`${SRC} :: srcDstImageSrc, srcDstId, imageSrcDefault`, () => {
  assert.equal(parseBinds(['test.sif:/other:image-src=/opt']), [{ src: 'test.sif', dst: '/other', ro: true, image: { src: '/opt' } }]);
  assert.equal(parseBinds(['test.sif:/other:image-src=/opt,id=2']), [{ src: 'test.sif', dst: '/other', ro: true, image: { src: '/opt', id: 2 } }]);
  assert.equal(parseBinds(['test.sif:/other:id=2']), [{ src: 'test.sif', dst: '/other', ro: true, image: { src: '/', id: 2 } }]);
  assert.equal(parseBinds(['d.sqfs:/d:rw,image-src=/a/']), [{ src: 'd.sqfs', dst: '/d', ro: true, image: { src: '/a' } }]);
  // as job scripts write it: a trailing slash on DST, ro before image-src
  assert.equal(parseBinds(['/tmp/e.sqfs:/input-data/:ro,image-src=/']), [{ src: '/tmp/e.sqfs', dst: '/input-data', ro: true, image: { src: '/' } }]);
  assert.is(message(() => parseBinds(['t.sif:/o:image-src=opt'])), 'bind t.sif:/o:image-src=opt: image-src=opt: image-src must be an absolute path inside the image');
  assert.is(message(() => parseBinds(['t.sif:/o:id=0'])), 'bind t.sif:/o:id=0: id=0: id must be a SIF object id (1, 2, ...)');
});

/** A data image: files at / and in /sub, and symlinks that lead out of it (in the image's
 * terms, to its own /inside; on the host, to a place that does not exist). */
function dataSqfs(): Promise<string> {
  return cached('compat-ibind-data.sqfs', async (tmp) => {
    const tree = `${tmp}.tree`;
    fs.mkdirSync(path.join(tree, 'sub'), { recursive: true });
    fs.mkdirSync(path.join(tree, 'ctr-ibind-inside'));
    fs.writeFileSync(path.join(tree, 'top.txt'), 'top\n');
    fs.writeFileSync(path.join(tree, 'sub', 'f.txt'), 'in sub\n');
    fs.writeFileSync(path.join(tree, 'ctr-ibind-inside', 'marker'), 'still in the image\n');
    fs.symlinkSync('../../../../../ctr-ibind-inside', path.join(tree, 'sub', 'up'));
    fs.symlinkSync('/ctr-ibind-inside', path.join(tree, 'abs'));
    await execa('mksquashfs', [tree, tmp, '-noappend', '-all-root', '-quiet', '-no-progress']);
    fs.rmSync(tree, { recursive: true, force: true });
    fs.chmodSync(tmp, 0o644);
  });
}

/** A SIF holding the data image as a Data partition (object 1) and an ext3 one (object 2). */
async function dataSif(): Promise<string> {
  const sqfs = await dataSqfs();
  return cached('compat-ibind-data.sif', async (tmp) => {
    const ext3 = `${tmp}.ext3`;
    fs.writeFileSync(ext3, Buffer.alloc(4096));
    await execa(SIFTOOL, ['new', tmp]);
    await execa(SIFTOOL, ['add', tmp, sqfs, '--datatype', '4', '--parttype', '3', '--partfs', '1', '--partarch', '2']);
    await execa(SIFTOOL, ['add', tmp, ext3, '--datatype', '4', '--parttype', '4', '--partfs', '2', '--partarch', '2']);
    fs.rmSync(ext3);
    fs.chmodSync(tmp, 0o644);
  });
}

const SHOW = 'ls /data; cat /data/*.txt; touch /data/new 2>/dev/null || echo read-only';

Binds('e2e/actions/actions.go actionBinds :: image binds of a bare SquashFS, image-src=/ and /sub, read-only', async () => {
  const img = await dataSqfs();
  const sif = await apptainerBusyboxSif();
  let r = await ctrUser(['exec', '-B', `${img}:/data:image-src=/`, sif, 'sh', '-c', SHOW]);
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'abs\nctr-ibind-inside\nsub\ntop.txt\ntop\nread-only\n');
  r = await ctrUser(['exec', '-B', `${img}:/data:image-src=/sub`, '-B', `${img}:/one.txt:image-src=/top.txt`, sif, 'sh', '-c', `${SHOW}; cat /one.txt`]);
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'f.txt\nup\nin sub\nread-only\ntop\n');
  assert.equal(await ownLeftovers(), []);
});

Binds('e2e/actions/actions.go actionBinds :: image binds of a SIF partition (id=N, and the first by default); ext3 refused', async () => {
  const data = await dataSif();
  const sif = await apptainerBusyboxSif();
  const { descriptors } = await readSif(data);
  assert.equal(descriptors.map((d) => [d.id, d.partition?.fsTypeName]), [[1, 'Squashfs'], [2, 'Ext3']]);
  let r = await ctrUser(['exec', '-B', `${data}:/data:image-src=/sub,id=1`, sif, 'cat', '/data/f.txt']);
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'in sub\n');
  r = await ctrUser(['exec', '-B', `${data}:/data:image-src=/`, sif, 'cat', '/data/top.txt']);
  assert.is(r.stdout, 'top\n');
  // a SIF with a primary partition (an image itself): that one by default
  r = await ctrUser(['exec', '-B', `${sif}:/other:image-src=/bin`, sif, 'test', '-x', '/other/busybox']);
  assert.is(r.stderr, '');
  assert.is(r.code, 0);
  r = await ctrUser(['exec', '-B', `${data}:/data:id=2`, sif, 'true']);
  assert.is(r.code, 255);
  assert.is(r.stderr, `ctr: error: bind image ${data}: partition 2 is Ext3: only SquashFS partitions can be bound\n`);
  r = await ctrUser(['exec', '-B', `${data}:/data:id=3`, sif, 'true']);
  assert.is(r.stderr, `ctr: error: bind image ${data}: no object with id 3 in the SIF\n`);
  assert.equal(await ownLeftovers(), []);
});

Binds('image binds :: symlinks in the image stay inside it; a missing image-src is one error line', async () => {
  const img = await dataSqfs();
  const sif = await apptainerBusyboxSif();
  for (const src of ['/sub/up', '/abs']) {
    const r = await ctrUser(['exec', '-B', `${img}:/data:image-src=${src}`, sif, 'cat', '/data/marker']);
    assert.is(r.stderr, '', src);
    assert.is(r.stdout, 'still in the image\n', src);
  }
  let r = await ctrUser(['exec', '-B', `${img}:/data:image-src=/nope`, sif, 'true']);
  assert.is(r.code, 255);
  assert.is(r.stderr, `ctr: error: bind image ${img}: /nope in the image: No such file or directory\n`);
  r = await ctrUser(['exec', '-B', `${img}:/data:id=1`, sif, 'true']);
  assert.is(r.code, 255);
  assert.is(r.stderr, `ctr: error: bind image ${img}: id=1 names a SIF partition, but this is a bare SquashFS\nctr: hint: leave out id=\n`);
  assert.equal(await ownLeftovers(), []);
});

Binds('e2e/actions/actions.go actionBinds :: a source with an escaped comma and colon, read-only, through ctr exec', async () => {
  const dir = await userTmp('ctr-t-compat-binds-');
  try {
    const src = path.join(dir, 'a,b:c');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'odd name\n');
    const { uid, gid } = await userIds();
    fs.chownSync(src, uid, gid);
    const spec = `${src.replace(/[,:]/g, '\\$&')}:/mnt/x:ro,rw`;
    const r = await ctrUser(['exec', '-B', spec, await apptainerBusyboxSif(), 'sh', '-c', 'cat /mnt/x/f; touch /mnt/x/g 2>/dev/null || echo read-only'], {}, dir);
    assert.is(r.stderr, '');
    assert.is(r.stdout, 'odd name\nread-only\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(await ownLeftovers(), []);
});

Binds.run();
