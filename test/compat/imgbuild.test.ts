// Ported from Apptainer's e2e/imgbuild/imgbuild.go (their cases, our tests): what a
// definition file's sections do, built by the unprivileged user. Each case names its
// Apptainer source. Two images are built once and shared.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SIFTOOL } from '../helpers/paths.js';
import { userTmp } from '../helpers/user.js';
import { apptainerBusyboxSif, ctrUser, ownLeftovers, run } from './fixture.js';

const ctx = { dir: '', sif: '', hostMark: '' };

const ENV_DEF = (hostMark: string) => `Bootstrap: busybox

%pre
    echo "pre ran" > ${hostMark}

%setup
    touch $APPTAINER_ROOTFS/rootfs-file
    touch $SINGULARITY_ROOTFS/legacy-rootfs-file

%post -c /bin/busybox sh
    echo 'test-label value' >> $APPTAINER_LABELS
    echo 'legacy-test-label legacy-value' >> $SINGULARITY_LABELS
    echo 'export TEST_ENV=value' >> $APPTAINER_ENVIRONMENT
    echo 'export LEGACY_TEST_ENV=legacy-value' >> $SINGULARITY_ENVIRONMENT
    tr '\\0' ' ' < /proc/$$/cmdline > /post-cmdline

%startscript
    echo "started $*"

%labels
    test-label from-labels-section
`;

const Build = suite('compat imgbuild');

Build.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-build-');
  ctx.hostMark = path.join(ctx.dir, 'pre-mark');
  fs.writeFileSync(path.join(ctx.dir, 'env.def'), ENV_DEF(ctx.hostMark));
  ctx.sif = path.join(ctx.dir, 'env.sif');
  const r = await ctrUser(['build', ctx.sif, path.join(ctx.dir, 'env.def')], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
});
Build.after.each(async () => assert.equal(await ownLeftovers(), [], 'processes left behind'));
Build.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

Build('e2e/imgbuild/imgbuild.go testBuildEnvironmentVariables :: %setup sees APPTAINER_ROOTFS and SINGULARITY_ROOTFS', async () => {
  const r = await ctrUser(['exec', ctx.sif, 'ls', '/rootfs-file', '/legacy-rootfs-file']);
  assert.is(r.stderr, '');
  assert.is(r.code, 0);
});

Build('e2e/imgbuild/imgbuild.go testBuildEnvironmentVariables :: %post appends to $APPTAINER_ENVIRONMENT and $SINGULARITY_ENVIRONMENT', async () => {
  const r = await ctrUser(['exec', ctx.sif, 'env']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^TEST_ENV=value$/m);
  assert.match(r.stdout, /^LEGACY_TEST_ENV=legacy-value$/m);
  const f = await ctrUser(['exec', ctx.sif, 'cat', '/.singularity.d/env/91-environment.sh']);
  assert.is(f.stdout, 'export TEST_ENV=value\nexport LEGACY_TEST_ENV=legacy-value\n');
});

Build('e2e/imgbuild/imgbuild.go testBuildEnvironmentVariables :: labels from $APPTAINER_LABELS, over %labels, in labels.json and the SIF', async () => {
  const r = await ctrUser(['exec', ctx.sif, 'cat', '/.singularity.d/labels.json']);
  const labels = JSON.parse(r.stdout);
  assert.is(labels['test-label'], 'value');
  assert.is(labels['legacy-test-label'], 'legacy-value');
  const gone = await ctrUser(['exec', ctx.sif, 'test', '-e', '/.build.labels']);
  assert.is(gone.code, 1, 'the labels file is not left in the image');
  const list = await run(SIFTOOL, ['list', ctx.sif]);
  const id = /^(\d+)\s*\|.*JSON\.Labels/m.exec(list.stdout)?.[1];
  assert.ok(id, list.stdout);
  const dumped = JSON.parse((await run(SIFTOOL, ['dump', id!, ctx.sif])).stdout);
  assert.is(dumped['test-label'], 'value');
});

Build('e2e/imgbuild/imgbuild.go buildCustomShebang :: %post -c SHELL runs the script under that shell', async () => {
  const r = await ctrUser(['exec', ctx.sif, 'cat', '/post-cmdline']);
  assert.is(r.stdout, '/bin/busybox sh /.post.script ');
  const gone = await ctrUser(['exec', ctx.sif, 'test', '-e', '/.post.script']);
  assert.is(gone.code, 1, 'the script file is removed after %post');
});

Build('e2e/imgbuild/imgbuild.go buildDefinition :: %startscript is stored as /.singularity.d/startscript', async () => {
  const r = await ctrUser(['exec', ctx.sif, 'sh', '-c', 'test -x /.singularity.d/startscript && cat /.singularity.d/startscript']);
  assert.is(r.stdout, '#!/bin/sh\n\n    echo "started $*"\n');
});

Build('internal/pkg/build/stage.go runHostScript :: %pre runs on the host before the bootstrap', () => {
  assert.is(fs.readFileSync(ctx.hostMark, 'utf8'), 'pre ran\n');
});

Build('e2e/imgbuild/imgbuild.go buildLocalImage :: a SIF as the build source (ctr build new.sif old.sif)', async () => {
  const src = await apptainerBusyboxSif();
  const out = path.join(ctx.dir, 'copy.sif');
  const r = await ctrUser(['build', out, src], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  const e = await ctrUser(['exec', out, 'cat', '/.singularity.d/Singularity']);
  assert.is(e.stdout, 'BootStrap: docker\nFrom: busybox:1.33.1\n');
});

Build('e2e/imgbuild/imgbuild.go buildLocalImage :: Bootstrap: localimage from an Apptainer SIF', async () => {
  const def = path.join(ctx.dir, 'local.def');
  fs.writeFileSync(def, `Bootstrap: localimage\nFrom: ${await apptainerBusyboxSif()}\n\n%post\n    echo local > /local-mark\n`);
  const out = path.join(ctx.dir, 'local.sif');
  const r = await ctrUser(['build', out, def], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  const e = await ctrUser(['exec', out, 'cat', '/local-mark']);
  assert.is(e.stdout, 'local\n');
});

Build('e2e/imgbuild/imgbuild.go buildMultiStageDefinition :: refused with one line (documented difference)', async () => {
  const def = path.join(ctx.dir, 'multi.def');
  fs.writeFileSync(def, 'Bootstrap: busybox\nStage: one\n\n%post\n    touch /one\n\nBootstrap: busybox\nStage: two\n\n%files from one\n    /one /one\n');
  const r = await ctrUser(['build', path.join(ctx.dir, 'multi.sif'), def], {}, ctx.dir);
  assert.is(r.code, 255);
  assert.is(r.stderr, `ctr: error: definition file ${def}: line 7: multi-stage definitions (a second "Bootstrap:") are not supported; ` +
    'build the first stage to a SIF and start the next from it with "Bootstrap: localimage"\n');
  assert.not.ok(fs.existsSync(path.join(ctx.dir, 'multi.sif')));
});

Build.run();
