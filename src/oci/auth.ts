// Registry credentials and challenges. Credentials come from CTR_REGISTRY_USER and
// CTR_REGISTRY_PASSWORD, else from Docker's config ($DOCKER_CONFIG/config.json, default
// ~/.docker/config.json: `auths` → base64 "user:password" or username/password fields).
// Credential helpers (`credsStore`) are not run.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_HUB } from './reference.js';

export interface Credentials { username: string; password: string }

export function credentialsFor(registry: string, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  if (env.CTR_REGISTRY_USER && env.CTR_REGISTRY_PASSWORD !== undefined) {
    return { username: env.CTR_REGISTRY_USER, password: env.CTR_REGISTRY_PASSWORD };
  }
  const file = join(env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker'), 'config.json');
  let auths: Record<string, { auth?: string; username?: string; password?: string }>;
  try {
    auths = JSON.parse(readFileSync(file, 'utf8')).auths ?? {};
  } catch {
    return undefined;
  }
  const keys = registry === DOCKER_HUB
    ? ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io']
    : [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
  for (const k of keys) {
    const a = auths[k];
    if (!a) continue;
    if (a.auth) {
      const s = Buffer.from(a.auth, 'base64').toString('utf8');
      const i = s.indexOf(':');
      if (i > 0) return { username: s.slice(0, i), password: s.slice(i + 1) };
    }
    if (a.username && a.password !== undefined) return { username: a.username, password: a.password };
  }
  return undefined;
}

export function basicAuth(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

export interface Challenge { scheme: string; params: Record<string, string> }

/** `Bearer realm="…",service="…",scope="…"` → scheme and parameters (RFC 7235). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let p = re.exec(m[2]); p; p = re.exec(m[2])) {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  }
  return { scheme: m[1].toLowerCase(), params };
}
