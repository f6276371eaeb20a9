// The pure parts of the OCI code: references, platform selection, the image config turned
// into /.singularity.d, layers applied as an overlay would, auth challenges and credentials,
// and the verified blob cache.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { credentialsFor, parseChallenge } from '../../src/oci/auth.js';
import { BlobCache } from '../../src/oci/cache.js';
import { containerFiles } from '../../src/oci/container.js';
import { RootfsTree } from '../../src/oci/layers.js';
import { parseManifest, selectPlatform, type ImageIndex } from '../../src/oci/manifest.js';
import { parseReference } from '../../src/oci/reference.js';
import type { TarHeader } from '../../src/stream/tar.js';

const message = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
};

// --- references ---
const Ref = suite('reference');

Ref('docker :: Docker Hub short names get library/ and latest', () => {
  assert.equal(parseReference('docker://busybox'), { transport: 'docker', registry: 'docker.io', repository: 'library/busybox', tag: 'latest', raw: 'docker://busybox' });
});

Ref('docker :: registry with a port, nested repository and digest', () => {
  const d = `sha256:${'a'.repeat(64)}`;
  const r = parseReference(`docker://127.0.0.1:5000/a/b:v1@${d}`);
  assert.equal(r, { transport: 'docker', registry: '127.0.0.1:5000', repository: 'a/b', tag: 'v1', digest: d, raw: `docker://127.0.0.1:5000/a/b:v1@${d}` });
});

Ref('oci :: a directory with and without a tag', () => {
  assert.equal(parseReference('oci:/x/lay:v2'), { transport: 'oci', path: '/x/lay', tag: 'v2', raw: 'oci:/x/lay:v2' });
  assert.equal(parseReference('oci-archive:/x/a.tar'), { transport: 'oci-archive', path: '/x/a.tar', raw: 'oci-archive:/x/a.tar' });
});

Ref('errors :: unknown transport, bad repository, bad digest', () => {
  assert.is(message(() => parseReference('foo:bar')), 'image reference "foo:bar": unknown transport "foo"');
  assert.is(message(() => parseReference('docker://Host.io/UPPER')), 'image reference "docker://Host.io/UPPER": invalid repository name "UPPER"');
  assert.is(message(() => parseReference('docker://x/y@sha256:12')), 'image reference "docker://x/y@sha256:12": invalid digest "sha256:12" (expected sha256:<64 hex digits>)');
});
Ref.run();

// --- manifests and platforms ---
const Plat = suite('platform');
const dg = (c: string) => `sha256:${c.repeat(64)}`;
const index: ImageIndex = {
  kind: 'index',
  manifests: [
    { mediaType: 'm', digest: dg('1'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: 'm', digest: dg('2'), size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { mediaType: 'm', digest: dg('3'), size: 1, platform: { os: 'unknown', architecture: 'unknown' } },
  ],
};

Plat('select :: architecture, with a variant or without', () => {
  assert.is(selectPlatform(index, { os: 'linux', architecture: 'amd64' }, 'x').digest, dg('1'));
  assert.is(selectPlatform(index, { os: 'linux', architecture: 'arm64' }, 'x').digest, dg('2'));
});

Plat('select :: none fits, the available ones are listed (attestations left out)', () => {
  assert.is(message(() => selectPlatform(index, { os: 'linux', architecture: 's390x' }, 'cannot pull X')),
    'cannot pull X: no image for platform linux/s390x: available: linux/amd64, linux/arm64/v8');
});

Plat('manifest :: malformed documents are refused with the reason', () => {
  const p = (s: string) => message(() => parseManifest(Buffer.from(s)));
  assert.is(p('{'), "malformed manifest: not JSON (Expected property name or '}' in JSON at position 1)");
  assert.is(p('{"schemaVersion":1}'), 'malformed manifest: unsupported schemaVersion 1 (schema 2 is supported)');
  assert.is(p('{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1},"layers":[]}'), 'malformed manifest: config has no valid sha256 digest ("sha256:zz")');
});
Plat.run();

// --- the image config → /.singularity.d ---
const Cfg = suite('container files');

async function runscript(cfg: Parameters<typeof containerFiles>[0], args: string[]): Promise<string> {
  const f = containerFiles(cfg).runscript.replace(/^cd .*$/m, ''); // no WORKDIR on the host
  const r = await execa('/bin/sh', ['-c', f, 'runscript', ...args]);
  return r.stdout;
}

Cfg('runscript :: ENTRYPOINT + CMD; arguments replace CMD, quoting survives', async () => {
  const cfg = { config: { Entrypoint: ['/bin/echo', "it's"], Cmd: ['a b', '$HOME'] } };
  assert.is(await runscript(cfg, []), "it's a b $HOME");
  assert.is(await runscript(cfg, ['x y', "'z'"]), "it's x y 'z'");
});

Cfg('runscript :: CMD only, and neither', () => {
  assert.is(containerFiles({ config: { Cmd: ['/bin/date'] } }).runscript,
    '#!/bin/sh\n# Written by ctr pull from the image config (ENTRYPOINT, CMD, WORKDIR).\nif [ $# -eq 0 ]; then set -- /bin/date; fi\nexec "$@"\n');
  assert.is(containerFiles({}).runscript, '#!/bin/sh\n# Written by ctr pull from the image config (ENTRYPOINT, CMD, WORKDIR).\nexec /bin/sh "$@"\n');
});

Cfg('env :: single-quoted exports; names sh cannot export are left out', async () => {
  const f = containerFiles({ config: { Env: ["A=it's $x `y`", 'B=', 'bad-name=1', 'C=x=y'], WorkingDir: '/w d' } });
  assert.equal(f.skippedEnv, ['bad-name=1']);
  const r = await execa('/bin/sh', ['-c', `${f.env}\nprintf '%s|' "$A" "$B" "$C"`]);
  assert.is(r.stdout, "it's $x `y`||x=y|");
  assert.match(f.runscript, "cd '/w d' || exit 1\n");
});

Cfg('labels :: sorted, as JSON', () => {
  const f = containerFiles({ config: { Labels: { b: '2', a: '1' } } });
  assert.is(f.labelsJson, '{\n\t"a": "1",\n\t"b": "2"\n}\n');
});
Cfg.run();

// --- layers ---
const Lay = suite('layers');
let idx = 0;
const h = (name: string, type = 'file', extra: Partial<TarHeader> = {}): TarHeader =>
  ({ index: idx++, name, type, mode: type === 'directory' ? 0o755 : 0o644, mtime: 0, size: 1, ...extra });
const names = (t: RootfsTree) => [...t.entries()].map((e) => e.path + (e.inode.type === 'dir' ? '/' : ''));

Lay('whiteout :: removes lower files, not the same layer\'s', () => {
  const t = new RootfsTree();
  t.applyLayer(0, [h('d/', 'directory'), h('d/a'), h('d/b')], 'l1');
  t.applyLayer(1, [h('d/a'), h('d/.wh.a'), h('d/.wh.b')], 'l2');
  assert.equal(names(t), ['/', 'd/', 'd/a']);
  assert.equal([...t.entries()][2].inode.from?.layer, 1);
});

Lay('opaque :: empties the directory of lower entries, keeps its own', () => {
  const t = new RootfsTree();
  t.applyLayer(0, [h('o/x'), h('o/sub/y'), h('keep')], 'l1');
  t.applyLayer(1, [h('o/', 'directory', { mode: 0o700 }), h('o/.wh..wh..opq'), h('o/z')], 'l2');
  assert.equal(names(t), ['/', 'keep', 'o/', 'o/z']);
  assert.is([...t.entries()][2].inode.mode, 0o700);
});

Lay('hard link :: across layers, keeps the inode when the target is replaced or deleted', () => {
  const t = new RootfsTree();
  t.applyLayer(0, [h('f'), h('g')], 'l1');
  t.applyLayer(1, [h('l', 'link', { linkname: 'f' }), h('m', 'link', { linkname: './g' })], 'l2');
  t.applyLayer(2, [h('f', 'file', { size: 9 }), h('.wh.g')], 'l3');
  const e = Object.fromEntries([...t.entries()].map((x) => [x.path, x.inode]));
  assert.is(e.l.from?.layer, 0);
  assert.is(e.f.from?.layer, 2);
  assert.is(e.m.from?.layer, 0);
  assert.is(message(() => t.applyLayer(3, [h('n', 'link', { linkname: 'nope' })], 'layer 4/4')),
    'cannot apply layer 4/4: hard link n points to nope, which is not in the image');
});

Lay('paths :: a symlinked parent is followed inside the tree; .. is refused', () => {
  const t = new RootfsTree();
  t.applyLayer(0, [h('usr/lib/', 'directory'), h('lib', 'symlink', { linkname: 'usr/lib' }), h('lib/x')], 'l1');
  assert.equal(names(t), ['/', 'lib', 'usr/', 'usr/lib/', 'usr/lib/x']);
  assert.is(message(() => t.applyLayer(1, [h('a/../../etc/passwd')], 'layer 2/2')),
    'cannot apply layer 2/2: entry "a/../../etc/passwd" leads outside the image');
});
Lay.run();

// --- auth ---
const Auth = suite('auth');

Auth('challenge :: Bearer parameters, quoted and escaped', () => {
  assert.equal(parseChallenge('Bearer realm="https://a/token",service="reg",scope="repository:x/y:pull"'),
    { scheme: 'bearer', params: { realm: 'https://a/token', service: 'reg', scope: 'repository:x/y:pull' } });
  assert.equal(parseChallenge('Basic realm="a \\"b\\""'), { scheme: 'basic', params: { realm: 'a "b"' } });
});

Auth('credentials :: environment first, then docker config auths', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ctr-auth-'));
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'reg.example:5000': { auth: Buffer.from('bob:p:w').toString('base64') } } }));
  assert.equal(credentialsFor('reg.example:5000', { DOCKER_CONFIG: dir }), { username: 'bob', password: 'p:w' });
  assert.equal(credentialsFor('reg.example:5000', { DOCKER_CONFIG: dir, CTR_REGISTRY_USER: 'al', CTR_REGISTRY_PASSWORD: 'x' }), { username: 'al', password: 'x' });
  assert.is(credentialsFor('other:1', { DOCKER_CONFIG: dir }), undefined);
});
Auth.run();

// --- cache ---
const Cache = suite('blob cache');

async function* chunks(...parts: string[]) { for (const p of parts) yield Buffer.from(p); }

Cache('store :: verified, renamed into place', async () => {
  const c = new BlobCache(await mkdtemp(join(tmpdir(), 'ctr-cache-')));
  const d = `sha256:${createHash('sha256').update('hello').digest('hex')}`;
  await c.store(d, 5, chunks('he', 'llo'), { what: 'w', label: 'blob' });
  assert.ok(await c.has(d, 5));
  assert.equal(await readdir(c.dir), [d.slice(7)]);
});

Cache('store :: a wrong digest or short body leaves nothing behind', async () => {
  const c = new BlobCache(await mkdtemp(join(tmpdir(), 'ctr-cache-')));
  const d = `sha256:${createHash('sha256').update('hello').digest('hex')}`;
  const fail = async (p: Promise<unknown>) => p.then(() => 'no error', (e: Error) => e.message);
  assert.is(await fail(c.store(d, 5, chunks('hellO'), { what: 'cannot pull X', label: 'layer 1/1' })),
    `cannot pull X: layer 1/1: digest mismatch: got sha256:${createHash('sha256').update('hellO').digest('hex')}, expected ${d}`);
  assert.is(await fail(c.store(d, 5, chunks('hel'), { what: 'cannot pull X', label: 'layer 1/1' })), 'cannot pull X: layer 1/1: got 3 of 5 bytes');
  assert.equal(await readdir(c.dir), []);
});
Cache.run();
