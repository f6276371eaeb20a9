// Image references, parsed without touching the network or the file system:
//
//   docker://[REGISTRY/]REPO[:TAG][@DIGEST]   a registry (Docker Hub when REGISTRY is absent)
//   oci:DIR[:TAG]                             an OCI image layout directory
//   oci-archive:PATH[:TAG]                    a tar of an OCI image layout
//   docker-archive:PATH                       a `docker save` tarball
//
// REGISTRY is recognised as Docker's reference grammar does: the first component holds a
// '.' or ':' or is 'localhost'. Docker Hub's one-component names get 'library/'.
import { CtrError } from '../errors.js';

export type ImageRef =
  | { transport: 'docker'; registry: string; repository: string; tag?: string; digest?: string; raw: string }
  | { transport: 'oci'; path: string; tag?: string; raw: string }
  | { transport: 'oci-archive'; path: string; tag?: string; raw: string }
  | { transport: 'docker-archive'; path: string; raw: string };

export const DOCKER_HUB = 'docker.io';
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function parseReference(ref: string): ImageRef {
  const bad = (why: string) => new CtrError(`image reference ${JSON.stringify(ref)}`, why, {
    hint: 'use docker://[REGISTRY/]REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:PATH or docker-archive:PATH',
  });
  const colon = ref.indexOf(':');
  const scheme = colon < 0 ? '' : ref.slice(0, colon);
  const rest = ref.slice(colon + 1);
  switch (scheme) {
    case 'docker': {
      if (!rest.startsWith('//')) throw bad("expected docker://");
      return parseDocker(rest.slice(2), ref, bad);
    }
    case 'oci': case 'oci-archive': {
      // The tag follows the last ':' when what follows has no '/' (paths may hold ':').
      const m = /^(.*):([^:/]+)$/.exec(rest);
      const [path, tag] = m ? [m[1], m[2]] : [rest, undefined];
      if (!path) throw bad('no path');
      return { transport: scheme, path, ...(tag !== undefined ? { tag } : {}), raw: ref };
    }
    case 'docker-archive':
      if (!rest) throw bad('no path');
      return { transport: 'docker-archive', path: rest, raw: ref };
    default:
      throw bad(scheme ? `unknown transport ${JSON.stringify(scheme)}` : 'no transport');
  }
}

function parseDocker(s: string, raw: string, bad: (why: string) => CtrError): ImageRef {
  let digest: string | undefined;
  const at = s.indexOf('@');
  if (at >= 0) {
    digest = s.slice(at + 1);
    s = s.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw bad(`invalid digest ${JSON.stringify(digest)} (expected sha256:<64 hex digits>)`);
  }
  let tag: string | undefined;
  const lastSlash = s.lastIndexOf('/');
  const tagColon = s.indexOf(':', lastSlash + 1);
  if (tagColon >= 0) {
    tag = s.slice(tagColon + 1);
    s = s.slice(0, tagColon);
    if (!TAG_RE.test(tag)) throw bad(`invalid tag ${JSON.stringify(tag)}`);
  }
  const parts = s.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && (/[.:]/.test(parts[0]) || parts[0] === 'localhost')) registry = parts.shift()!;
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  let repository = parts.join('/');
  if (registry === DOCKER_HUB && parts.length === 1) repository = `library/${repository}`;
  if (!repository || !REPO_RE.test(repository)) throw bad(`invalid repository name ${JSON.stringify(repository)}`);
  if (!tag && !digest) tag = 'latest';
  return { transport: 'docker', registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}), raw };
}

/** The host:port to connect to for a registry name. */
export function registryHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
}
