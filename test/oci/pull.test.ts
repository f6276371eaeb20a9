// ctr pull against a real registry (docker-registry on 127.0.0.1), as the test user, and the
// pulled images run with ctr: files after whiteouts/opaque dirs/hard links, ENV, runscript,
// WORKDIR, labels, ownership; OCI and Docker v2s2 manifests, zstd layers, multi-arch
// indexes, the blob cache, and the oci:, oci-archive: and docker-archive: sources.
import { execa } from 'execa';
import { chmod, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openImage } from '../../src/image/open.js';
import { SquashfsReader } from '../../src/squashfs/read.js';
import { ctr, userTmp } from '../helpers/user.js';
import { push, scratch, startProxy, startRegistry, testLayout, type Registry } from './fixtures.js';

const Pull = suite('ctr pull');
let reg: Registry, layout: string, work: string, zstdLayout: string;
let n = 0;
const env = () => ({ XDG_CACHE_HOME: join(work, 'cache') });
const out = () => join(work, `img${n++}.sif`);
/** ctr pull -q: these cases look at what is pulled; the summary line has its own case. */
const pull = (args: string[], extra: Record<string, string> = {}) => ctr(['pull', '-q', ...args], { env: { ...env(), ...extra } });
const SUMMARY = (sif: string) => new RegExp(`^ctr: wrote ${sif.replace(/[.]/g, '\\.')} \\(\\d+\\.\\d (KiB|MiB)\\) in \\d+\\.\\d s\n$`);

Pull.before(async () => {
  layout = await testLayout();
  work = await userTmp('ctr-pull-');
  reg = await startRegistry();
  const tmp = await scratch('ctr-zstd-');
  zstdLayout = join(tmp, 'layout');
  await execa('skopeo', ['copy', '--quiet', '--dest-compress', '--dest-compress-format', 'zstd', `oci:${layout}:test`, `oci:${zstdLayout}:test`]);
  await execa('chmod', ['-R', 'a+rX', tmp]);
  await push(layout, 'test', `${reg.host}/busybox:oci`);
  await push(layout, 'test', `${reg.host}/busybox:v2s2`, ['--format', 'v2s2']);
  await push(zstdLayout, 'test', `${reg.host}/busybox:zstd`);
  await execa('skopeo', ['copy', '--quiet', '--all', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${reg.host}/busybox:multi`]);
});
Pull.after(async () => { await reg.stop(); });

const TREE = 'ls /data /opq; cat /data/replace.txt /data/link; stat -c "%h" /data/orig; [ "$(stat -c %i /data/orig)" = "$(stat -c %i /data/link)" ] && echo same inode';
const TREE_OUT = '/data:\nkeep.txt\nlink\norig\nowned\nreplace.txt\n\n/opq:\nc.txt\nv2\nlinked\n2\nsame inode\n';

for (const tag of ['oci', 'v2s2', 'zstd']) {
  Pull(`registry :: ${tag} image: whiteouts, replaced file, opaque dir, hard link across layers`, async () => {
    const sif = out();
    // Not a terminal, not -q: one final line, what was written, its size, how long.
    const r = await ctr(['pull', '--no-https', sif, `docker://${reg.host}/busybox:${tag}`], { env: env() });
    assert.match(String(r.stderr), SUMMARY(sif));
    assert.is(r.exitCode, 0);
    const x = await ctr(['exec', sif, 'sh', '-c', TREE]);
    assert.is(x.stderr, '');
    assert.is(x.stdout, TREE_OUT);
  });
}

Pull('runscript :: ENTRYPOINT + CMD in WORKDIR; arguments replace CMD', async () => {
  const sif = out();
  assert.is((await pull(['--no-https', sif, `docker://${reg.host}/busybox:oci`])).exitCode, 0);
  assert.is((await ctr(['run', sif])).stdout, "/work: default it's\n");
  assert.is((await ctr(['run', sif, 'a b', '$c'])).stdout, '/work: a b $c\n');
});

Pull('env :: ENV reaches the container, quoted exactly', async () => {
  const sif = out();
  await pull(['--no-https', sif, `docker://${reg.host}/busybox:oci`]);
  const r = await ctr(['exec', sif, 'sh', '-c', 'printf "%s|%s\\n" "$GREETING" "$QUOTE"']);
  assert.is(r.stdout, 'hello world|it\'s "q" $HOME \\n\n');
});

Pull('ownership :: everything owned by root, setuid kept as data; labels', async () => {
  const sif = out();
  await pull(['--no-https', sif, `docker://${reg.host}/busybox:oci`]);
  const r = await ctr(['exec', '--fakeroot', sif, 'stat', '-c', '%n %u:%g %a', '/data/owned', '/bin/suid-busybox']);
  assert.is(r.stdout, '/data/owned 0:0 644\n/bin/suid-busybox 0:0 4755\n');
  const l = await ctr(['exec', sif, 'cat', '/.singularity.d/labels.json']);
  assert.is(l.stdout, '{\n\t"org.example.team": "hpc",\n\t"version": "1.2"\n}\n');
  const i = await ctr(['inspect', '--json', sif]);
  assert.equal(JSON.parse(String(i.stdout)).data.attributes.labels, { 'org.example.team': 'hpc', version: '1.2' });
});

async function readImageFile(sif: string, arch: string, path: string): Promise<string> {
  const img = await openImage(sif, arch);
  const r = SquashfsReader.open(img.path, { offset: img.offset });
  try {
    return r.readFile(path).toString();
  } finally {
    r.close();
  }
}

Pull('platform :: --arch picks from an index; the SIF says which', async () => {
  for (const arch of ['amd64', 'arm64']) {
    const sif = out();
    const r = await pull(['--no-https', '--arch', arch, sif, `docker://${reg.host}/busybox:multi`]);
    assert.is(r.stderr, '');
    // openImage checks the SIF's architecture against the one given.
    assert.is(await readImageFile(sif, arch, '/etc/arch'), `${arch}\n`);
  }
});

Pull('platform :: none for the requested one: the available ones are listed', async () => {
  const sif = out();
  const r = await pull(['--no-https', '--arch', 's390x', sif, `docker://${reg.host}/busybox:multi`]);
  assert.is(r.stderr, `ctr: error: cannot pull docker://${reg.host}/busybox:multi: no image for platform linux/s390x: available: linux/amd64, linux/arm64\nctr: hint: choose one with --arch\n`);
  assert.is(r.exitCode, 255);
  assert.equal((await readdir(work)).filter((f) => f.includes(`img${n - 1}`)), []);
});

Pull('cache :: a second pull downloads no blob', async () => {
  const proxy = await startProxy(reg.host, {});
  try {
    const cache = { XDG_CACHE_HOME: join(await userTmp('ctr-cache-'), 'c') };
    assert.is((await pull(['--no-https', out(), `docker://${proxy.host}/busybox:v2s2`], cache)).exitCode, 0);
    const first = proxy.blobRequests;
    assert.ok(first >= 3, `blob requests: ${first}`); // the config and 2 layers (more if a kept-alive connection was reset)
    const sif = out();
    assert.is((await pull(['--no-https', sif, `docker://${proxy.host}/busybox:v2s2`], cache)).exitCode, 0);
    assert.is(proxy.blobRequests, first);
    assert.is((await ctr(['exec', sif, 'cat', '/data/replace.txt'])).stdout, 'v2\n');
  } finally {
    await proxy.stop();
  }
});

Pull('sources :: oci:DIR:TAG, oci-archive: and docker-archive:', async () => {
  const tmp = await scratch('ctr-arch-');
  await execa('skopeo', ['copy', '--quiet', `oci:${layout}:test`, `oci-archive:${tmp}/img.tar`]);
  await execa('skopeo', ['copy', '--quiet', `oci:${layout}:test`, `docker-archive:${tmp}/docker.tar:busybox:test`]);
  await chmod(`${tmp}/img.tar`, 0o644);
  await chmod(`${tmp}/docker.tar`, 0o644);
  for (const ref of [`oci:${layout}:test`, `oci:${zstdLayout}:test`, `oci-archive:${tmp}/img.tar`, `docker-archive:${tmp}/docker.tar`]) {
    const sif = out();
    const r = await pull([sif, ref]);
    assert.is(r.stderr, '', ref);
    const x = await ctr(['exec', sif, 'sh', '-c', TREE]);
    assert.is(x.stdout, TREE_OUT, ref);
    assert.is((await ctr(['run', sif, 'x'])).stdout, '/work: x\n', ref);
  }
});

Pull('build :: ctr build OUT docker://REF is a pull', async () => {
  const sif = out();
  const r = await ctr(['build', '--no-https', sif, `docker://${reg.host}/busybox:oci`], { env: env() });
  assert.match(String(r.stderr), SUMMARY(sif));
  assert.is(r.exitCode, 0);
  assert.is((await ctr(['exec', sif, 'sh', '-c', TREE])).stdout, TREE_OUT);
});

Pull('build :: Bootstrap: docker with %post and %runscript, built by the user', async () => {
  const def = join(work, 'docker.def');
  await execa('runuser', ['-u', 'ctrtest', '--', 'sh', '-c', `cat > ${def}`], {
    input: `Bootstrap: docker\nFrom: ${reg.host}/busybox:oci\n\n%post\n    echo "post ran" > /data/post.txt\n\n%runscript\n    cat /data/post.txt /data/keep.txt\n`,
  });
  const sif = out();
  const r = await ctr(['build', '-q', '--no-https', sif, def], { env: env(), cwd: work });
  assert.is(r.stderr, '');
  assert.is(r.exitCode, 0);
  const run = await ctr(['run', sif]);
  assert.is(run.stderr, '');
  assert.match(String(run.stdout), /^post ran\n/);
  // The image's own ENV (from its config) is still there.
  assert.is((await ctr(['exec', sif, 'sh', '-c', 'echo "$GREETING"'])).exitCode, 0);
});

Pull('errors :: unknown tag and unknown repository: manifest unknown', async () => {
  for (const ref of [`docker://${reg.host}/busybox:nope`, `docker://${reg.host}/nothere:x`]) {
    const sif = out();
    const r = await pull(['--no-https', sif, ref]);
    assert.is(r.stderr, `ctr: error: cannot pull ${ref}: manifest unknown\n`);
    assert.is(r.exitCode, 255);
  }
});

Pull('errors :: OUT exists without --force; --force overwrites', async () => {
  const sif = out();
  const ref = `docker://${reg.host}/busybox:oci`;
  assert.is((await pull(['--no-https', sif, ref])).exitCode, 0);
  const r = await pull(['--no-https', sif, ref]);
  assert.is(r.stderr, `ctr: error: output ${sif}: already exists (use --force to overwrite)\n`);
  assert.is((await pull(['--no-https', '--force', sif, ref])).exitCode, 0);
});

Pull.run();
