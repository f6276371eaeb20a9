// What the OCI tests pull from: test images built rootless with umoci from the busybox tree
// (cached between runs), a real registry (Debian's docker-registry) on 127.0.0.1 with our own
// config, optionally with TLS (a CA made with openssl) or htpasswd auth, and a small proxy of
// our own in front of it that can demand Bearer tokens (with its own token endpoint), cut
// blob downloads short, or serve a broken manifest.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { access, chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tarStream from 'tar-stream';
import { makeBusyboxTree } from '../helpers/images.js';
import { CACHE } from '../helpers/paths.js';

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export async function scratch(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  await chmod(d, 0o755);
  return d;
}

// --- images ---

interface TarItem { name: string; type?: 'file' | 'directory' | 'link'; body?: string; linkname?: string; mode?: number; uid?: number }

async function layerTar(path: string, items: TarItem[]): Promise<void> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const it of items) {
    const type = it.type ?? 'file';
    await new Promise<void>((res, rej) => pack.entry({
      name: it.name, type, mode: it.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: it.uid ?? 0, gid: it.uid ?? 0,
      mtime: new Date(1700000000 * 1000), ...(it.linkname ? { linkname: it.linkname } : {}),
    }, type === 'file' ? it.body ?? '' : '', (err) => (err ? rej(err) : res())));
  }
  pack.finalize();
  await done;
  await writeFile(path, Buffer.concat(chunks));
}

const umoci = (args: string[]) => execa('umoci', args);

/**
 * An OCI layout with tags:
 *   test      busybox tree + files (layer 1, umoci repack), then a crafted layer 2 with a
 *             whiteout, a replaced file, an opaque directory, a hard link to a layer-1 file
 *             and a file owned by uid 1234; ENTRYPOINT/CMD/ENV/WORKDIR/labels set
 *   amd64, arm64   test + a layer with /etc/arch, configs for each architecture
 *   multi     an image index of amd64 and arm64
 */
export async function testLayout(): Promise<string> {
  const out = join(CACHE, 'oci-test-layout-v4');
  try {
    await access(out);
    return out;
  } catch { /* build */ }
  await mkdir(CACHE, { recursive: true });
  const work = await scratch('ctr-oci-build-');
  const L = join(work, 'layout');
  try {
    await umoci(['init', '--layout', L]);
    await umoci(['new', '--image', `${L}:base`]);
    const B = join(work, 'bundle');
    await umoci(['unpack', '--rootless', '--image', `${L}:base`, B]);
    const root = join(B, 'rootfs');
    await makeBusyboxTree(root);
    await mkdir(join(root, 'data'), { recursive: true });
    await mkdir(join(root, 'opq'), { recursive: true });
    for (const [f, body] of [['data/keep.txt', 'keep\n'], ['data/old.txt', 'old\n'], ['data/replace.txt', 'v1\n'],
      ['data/orig', 'linked\n'], ['opq/a.txt', 'a\n'], ['opq/b.txt', 'b\n']]) await writeFile(join(root, f), body);
    await umoci(['repack', '--image', `${L}:l1`, B]);
    const t2 = join(work, 'layer2.tar');
    await layerTar(t2, [
      { name: 'data/.wh.old.txt' },
      { name: 'data/replace.txt', body: 'v2\n' },
      { name: 'opq/', type: 'directory' },
      { name: 'opq/.wh..wh..opq' },
      { name: 'opq/c.txt', body: 'c\n' },
      { name: 'data/link', type: 'link', linkname: 'data/orig' },
      { name: 'data/owned', body: 'owned\n', uid: 1234 },
    ]);
    await umoci(['raw', 'add-layer', '--image', `${L}:l1`, '--tag', 'l2', t2]);
    await umoci(['config', '--image', `${L}:l2`, '--tag', 'test',
      '--config.env', 'PATH=/usr/local/bin:/bin', '--config.env', 'GREETING=hello world',
      '--config.env', `QUOTE=it's "q" $HOME \\n`,
      '--config.entrypoint', '/bin/sh', '--config.entrypoint', '-c', '--config.entrypoint', 'echo "$(pwd): $*"', '--config.entrypoint', 'ep',
      '--config.cmd', 'default', '--config.cmd', "it's",
      '--config.workingdir', '/work', '--config.label', 'org.example.team=hpc', '--config.label', 'version=1.2']);
    for (const arch of ['amd64', 'arm64']) {
      const t = join(work, `${arch}.tar`);
      await layerTar(t, [{ name: 'etc/arch', body: `${arch}\n` }]);
      await umoci(['raw', 'add-layer', '--image', `${L}:test`, '--tag', `${arch}-l`, t]);
      await umoci(['config', '--image', `${L}:${arch}-l`, '--tag', arch, '--architecture', arch]);
    }
    await addIndex(L, 'multi', ['amd64', 'arm64']);
    await execa('chmod', ['-R', 'a+rX', L]); // the test user reads it (oci: sources)
    await rename(L, `${out}.tmp${process.pid}`);
    await rename(`${out}.tmp${process.pid}`, out);
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function addIndex(layout: string, tag: string, from: string[]): Promise<void> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  const manifests = from.map((t) => {
    const d = index.manifests.find((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === t);
    return { mediaType: d.mediaType, digest: d.digest, size: d.size, platform: { os: 'linux', architecture: t } };
  });
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  const hex = createHash('sha256').update(body).digest('hex');
  await writeFile(join(layout, 'blobs/sha256', hex), body);
  index.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${hex}`, size: body.length,
    annotations: { 'org.opencontainers.image.ref.name': tag } });
  await writeFile(join(layout, 'index.json'), JSON.stringify(index));
}

/** A small image with a layer of its own (unique content), for tests that corrupt blobs. */
export async function uniqueLayout(name: string): Promise<string> {
  const dir = await scratch('ctr-oci-uniq-');
  const L = join(dir, 'layout');
  await umoci(['init', '--layout', L]);
  await umoci(['new', '--image', `${L}:base`]);
  const t = join(dir, 'l.tar');
  await layerTar(t, [{ name: 'unique', body: `${name} ${process.pid} ${Date.now()} ${Math.random()}\n`.repeat(1000) }]);
  await umoci(['raw', 'add-layer', '--image', `${L}:base`, '--tag', 'latest', t]);
  return L;
}

export async function push(layout: string, tag: string, dest: string, extra: string[] = []): Promise<void> {
  await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', ...extra, `oci:${layout}:${tag}`, `docker://${dest}`]);
}

// --- registry ---

export interface Registry { host: string; port: number; storage: string; stop: () => Promise<void> }

export async function startRegistry(opts: { tls?: { cert: string; key: string }; htpasswd?: string } = {}): Promise<Registry> {
  const dir = await scratch('ctr-registry-');
  const port = await freePort();
  const storage = join(dir, 'storage');
  const lines = [
    'version: 0.1',
    'log: {level: error, accesslog: {disabled: true}}',
    `storage: {filesystem: {rootdirectory: ${storage}}, delete: {enabled: true}}`,
    `http: {addr: "127.0.0.1:${port}", secret: test${opts.tls ? `, tls: {certificate: ${opts.tls.cert}, key: ${opts.tls.key}}` : ''}}`,
  ];
  if (opts.htpasswd) lines.push(`auth: {htpasswd: {realm: ctr-test, path: ${opts.htpasswd}}}`);
  await writeFile(join(dir, 'config.yml'), lines.join('\n') + '\n');
  const proc = execa('docker-registry', ['serve', join(dir, 'config.yml')], { reject: false, all: true });
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/v2/`;
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) break;
    if (i > 100 || proc.exitCode !== null) throw new Error(`docker-registry did not start on ${url}: ${(await proc).all}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `127.0.0.1:${port}`, port, storage,
    stop: async () => { proc.kill('SIGTERM'); await proc; await rm(dir, { recursive: true, force: true }); },
  };
}

/** A CA and a server certificate for 127.0.0.1, made with openssl. */
export async function makeTls(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const p = (f: string) => join(dir, f);
  const ossl = (args: string[]) => execa('openssl', args);
  await ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=ctr test CA', '-keyout', p('ca.key'), '-out', p('ca.pem')]);
  await ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', p('server.key'), '-out', p('server.csr')]);
  await writeFile(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await ossl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p('ext.cnf'), '-out', p('server.pem')]);
  for (const f of ['ca.pem', 'server.pem', 'server.key']) await chmod(p(f), 0o644);
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

export async function makeHtpasswd(path: string, user: string, password: string): Promise<void> {
  await execa('htpasswd', ['-Bbc', path, user, password]);
}

/** The storage file of a blob in docker-registry's file system driver. */
export function blobData(storage: string, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return join(storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

// --- the proxy ---

export interface ProxyOptions {
  /** Demand Bearer tokens, issued by /token to these Basic credentials. */
  bearer?: { user: string; password: string };
  /** Cut blob responses longer than `bytes` after `bytes` bytes, `times` times (Infinity: always). */
  cut?: { bytes: number; times: number };
  /** Serve this body for every manifest request. */
  manifest?: { body: string; type: string };
}

export interface Proxy { host: string; blobRequests: number; tokenRequests: number; stop: () => Promise<void> }

export async function startProxy(backend: string, opts: ProxyOptions): Promise<Proxy> {
  const port = await freePort();
  const token = `tok-${Math.random().toString(36).slice(2)}`;
  const state: Proxy = { host: `127.0.0.1:${port}`, blobRequests: 0, tokenRequests: 0, stop: async () => {} };
  let cuts = 0;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (opts.bearer && url.startsWith('/token')) {
      state.tokenRequests++;
      const want = `Basic ${Buffer.from(`${opts.bearer.user}:${opts.bearer.password}`).toString('base64')}`;
      if (req.headers.authorization !== want) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
      return;
    }
    if (opts.bearer && req.headers.authorization !== `Bearer ${token}`) {
      const repo = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(url)?.[1] ?? '';
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="ctr-test",scope="repository:${repo}:pull"`,
      }).end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    if (opts.manifest && url.includes('/manifests/')) {
      res.writeHead(200, { 'content-type': opts.manifest.type }).end(opts.manifest.body);
      return;
    }
    const isBlob = url.includes('/blobs/');
    if (isBlob) state.blobRequests++;
    const up = http.request({ host: '127.0.0.1', port: Number(backend.split(':')[1]), path: url, method: req.method, headers: { ...req.headers, host: backend } }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      const big = Number(ur.headers['content-length'] ?? 0) > (opts.cut?.bytes ?? Infinity);
      if (isBlob && opts.cut && big && cuts < opts.cut.times && (ur.statusCode ?? 0) === 200) {
        cuts++;
        let sent = 0;
        ur.on('data', (c: Buffer) => {
          if (sent >= opts.cut!.bytes) return;
          const part = c.subarray(0, opts.cut!.bytes - sent);
          sent += part.length;
          res.write(part);
          if (sent >= opts.cut!.bytes) { ur.destroy(); res.socket?.destroy(); }
        });
        return;
      }
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  state.stop = async () => { server.closeAllConnections(); await new Promise((r) => server.close(r)); };
  return state;
}
