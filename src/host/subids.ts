// The user's subordinate id ranges (/etc/subuid, /etc/subgid) and the setuid helpers
// that map them (newuidmap, newgidmap from Debian's uidmap): what --fakeroot needs to be
// root over many ids. Read only when fake root is asked for.
import { accessSync, constants, readFileSync } from 'node:fs';
import type { SubIds } from '../plan/words.js';

/** What was found: the ranges and helpers, or why they can't be used. */
export type SubIdFacts = { ok: true; subids: SubIds } | { ok: false; why: string };

/** COUNT ids are enough for a distribution's system users and nobody (65534). */
const WANTED = 65536;

export function findSubIds(user: string, uid: number): SubIdFacts {
  const u = range('/etc/subuid', user, uid);
  if (typeof u === 'string') return { ok: false, why: u };
  const g = range('/etc/subgid', user, uid);
  if (typeof g === 'string') return { ok: false, why: g };
  const newuidmap = helper('newuidmap');
  const newgidmap = helper('newgidmap');
  if (!newuidmap || !newgidmap) return { ok: false, why: 'newuidmap/newgidmap not installed (Debian package uidmap)' };
  return { ok: true, subids: { newuidmap, newgidmap, uidStart: u[0], uidCount: u[1], gidStart: g[0], gidCount: g[1] } };
}

/** The first entry for USER (by name or by uid) in FILE: [start, count], or why not. */
function range(file: string, user: string, uid: number): [number, number] | string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return `no ${file}`;
  }
  for (const line of text.split('\n')) {
    const [name, start, count] = line.trim().split(':');
    if (name !== user && name !== String(uid)) continue;
    const s = Number(start), c = Number(count);
    if (!Number.isSafeInteger(s) || !Number.isSafeInteger(c) || s < 1 || c < 1 || s + c > 2 ** 32) continue;
    return [s, Math.min(c, WANTED)];
  }
  return `no ${file} entry for ${user}`;
}

function helper(name: string): string | undefined {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/usr/local/bin']) {
    try {
      accessSync(`${dir}/${name}`, constants.X_OK);
      return `${dir}/${name}`;
    } catch { /* next */ }
  }
  return undefined;
}
