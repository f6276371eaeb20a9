// SCIF apps, the pure parts: the definition file's %app* sections (builder/definition.ts),
// the layout and scripts an app gets (image/scif.ts), and what --app tells the launcher
// (plan/env.ts). The built image and the launches: test/compat/scif.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDefinition } from '../../src/builder/definition.js';
import { appAction, appEntries, appsBaseEnv, installScript } from '../../src/image/scif.js';
import { composeEnv } from '../../src/plan/env.js';
import { message } from '../helpers/errors.js';

const Scif = suite('plan scif');

Scif('definition :: app sections by name, in the order the file first names the apps', () => {
  const d = parseDefinition('Bootstrap: scratch\n%apprun b\n  echo b\n%appenv a\n  X=1\n%appinstall b # a comment\n  touch f\n%post\n  true\n', 'x.def');
  assert.equal(d.apps.map((a) => a.name), ['b', 'a']);
  assert.equal(d.apps[0].sections, { apprun: '  echo b\n', appinstall: '  touch f\n' });
  assert.equal(d.apps[1].sections, { appenv: '  X=1\n' });
  assert.is(d.sections.post, '  true\n', 'a plain section after the apps is its own');
});

Scif('definition :: a section twice, no name, a bad name: one line each', () => {
  const fail = (text: string) => message(() => parseDefinition(`Bootstrap: scratch\n${text}`, 'x.def'));
  assert.is(fail('%apprun a\n%apprun a\n'), 'definition file x.def: line 3: section %apprun a appears twice');
  assert.is(fail('%appenv\n'), 'definition file x.def: line 2: %appenv: no app name (%appenv NAME)');
  assert.match(fail('%apphelp .hidden\n'), /^definition file x\.def: line 2: %apphelp \.hidden: not an app name/);
});

Scif('layout :: directories, 01-base.sh, scripts only for the sections given, labels with SCIF_APP_NAME', () => {
  const e = appEntries({ name: 'foo', run: 'echo hi\n', labels: { L: 'v' } });
  const paths = e.map((x) => x.path);
  for (const p of ['scif/apps/foo/bin', 'scif/apps/foo/lib', 'scif/apps/foo/scif/env', 'scif/data/foo/input', 'scif/data/foo/output']) assert.ok(paths.includes(p), p);
  const file = (p: string) => e.find((x) => x.path === p) as { content: string; mode: number } | undefined;
  assert.is(file('scif/apps/foo/scif/runscript')?.content, '#!/bin/sh\n\necho hi\n');
  assert.is(file('scif/apps/foo/scif/runscript')?.mode, 0o755);
  assert.is(file('scif/apps/foo/scif/test'), undefined);
  assert.match(file('scif/apps/foo/scif/env/01-base.sh')!.content, /^SCIF_APPDATA="\/scif\/data\/foo"$/m);
  assert.equal(JSON.parse(file('scif/apps/foo/scif/labels.json')!.content), { SCIF_APP_NAME: 'foo', L: 'v' });
});

Scif('94-appsbase.sh :: every app\'s variables; characters other than [A-Za-z0-9_] become _ in the names', () => {
  const s = appsBaseEnv([{ name: 'my-app.2', env: 'X=1', labels: {} }, { name: 'b', run: 'x', labels: {} }]);
  assert.match(s, /^SCIF_APPROOT_my_app_2=\/scif\/apps\/my-app\.2$/m);
  assert.match(s, /^export SCIF_APPENV_my_app_2="\/scif\/apps\/my-app\.2\/scif\/env\/90-environment\.sh"$/m);
  assert.not.match(s, /SCIF_APPRUN_my_app_2/);
  assert.match(s, /^export SCIF_APPRUN_b="\/scif\/apps\/b\/scif\/runscript"$/m);
});

Scif('%appinstall :: after %post, in the app\'s root, with its 01-base.sh sourced', () => {
  assert.is(installScript('foo', 'make\n'), '\ncd /\n. /scif/apps/foo/scif/env/01-base.sh\n\ncd /scif/apps/foo\nmake\n\ncd /\n');
});

Scif('--app :: APPTAINER_APPNAME and SINGULARITY_APPNAME set; the actions check the app first', () => {
  const env = composeEnv({ cleanenv: true, overrides: [], home: '/h', pwd: '/', imagePath: '/i.sif', user: 'u', shell: false, app: 'foo' });
  for (const n of ['APPTAINER_APPNAME', 'SINGULARITY_APPNAME']) assert.ok(env.ops.some((o) => o.op === 'set' && o.name === n && o.value === 'foo'), n);
  const none = composeEnv({ cleanenv: false, overrides: [], home: '/h', pwd: '/', imagePath: '/i.sif', user: 'u', shell: false });
  assert.not.ok(none.ops.some((o) => o.op === 'set' && o.name.endsWith('APPNAME')));
  for (const v of ['run', 'exec', 'test'] as const) assert.ok(appAction(v).startsWith('[ -d "/scif/apps/$SINGULARITY_APPNAME/" ] ||'), v);
  assert.match(appAction('run'), /exec "\/scif\/apps\/\$SINGULARITY_APPNAME\/scif\/runscript" "\$@"/);
});

Scif.run();
