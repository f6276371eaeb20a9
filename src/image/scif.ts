// SCIF apps (the Scientific Filesystem) as Apptainer lays them out in an image: each app
// NAME under /scif/apps/NAME (bin/, lib/, scif/ with its env scripts, runscript,
// startscript, test, help and labels.json) and /scif/data/NAME (input/, output/), the
// global SCIF_*_NAME variables in /.singularity.d/env/94-appsbase.sh, and the script that
// makes `--app NAME` take effect at launch in 95-apps.sh (PATH, LD_LIBRARY_PATH, the app's
// own environment). Pure: entries out; builder/apps.ts writes them.
import type { LayoutEntry } from './layout.js';

export const SCIF_APPS = '/scif/apps';
/** What an app may be called: a directory under /scif/apps and a word in shell code. */
export const APP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** Why a name is not one, for the error line. */
export const APP_NAME_RULE = "letters, digits, '_', '.', '-', not starting with '.' or '-'";
export const SCIF_DATA = '/scif/data';

/** The text of an app's sections, as builder/apps.ts hands them over. */
export interface AppParts {
  name: string;
  run?: string;
  start?: string;
  test?: string;
  help?: string;
  env?: string;
  labels: Record<string, string>;
}

const script = (body: string) => `#!/bin/sh\n\n${body}`;

/** The app's directories and files (not %appfiles, not what %appinstall makes). */
export function appEntries(app: AppParts): LayoutEntry[] {
  const root = `scif/apps/${app.name}`;
  const meta = `${root}/scif`;
  const dirs = [root, meta, `${root}/bin`, `${root}/lib`, `${meta}/env`, `scif/data/${app.name}/input`, `scif/data/${app.name}/output`];
  const out: LayoutEntry[] = ['scif', 'scif/apps', 'scif/data', `scif/data/${app.name}`, ...dirs].map((path) => ({ path, type: 'dir', mode: 0o755 }));
  out.push({ path: `${meta}/env/01-base.sh`, type: 'file', mode: 0o755, content: baseEnv(app.name) });
  if (app.env) out.push({ path: `${meta}/env/90-environment.sh`, type: 'file', mode: 0o755, content: app.env });
  if (app.run) out.push({ path: `${meta}/runscript`, type: 'file', mode: 0o755, content: script(app.run) });
  if (app.start) out.push({ path: `${meta}/startscript`, type: 'file', mode: 0o755, content: script(app.start) });
  if (app.test) out.push({ path: `${meta}/test`, type: 'file', mode: 0o755, content: script(app.test) });
  if (app.help) out.push({ path: `${meta}/runscript.help`, type: 'file', mode: 0o644, content: app.help });
  out.push({ path: `${meta}/labels.json`, type: 'file', mode: 0o644, content: JSON.stringify({ SCIF_APP_NAME: app.name, ...app.labels }, null, '\t') });
  return out;
}

/** The app's own variables (its scif/env/01-base.sh), sourced by %appinstall and --app. */
function baseEnv(name: string): string {
  return [
    '#!/bin/sh', '',
    `SCIF_APPNAME=${name}`,
    `SCIF_APPROOT="${SCIF_APPS}/${name}"`,
    `SCIF_APPMETA="${SCIF_APPS}/${name}/scif"`,
    `SCIF_DATA="${SCIF_DATA}"`,
    `SCIF_APPDATA="${SCIF_DATA}/${name}"`,
    `SCIF_APPINPUT="${SCIF_DATA}/${name}/input"`,
    `SCIF_APPOUTPUT="${SCIF_DATA}/${name}/output"`,
    'export SCIF_APPDATA SCIF_APPNAME SCIF_APPROOT SCIF_APPMETA SCIF_APPINPUT SCIF_APPOUTPUT SCIF_DATA', '',
  ].join('\n');
}

/** Every app's SCIF_*_NAME variables, for all launches (94-appsbase.sh). A name's
 * characters other than letters, digits and '_' become '_' in the variable names. */
export function appsBaseEnv(apps: ReadonlyArray<AppParts>): string {
  let out = '#!/bin/sh\n';
  for (const app of apps) {
    const v = app.name.replace(/[^A-Za-z0-9_]/g, '_');
    const root = `${SCIF_APPS}/${app.name}`;
    out += `\n## App Global Exports For: ${app.name}\n` +
      `SCIF_APPDATA_${v}=${SCIF_DATA}/${app.name}\nSCIF_APPMETA_${v}=${root}/scif\nSCIF_APPROOT_${v}=${root}\n` +
      `SCIF_APPBIN_${v}=${root}/bin\nSCIF_APPLIB_${v}=${root}/lib\n` +
      `export SCIF_APPDATA_${v} SCIF_APPMETA_${v} SCIF_APPROOT_${v} SCIF_APPBIN_${v} SCIF_APPLIB_${v}\n`;
    if (app.env) out += `export SCIF_APPENV_${v}="${root}/scif/env/90-environment.sh"\n`;
    out += `export SCIF_APPLABELS_${v}="${root}/scif/labels.json"\n`;
    if (app.run) out += `export SCIF_APPRUN_${v}="${root}/scif/runscript"\n`;
    if (app.start) out += `export SCIF_APPSTART_${v}="${root}/scif/startscript"\n`;
  }
  return out;
}

/**
 * 95-apps.sh: with SINGULARITY_APPNAME set (ctr's --app sets it, as Apptainer does), the
 * app's bin/ and root on PATH, its lib/ first on LD_LIBRARY_PATH, then its 01-base.sh and
 * 90-environment.sh sourced; an app the image lacks is an error. Our own text of
 * Apptainer's behaviour.
 */
export const APPS_ENV_SCRIPT = `#!/bin/sh
# SCIF: the environment of the app chosen with --app (SINGULARITY_APPNAME).
if [ -n "\${SINGULARITY_APPNAME:-}" ]; then
    export SINGULARITY_APPNAME
    if [ ! -d "${SCIF_APPS}/$SINGULARITY_APPNAME/" ]; then
        echo "Could not locate the container application: $SINGULARITY_APPNAME" >&2
        exit 1
    fi
    SCIF_APPS="${SCIF_APPS}"
    SCIF_APPROOT="${SCIF_APPS}/$SINGULARITY_APPNAME"
    export SCIF_APPS SCIF_APPROOT
    PATH="$SCIF_APPROOT:$PATH"
    [ -d "$SCIF_APPROOT/bin" ] && PATH="$SCIF_APPROOT/bin:$PATH"
    if [ -d "$SCIF_APPROOT/lib" ]; then
        LD_LIBRARY_PATH="$SCIF_APPROOT/lib\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export LD_LIBRARY_PATH
    fi
    [ -f "$SCIF_APPROOT/scif/env/01-base.sh" ] && . "$SCIF_APPROOT/scif/env/01-base.sh"
    [ -f "$SCIF_APPROOT/scif/env/90-environment.sh" ] && . "$SCIF_APPROOT/scif/env/90-environment.sh"
    export PATH
fi
`;

/** What %appinstall NAME runs, after %post in the same shell, as Apptainer appends it:
 * in the app's root, with its 01-base.sh variables. */
export function installScript(name: string, body: string): string {
  const root = `${SCIF_APPS}/${name}`;
  return `\ncd /\n. ${root}/scif/env/01-base.sh\n\ncd ${root}\n${body}\ncd /\n`;
}

/** Where an app the image lacks stops a launch (the image's 95-apps.sh may say so first). */
const APP_THERE = `[ -d "${SCIF_APPS}/$SINGULARITY_APPNAME/" ] || { echo "ctr: error: app $SINGULARITY_APPNAME: not in the image (no ${SCIF_APPS}/$SINGULARITY_APPNAME)" >&2; exit 1; }; `;

/** The command of `run`, `exec` and `test` with --app, as Apptainer's action scripts:
 * /bin/sh -c SCRIPT ctr-app ARGS..., the app named by SINGULARITY_APPNAME. */
export function appAction(verb: 'run' | 'exec' | 'test'): string {
  const meta = `${SCIF_APPS}/$SINGULARITY_APPNAME/scif`;
  if (verb === 'exec') return `${APP_THERE}exec "$@"`;
  const [file, what] = verb === 'run' ? ['runscript', 'no runscript'] : ['test', 'no test'];
  return `${APP_THERE}if [ -x "${meta}/${file}" ]; then exec "${meta}/${file}" "$@"; fi; ` +
    `echo "ctr: error: app $SINGULARITY_APPNAME: ${what} (${meta}/${file})" >&2; exit 1`;
}
