// ctr build from a definition file, as the unprivileged user: every section takes
// effect, the reference siftool describes the image, ctr run/exec/inspect show it, and a
// rebuild under SOURCE_DATE_EPOCH is byte-identical. One image, shared by the cases.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO, SIFTOOL } from '../helpers/paths.js';
import { busyboxSif } from '../helpers/images.js';
import { userTmp } from '../helpers/user.js';
import { EPOCH, ctrUser, ownLeftovers, run } from './fixture.js';

const ctx = { dir: '', def: '', sif: '', text: '' };
const SDE = { SOURCE_DATE_EPOCH: String(EPOCH) };
const BUILD_DATE = new Date(EPOCH * 1000).toISOString();

function definition(dir: string): string {
  return `Bootstrap: busybox

%files
    ${dir}/payload.txt /opt/payload.txt
    ${dir}/remove-me /opt/remove-me

%post
    echo "changed by %post" > /opt/post-marker
    rm /opt/remove-me
    chmod 0600 /opt/payload.txt

%environment
    export BUILD_VAR="from %environment"

%runscript
    echo "runscript: $BUILD_VAR: $*"

%labels
    Author tester
    Version 1.2

%help
    Help for the test image.

%test
    test -f /opt/post-marker
`;
}

const Def = suite('ctr build definition file');

Def.before(async () => {
  ctx.dir = await userTmp('ctr-t-build-def-');
  fs.writeFileSync(path.join(ctx.dir, 'payload.txt'), 'payload\n');
  fs.writeFileSync(path.join(ctx.dir, 'remove-me'), 'gone after %post\n');
  fs.chmodSync(path.join(ctx.dir, 'payload.txt'), 0o644);
  fs.chmodSync(path.join(ctx.dir, 'remove-me'), 0o644);
  ctx.text = definition(ctx.dir);
  ctx.def = path.join(ctx.dir, 'test.def');
  fs.writeFileSync(ctx.def, ctx.text);
  ctx.sif = path.join(ctx.dir, 'test.sif');
  const r = await ctrUser(['build', '-q', ctx.sif, ctx.def], SDE, ctx.dir);
  assert.is(r.stderr, '');
  assert.is(r.code, 0);
});
Def.after.each(async () => {
  const left = await ownLeftovers();
  assert.equal(left, [], 'processes left behind');
});
Def.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

Def('sections :: %files, %post and %test took effect, seen with ctr exec', async () => {
  const r = await ctrUser(['exec', ctx.sif, 'sh', '-c',
    'cat /opt/post-marker; test -e /opt/remove-me || echo removed; stat -c %a /opt/payload.txt; test -x /.singularity.d/test && echo test kept']);
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'changed by %post\nremoved\n600\ntest kept\n');
});

Def('sections :: ctr run runs %runscript with %environment applied', async () => {
  const r = await ctrUser(['run', ctx.sif, 'a', 'b c']);
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'runscript: from %environment: a b c\n');
  assert.is(r.code, 0);
});

Def('sections :: %environment reaches ctr exec', async () => {
  const r = await ctrUser(['exec', ctx.sif, 'sh', '-c', 'echo "$BUILD_VAR"']);
  assert.is(r.stdout, 'from %environment\n');
});

Def('siftool :: list shows the definition file, the labels and the partition', async () => {
  const r = await run(SIFTOOL, ['list', ctx.sif]);
  assert.is(r.code, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\d/.test(l)).map((l) => l.split('|').map((f) => f.trim()));
  assert.equal(rows.map((f) => [f[0], f[1], f[2], f[4]]), [
    ['1', '1', 'NONE', 'Def.FILE'],
    ['2', '1', 'NONE', 'JSON.Labels'],
    ['3', '1', 'NONE', 'FS (Squashfs/*System/amd64)'],
  ]);
  const end = Number(rows[2][3].split('-')[1]);
  assert.is(end, fs.statSync(ctx.sif).size);
});

Def('siftool :: info describes the partition; header has the image arch and build time', async () => {
  const info = await run(SIFTOOL, ['info', '3', ctx.sif]);
  const field = (name: string) => new RegExp(`^\\s*${name}:\\s+(.*)$`, 'm').exec(info.stdout)?.[1];
  assert.is(field('Data Type'), 'FS');
  assert.is(field('Filesystem Type'), 'Squashfs');
  assert.is(field('Partition Type'), '*System');
  assert.is(field('Architecture'), 'amd64');
  assert.is(field('Created At'), '2023-11-14 22:13:20 +0000 UTC');
  const header = await run(SIFTOOL, ['header', ctx.sif]);
  assert.match(header.stdout, /^Primary Architecture: amd64$/m);
  assert.match(header.stdout, /^ID:\s+00000000-0000-4000-8000-00006553f100$/m);
});

Def('siftool :: dump gives the definition file and the labels as built', async () => {
  const def = await run(SIFTOOL, ['dump', '1', ctx.sif]);
  assert.is(def.stdout, ctx.text);
  const labels = await run(SIFTOOL, ['dump', '2', ctx.sif]);
  assert.equal(JSON.parse(labels.stdout), {
    Author: 'tester', Version: '1.2',
    'org.label-schema.build-date': BUILD_DATE,
    'org.label-schema.schema-version': '1.0',
    'org.label-schema.usage.singularity.deffile.bootstrap': 'busybox',
  });
});

Def('inspect :: --all on ctr\'s image: Apptainer\'s attributes from the definition, and the objects', async () => {
  const r = await ctrUser(['inspect', '--all', ctx.sif]);
  assert.is(r.stderr, '');
  const j = JSON.parse(r.stdout);
  assert.is(j.type, 'container');
  assert.is(j.image.kind, 'sif');
  assert.is(j.image.header.arch, 'amd64');
  assert.is(j.image.header.created, BUILD_DATE);
  assert.equal(j.image.objects.map((o: { typeName: string }) => o.typeName), ['Def.File', 'JSON.Labels', 'Partition']);
  assert.is(j.image.objects[2].partition.fsTypeName, 'Squashfs');
  assert.is(j.image.squashfs.compressor, 'zstd');
  const a = j.data.attributes;
  assert.is(a.labels.Author, 'tester');
  assert.is(a.labels['org.label-schema.build-date'], BUILD_DATE);
  assert.is(a.environment['/.singularity.d/env/90-environment.sh'], '#!/bin/sh\n# Custom environment shell code should follow\n\n    export BUILD_VAR="from %environment"');
  assert.is(a.runscript, '#!/bin/sh\n\n    echo "runscript: $BUILD_VAR: $*"');
  assert.is(a.helpfile, '    Help for the test image.');
  assert.is(a.test, '#!/bin/sh\n\n    test -f /opt/post-marker');
  assert.is(a.deffile, ctx.text.replace(/\n+$/, ''));
});

Def('inspect :: text on ctr\'s image: the labels by default, each section on demand', async () => {
  const r = await ctrUser(['inspect', ctx.sif]);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  for (const l of ['Author: tester', 'Version: 1.2', `org.label-schema.build-date: ${BUILD_DATE}`]) assert.ok(lines.includes(l), l);
  const img = await ctrUser(['inspect', '--image', ctx.sif]);
  assert.ok(img.stdout.split('\n').includes(`Created: ${BUILD_DATE}`));
  assert.match(img.stdout, /^ {2}3 {3}\|1 {5}\|NONE \|\d+-\d+ +\|Partition \(Squashfs\/Primary System\/amd64\)$/m);
  assert.is((await ctrUser(['inspect', '--deffile', ctx.sif])).stdout, ctx.text);
});

Def('inspect :: an image from the reference siftool (no definition, no labels objects)', async () => {
  const sif = await busyboxSif();
  const j = JSON.parse((await ctrUser(['inspect', '--all', sif])).stdout);
  assert.is(j.image.kind, 'sif');
  assert.equal(j.image.objects.map((o: { typeName: string; partition?: { partTypeName: string } }) => [o.typeName, o.partition?.partTypeName]),
    [['Partition', 'Primary System']]);
  assert.is(j.data.attributes.deffile, undefined);
  assert.is(j.data.attributes.labels, undefined);
  assert.is(j.data.attributes.runscript, '#!/bin/sh\necho "runscript: $*"');
  assert.is(j.data.attributes.environment['/.singularity.d/env/90-environment.sh'], 'export IMAGE_VAR="from the image"\nexport PATH="/bin:$PATH"\nexport OVERRIDDEN=image');
  const text = await ctrUser(['inspect', '--image', sif]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /^ {2}1 {3}\|NONE {2}\|NONE \|32768-\d+ +\|Partition \(Squashfs\/Primary System\/amd64\)$/m);
  assert.is((await ctrUser(['inspect', '--deffile', sif])).stdout, '');
});

Def('reproducible :: a rebuild under SOURCE_DATE_EPOCH is byte-identical', async () => {
  const again = path.join(ctx.dir, 'again.sif');
  const r = await ctrUser(['build', again, ctx.def], SDE, ctx.dir);
  assert.is(r.code, 0, r.stderr);
  const same = await run('cmp', [ctx.sif, again]);
  assert.is(same.stdout, '');
  assert.is(same.code, 0);
});

Def('images/busybox.def :: builds as the user and runs its runscript', async () => {
  const out = path.join(ctx.dir, 'busybox.sif');
  const def = path.join(ctx.dir, 'busybox.def');
  fs.copyFileSync(path.join(REPO, 'images/busybox.def'), def);
  fs.chmodSync(def, 0o644);
  const b = await ctrUser(['build', '-q', out, def], {}, ctx.dir);
  assert.is(b.stderr, '');
  assert.is(b.code, 0);
  const r = await ctrUser(['run', out, 'cat', '/opt/hello/message']);
  assert.is(r.stdout.split('\n').slice(-2).join('\n'), 'built by ctr %post\n');
  assert.is(r.stdout.split('\n')[0], 'hello from a ctr-built busybox image');
});

Def.run();
