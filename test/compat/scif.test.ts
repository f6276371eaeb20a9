// Ported from Apptainer's SCIF app tests (their cases, our tests): e2e/imgbuild/imgbuild.go
// buildDefinition's App* cases (checked on a --sandbox build, as theirs are), the app cases
// of e2e/actions/actions.go (actionRun, actionExec, STDPipe), e2e/runhelp/runhelp.go and
// e2e/inspect/inspect.go, on an image with the apps of e2e/testdata/Apptainer and of
// e2e/testdata/inspector_container.def, built by the unprivileged user from the
// Apptainer-layout busybox SIF. The SIF is packed from the sandbox (ctr build SIF DIR).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TEST_USER, asUser, ctr, userIds, userTmp } from '../helpers/user.js';
import { apptainerBusyboxSif, ctrUser, ownLeftovers } from './fixture.js';

const ctx = { dir: '', sandbox: '', sif: '', file: '' };

const DEF = (from: string, file: string) => `Bootstrap: localimage
From: ${from}

%apphelp foo
    foo help info line 1
    foo help info line 2
%apphelp bar
    bar help info line 1

%appenv foo
    export testvar1=fooOne
    export testvar2=fooTwo
    HELLOTHISIS=foo
    export HELLOTHISIS
%appenv bar
    export testvar1=barOne

%applabels foo
    customLabel1 fooOne
    HELLOTHISIS foo
%applabels bar
    customLabel1 barOne

%appfiles foo
    ${file} FooFile.txt
    ${file} sub/FooFile2.txt
%appfiles bar
    ${file} BarFile.txt

%appinstall foo
    echo "INSTALLING FOO"
    touch filefoo.exec
    echo "$SCIF_APPNAME $SCIF_APPROOT $SCIF_APPDATA $(pwd)" > installed-with
    echo 'echo "lib path: $LD_LIBRARY_PATH"' > bin/showlib
    chmod 0755 bin/showlib
%appinstall bar
    touch filebar.exec
    cp /scif/apps/foo/filefoo.exec from-foo

%apprun foo
    echo "RUNNING FOO"
    echo "args: $*"
%apprun bar
    echo bar runscript line 1

%apptest foo
    echo foo testscript line 1
    exit 3

%appstart foo
    echo "STARTING FOO $*"

%appenv testapp
    TESTAPP=testapp
    export TESTAPP
%appinstall testapp
    echo 'echo $TESTAPP' > $SCIF_APPROOT/bin/testapp.sh
    chmod 0755 $SCIF_APPROOT/bin/testapp.sh
%apprun testapp
    $TESTAPP.sh

%post
    echo POST > /post-ran

%apprun world
    echo "world"
`;

const Scif = suite('compat scif');

Scif.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-scif-');
  ctx.file = path.join(ctx.dir, 'testFile.txt');
  fs.writeFileSync(ctx.file, 'some test content\n', { mode: 0o640 });
  fs.chmodSync(ctx.file, 0o640);
  const { uid, gid } = await userIds();
  fs.chownSync(ctx.file, uid, gid);
  fs.writeFileSync(path.join(ctx.dir, 'apps.def'), DEF(await apptainerBusyboxSif(), ctx.file));
  ctx.sandbox = path.join(ctx.dir, 'sandbox');
  const b = await ctrUser(['build', '--sandbox', ctx.sandbox, 'apps.def'], {}, ctx.dir);
  assert.is(b.code, 0, b.stderr);
  ctx.sif = path.join(ctx.dir, 'apps.sif');
  const s = await ctrUser(['build', ctx.sif, ctx.sandbox], {}, ctx.dir);
  assert.is(s.code, 0, s.stderr);
});
Scif.after.each(async () => assert.equal(await ownLeftovers(), [], 'processes left behind'));
Scif.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

const inApp = (name: string, rel: string) => path.join(ctx.sandbox, 'scif/apps', name, rel);
const mode = (p: string) => fs.statSync(p).mode & 0o7777;

Scif('e2e/imgbuild/imgbuild.go buildDefinition :: AppHelp: scif/runscript.help, mode 0644, with the lines', () => {
  for (const [app, lines] of [['foo', ['foo help info line 1', 'foo help info line 2']], ['bar', ['bar help info line 1']]] as const) {
    const help = inApp(app, 'scif/runscript.help');
    assert.is(mode(help), 0o644);
    for (const l of lines) assert.ok(fs.readFileSync(help, 'utf8').includes(l), `${app}: ${l}`);
  }
});

Scif('e2e/imgbuild/imgbuild.go buildDefinition :: AppEnv: exec --app NAME env has the app\'s variables', async () => {
  const foo = await ctrUser(['exec', '--app', 'foo', ctx.sandbox, 'env']);
  assert.is(foo.code, 0, foo.stderr);
  assert.match(foo.stdout, /^testvar1=fooOne$/m);
  assert.match(foo.stdout, /^testvar2=fooTwo$/m);
  const bar = await ctrUser(['exec', '--app', 'bar', ctx.sif, 'env']);
  assert.match(bar.stdout, /^testvar1=barOne$/m);
  assert.not.match(bar.stdout, /testvar2/);
  const none = await ctrUser(['exec', ctx.sif, 'env']);
  assert.not.match(none.stdout, /testvar1/, 'without --app no app environment');
});

Scif('e2e/imgbuild/imgbuild.go buildDefinition :: AppLabels: scif/labels.json with the labels and SCIF_APP_NAME', () => {
  const foo = JSON.parse(fs.readFileSync(inApp('foo', 'scif/labels.json'), 'utf8'));
  assert.equal(foo, { SCIF_APP_NAME: 'foo', customLabel1: 'fooOne', HELLOTHISIS: 'foo' });
  const bar = JSON.parse(fs.readFileSync(inApp('bar', 'scif/labels.json'), 'utf8'));
  assert.is(bar.customLabel1, 'barOne');
});

Scif('e2e/imgbuild/imgbuild.go buildDefinition :: AppFiles: copied under /scif/apps/NAME, same size, mode and content', () => {
  for (const [app, f] of [['foo', 'FooFile.txt'], ['foo', 'sub/FooFile2.txt'], ['bar', 'BarFile.txt']]) {
    const p = inApp(app, f);
    assert.is(fs.readFileSync(p, 'utf8'), 'some test content\n', p);
    assert.is(mode(p), 0o640, p);
  }
});

Scif('e2e/imgbuild/imgbuild.go buildDefinition :: AppInstall: runs in /scif/apps/NAME with its SCIF variables, after %post', () => {
  assert.ok(fs.statSync(inApp('foo', 'filefoo.exec')).isFile());
  assert.ok(fs.statSync(inApp('bar', 'filebar.exec')).isFile());
  assert.is(fs.readFileSync(inApp('foo', 'installed-with'), 'utf8'), 'foo /scif/apps/foo /scif/data/foo /scif/apps/foo\n');
  assert.is(fs.readFileSync(path.join(ctx.sandbox, 'post-ran'), 'utf8'), 'POST\n');
});

Scif('e2e/imgbuild/regressions.go issue4820 :: apps install in the order the file names them (bar uses what foo made)', () => {
  assert.ok(fs.statSync(inApp('bar', 'from-foo')).isFile());
});

Scif('e2e/imgbuild/imgbuild.go buildDefinition :: AppRun and AppTest: scif/runscript and scif/test, mode 0755', () => {
  for (const [f, text] of [[inApp('bar', 'scif/runscript'), 'echo bar runscript line 1'], [inApp('foo', 'scif/test'), 'echo foo testscript line 1']]) {
    assert.is(mode(f), 0o755);
    assert.ok(fs.readFileSync(f, 'utf8').startsWith('#!/bin/sh\n'), f);
    assert.ok(fs.readFileSync(f, 'utf8').includes(text), f);
  }
  assert.ok(fs.readFileSync(inApp('foo', 'scif/startscript'), 'utf8').includes('STARTING FOO'), '%appstart stored');
});

Scif('e2e/actions/actions.go actionExec :: ScifTestfolderOrg: /scif, /scif/apps, /scif/data and each app\'s directories', async () => {
  const dirs = ['/scif', '/scif/apps', '/scif/data', '/scif/apps/foo', '/scif/apps/bar', '/scif/data/foo/output', '/scif/data/foo/input'];
  const files = ['/scif/apps/foo/filefoo.exec', '/scif/apps/bar/filebar.exec'];
  const r = await ctrUser(['exec', ctx.sif, 'sh', '-c', [...dirs.map((d) => `test -d ${d}`), ...files.map((f) => `test -f ${f}`)].join(' && ')]);
  assert.is(r.code, 0, r.stderr);
});

Scif('e2e/actions/actions.go actionExec :: ScifTestAppGood / ScifTestAppBad: the app\'s bin on PATH; an unknown app exits 1', async () => {
  const good = await ctrUser(['exec', '--app', 'testapp', ctx.sif, 'testapp.sh']);
  assert.is(good.stdout, 'testapp\n');
  assert.is(good.code, 0, good.stderr);
  const bad = await ctrUser(['exec', '--app', 'fakeapp', ctx.sif, 'testapp.sh']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /fakeapp/);
});

Scif('e2e/actions/actions.go actionRun :: ScifTestAppGood / ScifTestAppBad: run --app runs the app\'s runscript', async () => {
  const good = await ctrUser(['run', '--app', 'testapp', ctx.sif]);
  assert.is(good.code, 0, good.stderr);
  assert.is(good.stdout, 'testapp\n');
  const bad = await ctrUser(['run', '--app', 'fakeapp', ctx.sif]);
  assert.is(bad.code, 1);
});

Scif('e2e/actions/actions.go STDPipe :: AppsFoo: run --app foo prints RUNNING FOO, with the arguments', async () => {
  const r = await ctrUser(['run', '--app', 'foo', ctx.sif, 'a', 'b c']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'RUNNING FOO\nargs: a b c\n');
});

Scif('internal/pkg/build/apps/apps.go :: --app: the SCIF variables, the app\'s lib first on LD_LIBRARY_PATH', async () => {
  const r = await ctrUser(['exec', '--app', 'foo', ctx.sif, 'sh', '-c',
    'echo "$SCIF_APPNAME|$SCIF_APPROOT|$SCIF_APPMETA|$SCIF_DATA|$SCIF_APPDATA|$SCIF_APPINPUT|$SCIF_APPOUTPUT|$SCIF_APPBIN_foo|$SCIF_APPLIB_bar|$SINGULARITY_APPNAME|$APPTAINER_APPNAME"; showlib']);
  assert.is(r.code, 0, r.stderr);
  const [vars, lib] = r.stdout.split('\n');
  assert.is(vars, 'foo|/scif/apps/foo|/scif/apps/foo/scif|/scif/data|/scif/data/foo|/scif/data/foo/input|/scif/data/foo/output|/scif/apps/foo/bin|/scif/apps/bar/lib|foo|foo');
  assert.match(lib, /^lib path: \/scif\/apps\/foo\/lib(:|$)/);
  const plain = await ctrUser(['exec', ctx.sif, 'sh', '-c', 'echo "${SCIF_APPNAME:-none} $SCIF_APPROOT_foo"']);
  assert.is(plain.stdout, 'none /scif/apps/foo\n', 'the global SCIF_*_NAME variables without --app');
});

Scif('e2e/actions/actions.go (test action) :: ctr test --app runs the app\'s %apptest; an app without one exits 1', async () => {
  const r = await ctrUser(['test', '--app', 'foo', ctx.sif]);
  assert.is(r.stdout, 'foo testscript line 1\n');
  assert.is(r.code, 3);
  const none = await ctrUser(['test', '--app', 'bar', ctx.sif]);
  assert.is(none.code, 1);
  assert.match(none.stderr, /^ctr: error: app bar: no test/m);
});

Scif('e2e/actions/actions.go actionShell (with --app) :: shell --app and plan --action run --app, as exec and run do', async () => {
  const sh = await ctr(['shell', '--app', 'foo', ctx.sif], { input: 'echo "app=$SCIF_APPNAME $testvar1"\n', detached: true });
  assert.is(sh.exitCode, 0, String(sh.stderr));
  assert.is(String(sh.stdout), 'app=foo fooOne\n');
  const plan = path.join(ctx.dir, 'foo.plan');
  const w = await ctrUser(['plan', '-o', plan, '--action', 'run', '--app', 'foo', ctx.sif, 'x']);
  assert.is(w.code, 0, w.stderr);
  const r = await asUser(plan, [], { detached: true });
  assert.is(String(r.stdout), 'RUNNING FOO\nargs: x\n');
});

Scif('e2e/instance/instance.go testAppEchoServer :: instance start --app foo runs the app\'s %appstart; an app without one does not start', async () => {
  const env = { XDG_RUNTIME_DIR: path.join(ctx.dir, 'run'), XDG_STATE_HOME: path.join(ctx.dir, 'state') };
  for (const d of [env.XDG_RUNTIME_DIR, env.XDG_STATE_HOME]) {
    fs.mkdirSync(d, { mode: 0o700 });
    fs.chownSync(d, fs.statSync(ctx.dir).uid, fs.statSync(ctx.dir).gid);
  }
  const s = await ctrUser(['instance', 'start', '--app', 'foo', ctx.sif, 'echoapp', '7'], env);
  assert.is(s.code, 0, s.stderr);
  try {
    let log = '';
    for (let i = 0; i < 100 && !log.includes('STARTING FOO'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      log = fs.readFileSync(path.join(env.XDG_STATE_HOME, 'ctr/instances/logs', os.hostname(), TEST_USER, 'echoapp.out'), 'utf8');
    }
    assert.match(log, /STARTING FOO 7/);
    const e = await ctrUser(['exec', 'instance://echoapp', 'sh', '-c', 'echo $SCIF_APPNAME'], env);
    assert.is(e.stdout, 'foo\n');
  } finally {
    assert.is((await ctrUser(['instance', 'stop', 'echoapp'], env)).code, 0);
  }
  const bad = await ctrUser(['instance', 'start', '--app', 'bar', ctx.sif, 'noapp'], env);
  assert.is(bad.code, 255);
  assert.is(bad.stderr, 'ctr: error: instance noapp: app bar has no startscript (%appstart bar)\n');
});

Scif('e2e/runhelp/runhelp.go testRunHelp :: AppFooHelp, AppFakeHelp', async () => {
  const foo = await ctrUser(['run-help', '--app', 'foo', ctx.sif]);
  assert.is(foo.code, 0, foo.stderr);
  assert.match(foo.stdout, /foo help info line 1/);
  const fake = await ctrUser(['run-help', '--app', 'fake', ctx.sif]);
  assert.is(fake.code, 0, fake.stderr);
  assert.is(fake.stdout, 'No help sections were defined for this image\n');
});

const inspect = async (args: string[], image = ctx.sif) => {
  const r = await ctrUser(['inspect', '--json', ...args, image]);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).data.attributes;
};

Scif('e2e/inspect/inspect.go apptainerInspect :: list apps', async () => {
  const a = await inspect(['--list-apps']);
  assert.equal(Object.keys(a.apps), ['bar', 'foo', 'testapp', 'world']);
  const all = JSON.parse((await ctrUser(['inspect', '--all', ctx.sif])).stdout).data.attributes;
  assert.is(all.apps.foo.runscript, '#!/bin/sh\n\n    echo "RUNNING FOO"\n    echo "args: $*"', '--all has every app\'s sections');
  assert.is(all.apps.bar.labels.customLabel1, 'barOne');
  const text = await ctrUser(['inspect', '--list-apps', ctx.sandbox]);
  assert.is(text.stdout, 'bar\nfoo\ntestapp\nworld\n');
});

Scif('e2e/inspect/inspect.go apptainerInspect :: label app, help app, env app, runscript app, test app', async () => {
  assert.is((await inspect(['--labels', '--app', 'foo'])).apps.foo.labels.HELLOTHISIS, 'foo');
  assert.is((await inspect(['--helpfile', '--app', 'foo'])).apps.foo.helpfile, '    foo help info line 1\n    foo help info line 2');
  assert.is((await inspect(['--environment', '--app', 'foo'])).apps.foo.environment['/scif/apps/foo/scif/env/90-environment.sh'],
    '    export testvar1=fooOne\n    export testvar2=fooTwo\n    HELLOTHISIS=foo\n    export HELLOTHISIS');
  assert.is((await inspect(['--runscript', '--app', 'world'])).apps.world.runscript, '#!/bin/sh\n\n    echo "world"');
  assert.is((await inspect(['--test', '--app', 'foo'], ctx.sandbox)).apps.foo.test, '#!/bin/sh\n\n    echo foo testscript line 1\n    exit 3');
  const text = await ctrUser(['inspect', '--app', 'foo', ctx.sif]);
  assert.is(text.stdout, 'HELLOTHISIS: foo\nSCIF_APP_NAME: foo\ncustomLabel1: fooOne\n');
  const gone = await ctrUser(['inspect', '--app', 'nope', ctx.sif]);
  assert.is(gone.code, 255);
  assert.match(gone.stderr, /^ctr: error: app nope: not in image/);
});

Scif('e2e/imgbuild/imgbuild.go buildDefinition (SIF, not sandbox) :: AppRun, AppEnv straight into a SIF over Bootstrap: busybox', async () => {
  fs.writeFileSync(path.join(ctx.dir, 'one.def'), 'Bootstrap: busybox\n\n%appenv one\n    export ONE=1\n%apprun one\n    echo "one $ONE $*"\n');
  const sif = path.join(ctx.dir, 'one.sif');
  const b = await ctrUser(['build', sif, 'one.def'], {}, ctx.dir);
  assert.is(b.code, 0, b.stderr);
  const r = await ctrUser(['run', '--app', 'one', sif, 'x']);
  assert.is(r.stdout, 'one 1 x\n');
  assert.is(r.code, 0, r.stderr);
  assert.equal(Object.keys((await inspect(['--list-apps'], sif)).apps), ['one']);
});

Scif('pkg/build/types/parser/deffile.go :: an app section without a name, or with a path for one, is refused in one line', async () => {
  for (const [head, why] of [['%apprun', 'no app name'], ['%apprun ../x', 'not an app name']]) {
    fs.writeFileSync(path.join(ctx.dir, 'bad.def'), `Bootstrap: scratch\n${head}\n    echo\n`);
    const r = await ctrUser(['build', path.join(ctx.dir, 'bad.sif'), path.join(ctx.dir, 'bad.def')]);
    assert.is(r.code, 255);
    assert.match(r.stderr, new RegExp(`^ctr: error: definition file .*bad\\.def: line 2: .*${why}`));
    assert.is(r.stderr.split('\n').length, 2, r.stderr);
  }
  const r = await ctrUser(['exec', '--app', 'a/b', ctx.sif, 'true']);
  assert.is(r.code, 255);
  assert.match(r.stderr, /^ctr: error: --app "a\/b": not an app name/);
});

Scif.run();
