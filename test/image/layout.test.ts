// The parts every image holds whoever made it (image/layout.ts), and the one table of
// architectures that SIF headers, OCI platforms and the host's names go through (arch.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { archCode, archFromCode, archVariant, goArchFromNode, normalizeArch } from '../../src/arch.js';
import { environmentScript, singularityDir, STANDARD_DIRS } from '../../src/image/layout.js';
import { hostPlatform, parsePlatform } from '../../src/oci/manifest.js';

const Layout = suite('image layout');

Layout('singularity.d :: a script without #! runs under /bin/sh; one with its own stays as written', () => {
  const e = singularityDir({ runscript: 'echo hi\n', test: '#!/bin/bash\ntrue\n', labels: { a: 'b' } });
  const byPath = new Map(e.map((x) => [x.path, x]));
  assert.equal(byPath.get('.singularity.d/runscript'), { path: '.singularity.d/runscript', type: 'file', mode: 0o755, content: '#!/bin/sh\n\necho hi\n' });
  assert.equal(byPath.get('.singularity.d/test'), { path: '.singularity.d/test', type: 'file', mode: 0o755, content: '#!/bin/bash\ntrue\n' });
  assert.equal(byPath.get('.singularity.d/labels.json'), { path: '.singularity.d/labels.json', type: 'file', mode: 0o644, content: '{\n\t"a": "b"\n}\n' });
  assert.equal(byPath.get('singularity'), { path: 'singularity', type: 'symlink', target: '.singularity.d/runscript' });
  assert.not.ok(byPath.has('environment'), 'no /environment link to a script that is not there');
  assert.equal(e.slice(0, 4).map((x) => x.path), ['.singularity.d', '.singularity.d/env', '.singularity.d/actions', '.singularity.d/libs'], 'directories first');
});

Layout('singularity.d :: %environment as Apptainer stores it, and /environment points at it', () => {
  const e = singularityDir({ env: { '90-environment.sh': environmentScript('export A=1\n') }, labels: {} });
  assert.equal(e.find((x) => x.path === '.singularity.d/env/90-environment.sh'),
    { path: '.singularity.d/env/90-environment.sh', type: 'file', mode: 0o755, content: '#!/bin/sh\n# Custom environment shell code should follow\n\nexport A=1\n' });
  assert.equal(e.find((x) => x.path === 'environment'), { path: 'environment', type: 'symlink', target: '.singularity.d/env/90-environment.sh' });
});

Layout('mount points :: /tmp and /var/tmp sticky, /root private', () => {
  const m = new Map(STANDARD_DIRS);
  assert.is(m.get('tmp'), 0o1777);
  assert.is(m.get('var/tmp'), 0o1777);
  assert.is(m.get('root'), 0o700);
  for (const d of ['proc', 'sys', 'dev', 'home', 'etc']) assert.ok(m.has(d), d);
});

Layout.run();

const Arch = suite('architectures');

Arch('one table :: every Node architecture names the same Go one for SIF and for OCI', () => {
  for (const node of ['x64', 'ia32', 'arm', 'arm64', 'ppc64', 's390x', 'riscv64', 'mips', 'mipsel', 'mips64', 'mips64el']) {
    const go = goArchFromNode(node)!;
    assert.ok(go, node);
    assert.is(hostPlatform(node, 'LE').architecture, go, node);
    assert.is(archFromCode(archCode(go)!), go, `${node}: SIF code round trip`);
  }
});

Arch('ppc64 :: Node says ppc64 on both endiannesses; the host\'s decides', () => {
  assert.is(goArchFromNode('ppc64', 'LE'), 'ppc64le');
  assert.is(goArchFromNode('ppc64', 'BE'), 'ppc64');
  assert.is(archCode('ppc64le'), '06');
  assert.is(archCode('ppc64'), '05');
});

Arch('names users type :: uname -m and Go names are accepted, with the usual variant', () => {
  assert.is(normalizeArch('x86_64'), 'amd64');
  assert.is(normalizeArch('aarch64'), 'arm64');
  assert.is(normalizeArch('amd64'), 'amd64');
  assert.is(normalizeArch('vax'), undefined);
  assert.equal(parsePlatform('aarch64'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.equal(parsePlatform('arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v6' });
  assert.is(archVariant('amd64'), undefined);
  assert.is(archFromCode('99'), 'unknown');
});

Arch.run();
