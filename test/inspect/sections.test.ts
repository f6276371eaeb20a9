// ctr inspect's sections as Apptainer has them (labels by default, --deffile, --runscript,
// --startscript, --test, --helpfile, --environment, --all, --json in Apptainer's schema)
// and ctr's --image (SquashFS compressor, block size); ctr run-help and ctr test (issue
// 13). The image is a busybox tree with every /.singularity.d file, some of them hostile
// (escape sequences, a newline in a label), built by ctr as a SIF with gzip.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeBusyboxTree } from '../helpers/images.js';
import { CTR_MAIN } from '../helpers/paths.js';
import { ctr, userTmp } from '../helpers/user.js';

const ESC = '\x1b';
const SD = '.singularity.d';
const Inspect = suite('inspect sections');
let dir: string, sif: string, tree: string, bare: string;

Inspect.before(async () => {
  dir = await userTmp('ctr-inspect-sections-');
  tree = join(dir, 'tree');
  await makeBusyboxTree(tree);
  const sd = join(tree, SD);
  await writeFile(join(sd, 'labels.json'), JSON.stringify({ 'org.example.b': 'two', 'org.example.a': 'one', evil: `red${ESC}[31m\nforged: line`, n: 3 }));
  await writeFile(join(sd, 'runscript'), `#!/bin/sh\necho "run $*"\nprintf '${ESC}]0;title\\007'\n`, { mode: 0o755 });
  await writeFile(join(sd, 'startscript'), '#!/bin/sh\necho start\n', { mode: 0o755 });
  await writeFile(join(sd, 'test'), '#!/bin/sh\necho "testing $IMAGE_VAR: $*"\nexit "${1:-0}"\n', { mode: 0o755 });
  await writeFile(join(sd, 'runscript.help'), 'Usage: run it.\n\n');
  await writeFile(join(sd, 'Apptainer'), 'Bootstrap: localimage\nFrom: base.sif\n');
  await writeFile(join(sd, 'env/10-docker2singularity.sh'), 'export FROM_DOCKER=1\n');
  await writeFile(join(sd, 'env/01-base.sh'), '# not shown: Apptainer\'s own\n');
  sif = join(dir, 'img.sif');
  const b = await execa(process.execPath, [CTR_MAIN, 'build', '-q', '--compress', 'gzip', sif, tree], { reject: false });
  assert.is(b.exitCode, 0, b.stderr);
  // The same without a test script or help file.
  const plain = join(dir, 'plain');
  await makeBusyboxTree(plain);
  bare = join(dir, 'bare.sif');
  const p = await execa(process.execPath, [CTR_MAIN, 'build', '-q', bare, plain], { reject: false });
  assert.is(p.exitCode, 0, p.stderr);
  await execa('chmod', ['-R', 'a+rX', dir]);
});

async function inspect(...args: string[]): Promise<string> {
  const r = await ctr(['inspect', ...args]);
  assert.is(r.stderr, '', args.join(' '));
  assert.is(r.exitCode, 0, args.join(' '));
  return r.stdout as string;
}

Inspect('default :: the labels, sorted, name: value; control characters shown, not sent', async () => {
  const text = await inspect(sif);
  assert.is(text, 'evil: red\\x1b[31m\\x0aforged: line\nn: 3\norg.example.a: one\norg.example.b: two\n');
  assert.is(await inspect('--labels', sif), text);
  assert.is(await inspect('-l', sif), text);
});

Inspect('one section each :: as Apptainer prints them', async () => {
  assert.is(await inspect('--runscript', sif), '#!/bin/sh\necho "run $*"\nprintf \'\\x1b]0;title\\007\'\n');
  assert.is(await inspect('-s', sif), '#!/bin/sh\necho start\n');
  assert.is(await inspect('--test', sif), '#!/bin/sh\necho "testing $IMAGE_VAR: $*"\nexit "${1:-0}"\n');
  assert.is(await inspect('-H', sif), 'Usage: run it.\n');
  assert.is(await inspect('--deffile', sif), 'Bootstrap: localimage\nFrom: base.sif\n');
  assert.is(await inspect('-e', sif), '=== /.singularity.d/env/10-docker2singularity.sh ===\nexport FROM_DOCKER=1\n\n' +
    '=== /.singularity.d/env/90-environment.sh ===\nexport IMAGE_VAR="from the image"\nexport PATH="/bin:$PATH"\nexport OVERRIDDEN=image\n\n');
  // Several: in Apptainer's order, whatever the order of the flags.
  assert.is(await inspect('-l', '-s', '-r', sif), `${await inspect('-r', sif)}${await inspect('-s', sif)}${await inspect(sif)}`);
});

Inspect('--json :: Apptainer\'s schema; labels by default; --all has every section', async () => {
  assert.equal(JSON.parse(await inspect('--json', sif)), {
    data: { attributes: { labels: { evil: `red${ESC}[31m\nforged: line`, n: '3', 'org.example.a': 'one', 'org.example.b': 'two' } } },
    type: 'container',
  });
  assert.match(await inspect('-j', sif), /^\{\n\t"data": \{\n\t\t"attributes": \{\n/);
  const all = JSON.parse(await inspect('--all', sif));
  assert.equal(Object.keys(all.data.attributes), ['environment', 'labels', 'runscript', 'test', 'helpfile', 'deffile', 'startscript']);
  assert.is(all.type, 'container');
  assert.is(all.data.attributes.helpfile, 'Usage: run it.');
  assert.is(all.data.attributes.runscript, `#!/bin/sh\necho "run $*"\nprintf '${ESC}]0;title\\007'`);
  assert.equal(Object.keys(all.data.attributes.environment), ['/.singularity.d/env/10-docker2singularity.sh', '/.singularity.d/env/90-environment.sh']);
  assert.is(all.image.kind, 'sif');
  assert.equal([all.image.squashfs.compressor, all.image.squashfs.blockSize], ['gzip', 131072]);
  assert.equal(all.image.objects.map((o: { typeName: string }) => o.typeName), ['Partition']);
  // An image without them: the sections are left out, as Apptainer's omitempty does.
  assert.equal(Object.keys(JSON.parse(await inspect('--all', bare)).data.attributes), ['environment', 'runscript']);
});

Inspect('--image :: the SIF objects and the SquashFS compressor and block size', async () => {
  const text = await inspect('--image', sif);
  assert.match(text, new RegExp(`^Image: ${sif.replace(/[.]/g, '\\.')} \\(sif\\)\n`));
  assert.match(text, /^SquashFS: gzip, block size 128 KiB, \d+ bytes, \d+ inodes, version 4\.0, made /m);
  assert.match(text, /^ {2}1 {3}\|1 {5}\|NONE \|\d+-\d+ +\|Partition \(Squashfs\/Primary System\/amd64\)$/m);
  const dirText = await inspect('--image', '--runscript', tree);
  assert.match(dirText, new RegExp(`^Image: ${tree.replace(/[.]/g, '\\.')} \\(dir\\)\n#!/bin/sh\n`));
});

Inspect('bad input :: one error line, exit 255', async () => {
  const r = await ctr(['inspect', '--deffile', '--frob', sif]);
  assert.is(r.stderr, 'ctr: error: unknown option --frob\nctr: hint: see ctr --help\n');
  assert.is(r.exitCode, 255);
  const missing = await ctr(['inspect', '-r', join(dir, 'nonexistent.sif')]);
  assert.is(missing.stderr, `ctr: error: image ${join(dir, 'nonexistent.sif')}: No such file or directory\n`);
  assert.is(missing.exitCode, 255);
});

Inspect.run();

const RunHelp = suite('run-help and test');
RunHelp.after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

RunHelp('run-help :: the help file; Apptainer\'s words when there is none', async () => {
  const r = await ctr(['run-help', sif]);
  assert.equal([r.stdout, r.stderr, r.exitCode], ['Usage: run it.\n', '', 0]);
  const none = await ctr(['run-help', bare]);
  assert.equal([none.stdout, none.stderr, none.exitCode], ['No help sections were defined for this image\n', '', 0]);
  const no = await ctr(['run-help']);
  assert.equal([no.stderr, no.exitCode], ['ctr: error: no image given\nctr: hint: usage: ctr run-help [--app NAME] IMAGE\n', 255]);
});

RunHelp('test :: runs /.singularity.d/test with the image\'s environment; its exit status passes through', async () => {
  const ok = await ctr(['test', sif], { cwd: dir });
  assert.equal([ok.stdout, ok.stderr, ok.exitCode], ['testing from the image: \n', '', 0]);
  const fails = await ctr(['test', sif, '3'], { cwd: dir });
  assert.equal([fails.stdout, fails.exitCode], ['testing from the image: 3\n', 3]);
  const none = await ctr(['test', bare], { cwd: dir });
  assert.equal([none.stdout, none.stderr, none.exitCode], ['No test found in container, executing /bin/sh -c true\n', '', 0]);
});

RunHelp('test :: takes the launch flags (-B)', async () => {
  await mkdir(join(dir, 'data'), { recursive: true });
  await writeFile(join(dir, 'data/x'), 'bound\n');
  await chmod(join(dir, 'data'), 0o755);
  const sd = join(dir, 'binds');
  await makeBusyboxTree(sd);
  await writeFile(join(sd, SD, 'test'), '#!/bin/sh\ncat /mnt/x\n', { mode: 0o755 });
  await execa('chmod', ['-R', 'a+rX', sd]);
  const r = await ctr(['test', '-B', `${join(dir, 'data')}:/mnt`, sd], { cwd: dir });
  assert.equal([r.stdout, r.stderr, r.exitCode], ['bound\n', '', 0]);
});

RunHelp.run();
