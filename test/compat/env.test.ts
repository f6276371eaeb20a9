// Ported from Apptainer's e2e/env/env.go and the rules of internal/pkg/util/env
// (create.go: what passes, what is refused; its action script: evaluation, PATH and
// LD_LIBRARY_PATH): their cases, our tests, each named after its source. Run on an image
// laid out like Apptainer's busybox testdata (fixture.ts) and on a ctr-built image with
// the %environment of Apptainer's e2e/testdata/Apptainer. The launch-time policy is
// checked on both paths: `ctr exec` and a plan file run without Node.
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { userIds, userTmp } from '../helpers/user.js';
import { DEFAULT_PATH, apptainerBusyboxSif, ctrUser, debianSif, ownLeftovers, run } from './fixture.js';
import { TEST_USER } from '../helpers/user.js';

const ctx = { dir: '', bb: '', custom: '', home: '', debian: '' };
const LIBS = '/.singularity.d/libs';
const CUSTOM_PATH = `${DEFAULT_PATH}:/go/bin:/usr/local/go/bin`;

interface Case { name: string; image: () => string; envOpt?: string[]; hostEnv?: Record<string, string>; flags?: string[]; show: string; want: string }

async function show(c: Case): Promise<string> {
  const args = ['exec', ...(c.flags ?? []), ...(c.envOpt ? ['--env', c.envOpt.join(',')] : []), c.image(), '/bin/sh', '-c', `echo "\${${c.show}}"`];
  const r = await ctrUser(args, c.hostEnv ?? {}, ctx.dir);
  assert.is(r.stderr, '', c.name);
  assert.is(r.code, 0, c.name);
  return r.stdout;
}

const Env = suite('compat env');

Env.before(async () => {
  ctx.dir = await userTmp('ctr-t-compat-env-');
  ctx.home = (await userIds()).home;
  ctx.bb = await apptainerBusyboxSif();
  ctx.debian = await debianSif();
  // e2e/testdata/Apptainer's %environment, on Apptainer's busybox.
  const def = path.join(ctx.dir, 'custom.def');
  fs.writeFileSync(def, `Bootstrap: localimage\nFrom: ${ctx.bb}\n\n%environment\n    GOPATH=/go\n    PATH=$PATH:$GOPATH/bin:/usr/local/go/bin\n` +
    '    CGO_ENABLED=0\n    AVENGERS=assemble\n    export GOPATH PATH CGO_ENABLED AVENGERS\n');
  ctx.custom = path.join(ctx.dir, 'custom.sif');
  const r = await ctrUser(['build', ctx.custom, def], {}, ctx.dir);
  assert.is(r.code, 0, r.stderr);
});
Env.after.each(async () => assert.equal(await ownLeftovers(), [], 'processes left behind'));
Env.after(() => fs.rmSync(ctx.dir, { recursive: true, force: true }));

const bb = () => ctx.bb;
const custom = () => ctx.custom;

const APPTAINER_ENV: Case[] = [
  { name: 'DefaultPath', image: bb, show: 'PATH', want: DEFAULT_PATH },
  { name: 'CustomPath', image: custom, show: 'PATH', want: CUSTOM_PATH },
  { name: 'AppendToDefaultPath', image: bb, hostEnv: { APPTAINERENV_APPEND_PATH: '/foo' }, show: 'PATH', want: `${DEFAULT_PATH}:/foo` },
  { name: 'AppendToCustomPath', image: custom, hostEnv: { APPTAINERENV_APPEND_PATH: '/foo' }, show: 'PATH', want: `${CUSTOM_PATH}:/foo` },
  { name: 'PrependToDefaultPath', image: bb, hostEnv: { APPTAINERENV_PREPEND_PATH: '/foo' }, show: 'PATH', want: `/foo:${DEFAULT_PATH}` },
  { name: 'PrependToCustomPath', image: custom, hostEnv: { APPTAINERENV_PREPEND_PATH: '/foo' }, show: 'PATH', want: `/foo:${CUSTOM_PATH}` },
  { name: 'OverwriteDefaultPath', image: bb, hostEnv: { APPTAINERENV_PATH: '/usr/bin:/bin' }, show: 'PATH', want: '/usr/bin:/bin' },
  { name: 'OverwriteCustomPath', image: custom, hostEnv: { APPTAINERENV_PATH: '/usr/bin:/bin' }, show: 'PATH', want: '/usr/bin:/bin' },
  { name: 'OverwriteTrailingCommaPath', image: bb, hostEnv: { APPTAINERENV_PATH: '/usr/bin:/bin,' }, show: 'PATH', want: '/usr/bin:/bin,' },
];
for (const c of APPTAINER_ENV) {
  Env(`e2e/env/env.go apptainerEnv :: ${c.name}`, async () => assert.is(await show(c), `${c.want}\n`));
}

const ENV_OPTION: Case[] = [
  { name: 'DefaultPath', image: bb, show: 'PATH', want: DEFAULT_PATH },
  { name: 'DefaultPathOverride', image: bb, envOpt: ['PATH=/'], show: 'PATH', want: '/' },
  { name: 'AppendDefaultPath', image: bb, envOpt: ['APPEND_PATH=/foo'], show: 'PATH', want: `${DEFAULT_PATH}:/foo` },
  { name: 'PrependDefaultPath', image: bb, envOpt: ['PREPEND_PATH=/foo'], show: 'PATH', want: `/foo:${DEFAULT_PATH}` },
  { name: 'DefaultPathImage', image: custom, show: 'PATH', want: CUSTOM_PATH },
  { name: 'DefaultPathTestImageOverride', image: custom, envOpt: ['PATH=/'], show: 'PATH', want: '/' },
  { name: 'AppendDefaultPathTestImage', image: custom, envOpt: ['APPEND_PATH=/foo'], show: 'PATH', want: `${CUSTOM_PATH}:/foo` },
  { name: 'AppendLiteralDefaultPathTestImage', image: custom, envOpt: ['PATH=$PATH:/foo'], show: 'PATH', want: `${CUSTOM_PATH}:/foo` },
  { name: 'PrependDefaultPathTestImage', image: custom, envOpt: ['PREPEND_PATH=/foo'], show: 'PATH', want: `/foo:${CUSTOM_PATH}` },
  { name: 'PrependLiteralDefaultPathTestImage', image: custom, envOpt: ['PATH=/foo:$PATH'], show: 'PATH', want: `/foo:${CUSTOM_PATH}` },
  { name: 'TestImageCgoEnabledDefault', image: custom, show: 'CGO_ENABLED', want: '0' },
  { name: 'TestImageCgoEnabledOverride', image: custom, envOpt: ['CGO_ENABLED=1'], show: 'CGO_ENABLED', want: '1' },
  { name: 'TestImageCgoEnabledOverride_KO', image: custom, hostEnv: { CGO_ENABLED: '1' }, show: 'CGO_ENABLED', want: '0' },
  { name: 'TestImageCgoEnabledOverrideFromEnv', image: custom, hostEnv: { APPTAINERENV_CGO_ENABLED: '1' }, show: 'CGO_ENABLED', want: '1' },
  { name: 'TestImageCgoEnabledOverrideEnvOptionPrecedence', image: custom, hostEnv: { APPTAINERENV_CGO_ENABLED: '1' }, envOpt: ['CGO_ENABLED=2'], show: 'CGO_ENABLED', want: '2' },
  { name: 'TestImageCgoEnabledOverrideEmpty', image: custom, envOpt: ['CGO_ENABLED='], show: 'CGO_ENABLED', want: '' },
  { name: 'TestImageOverrideHost', image: custom, hostEnv: { FOO: 'bar' }, envOpt: ['FOO=foo'], show: 'FOO', want: 'foo' },
  { name: 'TestMultiLine', image: custom, hostEnv: { MULTI: 'Hello\nWorld' }, show: 'MULTI', want: 'Hello\nWorld' },
  { name: 'TestEscapedNewline', image: custom, hostEnv: { ESCAPED: 'Hello\\nWorld' }, show: 'ESCAPED', want: 'Hello\\nWorld' },
  { name: 'TestInvalidKey', image: custom, hostEnv: { 'BASH_FUNC_ml%%': 'TEST' }, show: 'BASH_FUNC_ml%%', want: '' },
  { name: 'TestCustomTrailingCommaPath', image: bb, envOpt: ['LD_LIBRARY_PATH=/foo,'], show: 'LD_LIBRARY_PATH', want: `/foo,:${LIBS}` },
  { name: 'TestCustomLdLibraryPath', image: bb, envOpt: ['LD_LIBRARY_PATH=/foo'], show: 'LD_LIBRARY_PATH', want: `/foo:${LIBS}` },
];
for (const c of ENV_OPTION) {
  Env(`e2e/env/env.go apptainerEnvOption :: ${c.name}`, async () => assert.is(await show(c), `${c.want}\n`));
}

// The LD_LIBRARY_PATH cases on glibc's Debian, whose ldconfig names its directories. The
// image here is a plain tree without /.singularity.d, so a file is bound into
// /.singularity.d/libs (as Apptainer's own ...WithBind case does): ctr leaves the loader
// path alone in images without that directory (documented difference).
const debian = () => ctx.debian;
const LIBBIND = ['-B', '/etc/os-release:/.singularity.d/libs/os-release'];
const DEFAULT_LD = '/usr/local/lib:/lib/x86_64-linux-gnu:/lib';
const LD_CASES: Case[] = [
  { name: 'TestDefaultLdLibraryPathWithBind', image: debian, flags: LIBBIND, show: 'LD_LIBRARY_PATH', want: `${DEFAULT_LD}:${LIBS}` },
  { name: 'TestPrependLdLibraryPath', image: debian, flags: LIBBIND, envOpt: ['PREPEND_LD_LIBRARY_PATH=/foo'], show: 'LD_LIBRARY_PATH', want: `/foo:${DEFAULT_LD}:${LIBS}` },
  { name: 'TestAppendLdLibraryPath', image: debian, flags: LIBBIND, envOpt: ['APPEND_LD_LIBRARY_PATH=/foo'], show: 'LD_LIBRARY_PATH', want: `${DEFAULT_LD}:${LIBS}:/foo` },
  { name: 'TestCustomLdLibraryPath', image: debian, flags: LIBBIND, envOpt: ['LD_LIBRARY_PATH=/foo'], show: 'LD_LIBRARY_PATH', want: `/foo:${LIBS}` },
  { name: 'TestDefaultLdLibraryPath (no /.singularity.d in the image: left unset, documented difference)', image: debian, show: 'LD_LIBRARY_PATH', want: '' },
];
for (const c of LD_CASES) {
  Env(`e2e/env/env.go apptainerEnvOption :: ${c.name}`, async () => assert.is(await show(c), `${c.want}\n`));
}

Env('internal/pkg/util/fs/files/action_script.sh :: the ldconfig rule holds on the shell path too ($(...) in --env needs the image\'s sh)', async () => {
  const c = { name: 'shell path', image: debian, flags: LIBBIND, envOpt: ['PREPEND_LD_LIBRARY_PATH=$(echo /foo)'], show: 'LD_LIBRARY_PATH', want: '' };
  assert.is(await show(c), `/foo:${DEFAULT_LD}:${LIBS}\n`);
});

const NO_ENV: Case[] = [
  { name: 'NormalImport', image: bb, hostEnv: { FOO: 'bar', BAR: 'foo' }, show: 'FOO', want: 'bar' },
  { name: 'NoEnvAlone', image: bb, flags: ['--no-env', 'FOO'], hostEnv: { FOO: 'bar', BAR: 'foo' }, show: 'FOO', want: '' },
  { name: 'NoEnvSecond', image: bb, flags: ['--no-env', 'BAR,FOO'], hostEnv: { FOO: 'bar', BAR: 'foo' }, show: 'FOO', want: '' },
  { name: 'NoEnvViaEnv', image: bb, hostEnv: { FOO: 'bar', BAR: 'foo', APPTAINER_NOENV: 'FOO,BAR' }, show: 'FOO', want: '' },
  { name: 'OverridePermitted', image: bb, flags: ['--no-env', 'BAR,FOO'], hostEnv: { FOO: 'bar', BAR: 'foo', APPTAINERENV_FOO: 'Bar' }, show: 'FOO', want: 'Bar' },
];
for (const c of NO_ENV) {
  Env(`e2e/env/env.go apptainerNoEnvOption :: ${c.name}`, async () => assert.is(await show(c), `${c.want}\n`));
}

Env('e2e/env/env.go apptainerNoEnvOption :: OverrideNotPermitted (APPTAINERENV_APPTAINER_APPNAME is refused with a warning)', async () => {
  const r = await ctrUser(['exec', ctx.bb, '/bin/sh', '-c', 'echo "${APPTAINER_APPNAME}"'], { APPTAINERENV_APPTAINER_APPNAME: 'foo' }, ctx.dir);
  assert.is(r.stdout, '\n');
  assert.is(r.stderr, 'ctr: warning: APPTAINERENV_APPTAINER_APPNAME is ignored: APPTAINER_APPNAME cannot be set in the container\n');
});

// --env-file: several files, in order; the file is read as shell assignments.
const ENV_FILE: Array<{ name: string; files: string[]; envOpt?: string[]; show: string; want: string; image?: () => string }> = [
  { name: 'DefaultPathOverride', files: ['PATH=/'], show: 'PATH', want: '/' },
  { name: 'DefaultPathOverrideEnvOptionPrecedence', envOpt: ['PATH=/etc'], files: ['PATH=/'], show: 'PATH', want: '/etc' },
  { name: 'DefaultPathOverrideEnvFileOptionPrecedence', files: ['PATH=/', 'PATH=/etc'], show: 'PATH', want: '/etc' },
  { name: 'DefaultPathOverrideEnvAndEnvFileOptionPrecedence', envOpt: ['PATH=/etc'], files: ['PATH=/', 'PATH=/foo'], show: 'PATH', want: '/etc' },
  { name: 'AppendDefaultPath', files: ['APPEND_PATH=/'], show: 'PATH', want: `${CUSTOM_PATH}:/` },
  { name: 'AppendLiteralDefaultPath', files: ['PATH="\\$PATH:/"'], show: 'PATH', want: `${CUSTOM_PATH}:/` },
  { name: 'PrependLiteralDefaultPath', files: ['PATH="/:\\$PATH"'], show: 'PATH', want: `/:${CUSTOM_PATH}` },
  { name: 'PrependDefaultPath', files: ['PREPEND_PATH=/'], show: 'PATH', want: `/:${CUSTOM_PATH}` },
  { name: 'DefaultLdLibraryPath', files: [], show: 'LD_LIBRARY_PATH', want: LIBS },
  { name: 'CustomLdLibraryPath', files: ['LD_LIBRARY_PATH=/foo'], show: 'LD_LIBRARY_PATH', want: `/foo:${LIBS}` },
  { name: 'CustomTrailingCommaPath', files: ['LD_LIBRARY_PATH=/foo,'], show: 'LD_LIBRARY_PATH', want: `/foo,:${LIBS}` },
];
for (const c of ENV_FILE) {
  Env(`e2e/env/env.go apptainerEnvFile :: ${c.name}`, async () => {
    const flags = c.files.flatMap((text, i) => {
      const f = path.join(ctx.dir, `${c.name}.${i}.env`);
      fs.writeFileSync(f, text);
      return ['--env-file', f];
    });
    assert.is(await show({ name: c.name, image: custom, flags, envOpt: c.envOpt, show: c.show, want: c.want }), `${c.want}\n`);
  });
}

// Evaluation: Apptainer's cases use $UID, which its own shell sets and busybox sh does
// not; $HOME (the container's) stands in for it here.
const EVAL: Array<[string, string, boolean, () => string]> = [
  ['no env', '', false, () => ''],
  ['string env', 'ME', false, () => 'ME'],
  ['env var', '$HOME', false, () => ctx.home],
  ['double quoted env var', '"$HOME"', false, () => `"${ctx.home}"`],
  ['single quoted env var', "'$HOME'", false, () => `'${ctx.home}'`],
  ['escaped env var', '\\$HOME', false, () => '$HOME'],
  ['subshell env', '$(id -u)', false, () => String(uid)],
  ['double quoted subshell env', '"$(id -u)"', false, () => `"${uid}"`],
  ['single quoted subshell env', "'$(id -u)'", false, () => `'${uid}'`],
  ['escaped subshell env', '\\$(id -u)', false, () => '$(id -u)'],
  ['no-eval/string env', 'ME', true, () => 'ME'],
  ['no-eval/env var', '$HOME', true, () => '$HOME'],
  ['no-eval/double quoted env var', '"$HOME"', true, () => '"$HOME"'],
  ['no-eval/single quoted env var', "'$HOME'", true, () => "'$HOME'"],
  ['no-eval/escaped env var', '\\$HOME', true, () => '\\$HOME'],
  ['no-eval/subshell env', '$(id -u)', true, () => '$(id -u)'],
  ['no-eval/double quoted subshell env', '"$(id -u)"', true, () => '"$(id -u)"'],
  ['no-eval/single quoted subshell env', "'$(id -u)'", true, () => "'$(id -u)'"],
  ['no-eval/escaped subshell env', '\\$(id -u)', true, () => '\\$(id -u)'],
];
let uid = 0;
for (const [name, value, noEval, want] of EVAL) {
  Env(`e2e/env/env.go apptainerEnvEval :: ${name}`, async () => {
    uid = (await userIds()).uid;
    const host: Record<string, string> = value ? { APPTAINERENV_WHO: value } : {};
    const r = await ctrUser(['exec', ...(noEval ? ['--no-eval'] : []), ctx.bb, '/bin/sh', '-c', 'echo "$WHO"'], host, ctx.dir);
    assert.is(r.stderr, '');
    assert.is(r.stdout, `${want()}\n`);
  });
}

Env('internal/pkg/util/env/create.go overridesForContainerEnv :: APPTAINERENV_X wins over SINGULARITYENV_X, --env over both', async () => {
  assert.is(await show({ name: 'prefix', image: bb, hostEnv: { SINGULARITYENV_X: 'legacy', APPTAINERENV_X: 'new' }, show: 'X', want: '' }), 'new\n');
  assert.is(await show({ name: 'flag', image: bb, envOpt: ['X=flag'], hostEnv: { SINGULARITYENV_X: 'legacy', APPTAINERENV_X: 'new' }, show: 'X', want: '' }), 'flag\n');
});

Env('internal/pkg/util/env/create.go alwaysOmitKeys :: APPTAINERENV_HOME is refused with a warning; HOME stays', async () => {
  const r = await ctrUser(['exec', ctx.bb, '/bin/sh', '-c', 'echo "$HOME"'], { APPTAINERENV_HOME: '/elsewhere' }, ctx.dir);
  assert.is(r.stdout, `${ctx.home}\n`);
  assert.is(r.stderr, 'ctr: warning: APPTAINERENV_HOME is ignored: HOME cannot be set in the container (use --home)\n');
});

Env('internal/pkg/util/env/create.go SetContainerEnv :: host APPTAINER_* and SINGULARITY_* settings do not enter', async () => {
  const r = await ctrUser(['exec', ctx.bb, '/bin/sh', '-c', 'env | grep -E "^(APPTAINER|SINGULARITY)_" | sort'],
    { APPTAINER_CACHEDIR: '/c', SINGULARITY_TMPDIR: '/t', APPTAINER_BIND: '' }, ctx.dir);
  assert.is(r.stdout, [`APPTAINER_CONTAINER=${ctx.bb}`, `APPTAINER_NAME=${path.basename(ctx.bb)}`,
    `SINGULARITY_CONTAINER=${ctx.bb}`, `SINGULARITY_NAME=${path.basename(ctx.bb)}`, ''].join('\n'));
});

Env('internal/pkg/util/env/create.go alwaysPassKeys :: --cleanenv keeps TERM and the proxy variables; LANG kept (documented difference)', async () => {
  const host = { http_proxy: 'http://p:3128', HTTPS_PROXY: 'http://q:3128', no_proxy: 'localhost', LANG: 'C.UTF-8', TERM: 'xterm', OTHER: 'x' };
  const r = await ctrUser(['exec', '--cleanenv', ctx.bb, '/bin/sh', '-c', 'echo "$http_proxy $HTTPS_PROXY $no_proxy $LANG $TERM [$OTHER]"'], host, ctx.dir);
  assert.is(r.stdout, 'http://p:3128 http://q:3128 localhost C.UTF-8 xterm []\n');
});

Env('the same policy from a plan file, without Node :: evaluation, prefix precedence, PATH, LD_LIBRARY_PATH, dropped settings', async () => {
  const plan = path.join(ctx.dir, 'env.plan');
  const made = await ctrUser(['plan', '-o', plan, '--env', 'P=$PATH:/foo,LD_LIBRARY_PATH=/l', ctx.custom, '/bin/sh', '-c',
    'echo "$P|$WHO|$X|$PATH|$LD_LIBRARY_PATH|${APPTAINER_CACHEDIR:-unset}"'], {}, ctx.dir);
  assert.is(made.code, 0, made.stderr);
  const r = await run('runuser', ['-u', TEST_USER, '--', 'env', `HOME=${ctx.home}`, 'APPTAINERENV_WHO=$(id -u)', 'SINGULARITYENV_X=old',
    'APPTAINERENV_X=new', 'APPTAINERENV_APPEND_PATH=/app', 'APPTAINER_CACHEDIR=/c', plan], { cwd: ctx.dir });
  assert.is(r.stderr, '');
  assert.is(r.stdout, `${CUSTOM_PATH}:/foo|${(await userIds()).uid}|new|${CUSTOM_PATH}:/app|/l:${LIBS}|unset\n`);
});

Env.run();
