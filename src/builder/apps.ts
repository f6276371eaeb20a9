// A definition file's SCIF apps, written into the root file system being built, at the
// point Apptainer makes them: after the bootstrap, before %setup and %files. %appfiles
// are copied from the host (links followed, as Apptainer's `cp -fLr`); %appinstall
// becomes the script that runs after %post (installScript). Layout: image/scif.ts.
import { cp, lstat, mkdir } from 'node:fs/promises';
import { dirname, join, normalize, resolve } from 'node:path';
import { CtrError, describeSystemError } from '../errors.js';
import { APPS_ENV_SCRIPT, appEntries, appsBaseEnv, installScript, type AppParts } from '../image/scif.js';
import { parseLabels, type AppDefinition } from './definition.js';
import { writeEntries } from './metadata.js';

/** Writes every app; returns the %appinstall script (empty when no app has one). */
export async function writeApps(rootfs: string, apps: readonly AppDefinition[]): Promise<string> {
  if (!apps.length) return '';
  const parts: AppParts[] = apps.map((a) => ({
    name: a.name, run: a.sections.apprun, start: a.sections.appstart, test: a.sections.apptest,
    help: a.sections.apphelp, env: a.sections.appenv, labels: parseLabels(a.sections.applabels),
  }));
  for (const p of parts) {
    const entries = appEntries(p);
    // The base image's links must not take these writes out of the tree (to the host).
    for (const e of entries) await noLinkOnTheWay(rootfs, e.path);
    await writeEntries(rootfs, entries);
  }
  await writeEntries(rootfs, [
    { path: '.singularity.d/env', type: 'dir', mode: 0o755 },
    { path: '.singularity.d/env/94-appsbase.sh', type: 'file', mode: 0o755, content: appsBaseEnv(parts) },
    { path: '.singularity.d/env/95-apps.sh', type: 'file', mode: 0o755, content: APPS_ENV_SCRIPT },
  ]);
  for (const a of apps) await copyAppFiles(rootfs, a);
  return apps.map((a) => (a.sections.appinstall ? installScript(a.name, a.sections.appinstall) : '')).join('');
}

/** %appfiles NAME: `SRC [DST]` lines, DST inside the app's root (default: SRC there). */
async function copyAppFiles(rootfs: string, app: AppDefinition): Promise<void> {
  const root = join(rootfs, 'scif/apps', app.name);
  for (const raw of (app.sections.appfiles ?? '').split('\n')) {
    const line = raw.split('#')[0].trim();
    if (!line) continue;
    const [src, dst = src] = line.split(/\s+(.*)/s).filter(Boolean);
    const rel = normalize(`/${dst.trim()}`); // a leading '/..' stays at the app's root
    const to = join(root, rel);
    await noLinkOnTheWay(rootfs, join('scif/apps', app.name, rel));
    await mkdir(dirname(to), { recursive: true });
    await cp(resolve(src), to, { recursive: true, dereference: true, force: true, preserveTimestamps: true }).catch((err) => {
      throw new CtrError(`%appfiles ${app.name} ${src}`, describeSystemError(err));
    });
  }
}

/** Refuses REL under ROOT when one of its parts that exist already is a symbolic link. */
async function noLinkOnTheWay(root: string, rel: string): Promise<void> {
  let at = root;
  for (const part of rel.split('/').filter(Boolean)) {
    at = join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st) return;
    if (st.isSymbolicLink()) throw new CtrError(`SCIF app path /${rel}`, `/${at.slice(root.length + 1)} in the base image is a symbolic link`);
  }
}
