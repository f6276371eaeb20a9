// Ported from Apptainer's pkg/runtime/engine/apptainer/config/bind_test.go
// (TestParseBindPath: their cases, our tests) against ctr's parser, and one bind of a path
// with a comma and a colon in it through ctr exec. Image binds (image-src=, id=) are not
// ctr's: refused with one line (documented difference).
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseBinds } from '../../src/plan/binds.js';
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

Binds(`${SRC} :: srcDstImageSrc, srcDstId (image binds: refused, documented difference)`, () => {
  assert.is(message(() => parseBinds(['test.sif:/other:image-src=/opt'])), 'bind test.sif:/other:image-src=/opt: image-src=/opt: image binds are not supported');
  assert.is(message(() => parseBinds(['test.sif:/other:image-src=/opt,id=2'])), 'bind test.sif:/other:image-src=/opt,id=2: image-src=/opt: image binds are not supported');
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
