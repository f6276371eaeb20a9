// The -B/--bind and -H/--home parsers (src/plan/binds.ts): syntax only, no file system.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { normalize, parseBinds, parseHome } from '../../src/plan/binds.js';
import { message } from '../helpers/errors.js';


const Binds = suite('plan binds');

Binds('bind :: SRC alone binds to the same path, read-write', () => {
  assert.equal(parseBinds(['/data']), [{ src: '/data', dst: '/data', ro: false }]);
});

Binds('bind :: SRC:DST and SRC:DST:ro / :rw', () => {
  assert.equal(parseBinds(['/a:/x', '/b:/y:ro', '/c:/z:rw']), [
    { src: '/a', dst: '/x', ro: false },
    { src: '/b', dst: '/y', ro: true },
    { src: '/c', dst: '/z', ro: false },
  ]);
});

Binds('bind :: comma lists and repeats keep their order; empty pieces are skipped', () => {
  assert.equal(parseBinds(['/a,/b:/y:ro', '', '/c,']), [
    { src: '/a', dst: '/a', ro: false },
    { src: '/b', dst: '/y', ro: true },
    { src: '/c', dst: '/c', ro: false },
  ]);
});

Binds('bind :: relative source is kept as typed (resolved by host facts)', () => {
  assert.equal(parseBinds(['data:/data']), [{ src: 'data', dst: '/data', ro: false }]);
});

Binds('bind :: destination is normalized', () => {
  assert.equal(parseBinds(['/a://x//y/']), [{ src: '/a', dst: '/x/y', ro: false }]);
});

Binds('bind errors :: unknown mode', () => {
  assert.is(message(() => parseBinds(['/a:/b:rx'])), 'bind /a:/b:rx: unknown mode "rx" (ro or rw)');
});

Binds('bind errors :: too many colons', () => {
  assert.is(message(() => parseBinds(['/a:/b:ro:x'])), 'bind /a:/b:ro:x: expected SRC[:DST[:ro|rw]]');
});

Binds('bind errors :: relative destination', () => {
  assert.is(message(() => parseBinds(['/a:b'])), 'bind /a:b: destination b is not an absolute path');
});

Binds('bind errors :: relative source with no destination is a relative destination', () => {
  assert.is(message(() => parseBinds(['data'])), 'bind data: destination data is not an absolute path');
});

Binds('bind errors :: empty source', () => {
  assert.is(message(() => parseBinds([':/b'])), 'bind :/b: empty source');
});

Binds('home :: SRC and SRC:DST', () => {
  assert.equal(parseHome('/h'), { src: '/h' });
  assert.equal(parseHome('/h:/home/me/'), { src: '/h', dst: '/home/me' });
});

Binds('home errors :: bad specs', () => {
  assert.is(message(() => parseHome('/h:rel')), 'home /h:rel: destination rel is not an absolute path');
  assert.is(message(() => parseHome('/h:/a:/b')), 'home /h:/a:/b: expected SRC[:DST]');
  assert.is(message(() => parseHome(':/a')), 'home :/a: expected SRC[:DST]');
});

Binds('normalize :: slashes', () => {
  assert.is(normalize('/'), '/');
  assert.is(normalize('//'), '/');
  assert.is(normalize('/a//b/'), '/a/b');
});

Binds.run();
