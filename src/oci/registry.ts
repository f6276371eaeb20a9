// A client for one repository of a registry, per the OCI distribution spec, over Node's
// built-in fetch (undici):
//
//   GET /v2/NAME/manifests/REF   (Accept: OCI and Docker manifests and indexes)
//   GET /v2/NAME/blobs/DIGEST    (redirects followed; Authorization is dropped cross-origin)
//
// Auth: anonymous first; on 401 the WWW-Authenticate challenge decides: Bearer → a token from
// the realm (with Basic credentials when we have some), Basic → the credentials. A second
// 401 is "authentication refused". Transient failures (connection refused/reset/closed,
// 429, 5xx, a body cut short) are retried with exponential backoff, a bounded number of times.
import { createHash } from 'node:crypto';
import { CtrError } from '../errors.js';
import { basicAuth, credentialsFor, parseChallenge, type Challenge, type Credentials } from './auth.js';
import { type BlobCache, DigestMismatch, TruncatedBlob } from './cache.js';
import { MANIFEST_ACCEPT } from './manifest.js';
import { registryHost } from './reference.js';

export interface RegistryOptions {
  /** false: plain http (`--no-https`). */
  https: boolean;
  credentials?: Credentials;
  /** Attempts per request, first included (default 4). */
  attempts?: number;
  /** First backoff in ms, doubled each retry (default 250). */
  backoffMs?: number;
  onBytes?: (n: number) => void;
}

const MAX_MANIFEST = 4 << 20;
const TLS_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE',
]);
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED']);

/** A failure worth another attempt. */
class Transient extends Error {}

function causeOf(err: unknown): { code?: string; message: string } {
  let e = err as { code?: string; message?: string; cause?: unknown } | undefined;
  while (e?.cause && !e.code) e = e.cause as typeof e;
  return { code: e?.code, message: e?.message ?? String(err) };
}

export class Registry {
  private readonly base: string;
  private readonly host: string;
  private auth?: string;
  private readonly creds?: Credentials;
  private readonly attempts: number;
  private readonly backoffMs: number;

  constructor(registry: string, readonly repository: string, private readonly opts: RegistryOptions, private readonly what: string) {
    this.host = registryHost(registry);
    this.base = `${opts.https ? 'https' : 'http'}://${this.host}/v2/${repository}`;
    this.creds = opts.credentials ?? credentialsFor(registry);
    this.attempts = Math.max(1, opts.attempts ?? 4);
    this.backoffMs = opts.backoffMs ?? 250;
  }

  private fail(why: string, hint?: string): CtrError {
    return new CtrError(this.what, why, hint ? { hint } : {});
  }

  /** A network error → CtrError (permanent) or Transient. */
  private networkError(err: unknown): Error {
    if (err instanceof CtrError) return err;
    const { code, message } = causeOf(err);
    if ((code && TLS_CODES.has(code)) || /certificate/i.test(message)) {
      return this.fail(`TLS error talking to ${this.host}: ${message}`,
        'if the registry uses a private CA, trust it with NODE_EXTRA_CA_CERTS=/path/to/ca.pem; for a registry that speaks plain HTTP use --no-https');
    }
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(message)) {
      return this.fail(`TLS error talking to ${this.host}: the server does not speak TLS`, 'for a registry that speaks plain HTTP use --no-https');
    }
    if ((code && TRANSIENT_CODES.has(code)) || /terminated|other side closed|socket/i.test(message)) {
      return new Transient(`${message}${code && !message.includes(code) ? ` (${code})` : ''}`);
    }
    return this.fail(`cannot reach ${this.host}: ${message}`);
  }

  /** Run `attempt` until it succeeds or fails permanently, retrying Transient failures. */
  async retry<T>(label: string, attempt: () => Promise<T>): Promise<T> {
    let last = '';
    for (let i = 0; i < this.attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, this.backoffMs * 2 ** (i - 1) * (0.75 + Math.random() / 2)));
      try {
        return await attempt();
      } catch (err) {
        const e = err instanceof TruncatedBlob ? new Transient(err.why)
          : err instanceof Transient || err instanceof CtrError ? err : this.networkError(err);
        if (!(e instanceof Transient)) throw e;
        last = e.message;
      }
    }
    throw this.fail(`${label} failed after ${this.attempts} attempts: ${last}`);
  }

  /** One GET with auth; statuses worth retrying become Transient. */
  private async get(url: string, accept?: string): Promise<Response> {
    const send = async () => {
      const headers: Record<string, string> = {};
      if (accept) headers.Accept = accept;
      if (this.auth) headers.Authorization = this.auth;
      let res: Response;
      try {
        res = await fetch(url, { headers, redirect: 'follow' });
      } catch (err) {
        throw this.networkError(err);
      }
      if (res.status === 429 || res.status >= 500) {
        await res.body?.cancel().catch(() => {});
        throw new Transient(`HTTP ${res.status} ${res.statusText}`);
      }
      return res;
    };
    let res = await send();
    if (res.status !== 401) return res;
    const challenge = parseChallenge(res.headers.get('www-authenticate'));
    await res.body?.cancel().catch(() => {});
    const hadAuth = !!this.auth;
    await this.authenticate(challenge);
    res = await send();
    if (res.status === 401) {
      await res.body?.cancel().catch(() => {});
      throw this.fail(`authentication refused by ${this.host} (401 Unauthorized${hadAuth || this.creds ? '' : ', no credentials given'})`,
        'give credentials with CTR_REGISTRY_USER and CTR_REGISTRY_PASSWORD, or log in with docker/skopeo login (~/.docker/config.json)');
    }
    return res;
  }

  private async authenticate(ch: Challenge | undefined): Promise<void> {
    if (ch?.scheme === 'basic') {
      if (!this.creds) {
        throw this.fail(`${this.host} requires authentication (401 Unauthorized, no credentials given)`,
          'give credentials with CTR_REGISTRY_USER and CTR_REGISTRY_PASSWORD, or log in with docker/skopeo login (~/.docker/config.json)');
      }
      this.auth = basicAuth(this.creds);
      return;
    }
    if (ch?.scheme !== 'bearer' || !ch.params.realm) throw this.fail(`${this.host} answered 401 with no usable WWW-Authenticate challenge`);
    const url = new URL(ch.params.realm);
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    url.searchParams.set('scope', ch.params.scope ?? `repository:${this.repository}:pull`);
    const headers: Record<string, string> = this.creds ? { Authorization: basicAuth(this.creds) } : {};
    const res = await this.retry('token request', async () => {
      let r: Response;
      try {
        r = await fetch(url, { headers });
      } catch (err) {
        throw this.networkError(err);
      }
      if (r.status === 429 || r.status >= 500) throw new Transient(`token server: HTTP ${r.status}`);
      return r;
    });
    const body = await res.text().catch(() => '');
    if (res.status === 401 || res.status === 403) {
      throw this.fail(`authentication refused by the token server ${url.host} (${res.status})`,
        'check CTR_REGISTRY_USER and CTR_REGISTRY_PASSWORD or ~/.docker/config.json');
    }
    if (!res.ok) throw this.fail(`token server ${url.host} answered HTTP ${res.status}`);
    let token: unknown;
    try {
      const j = JSON.parse(body);
      token = j.token ?? j.access_token;
    } catch { /* below */ }
    if (typeof token !== 'string' || !token) throw this.fail(`token server ${url.host} sent no token`);
    this.auth = `Bearer ${token}`;
  }

  private async errorOf(res: Response): Promise<string> {
    const body = await res.text().catch(() => '');
    try {
      const m = JSON.parse(body)?.errors?.[0]?.message;
      if (typeof m === 'string' && m) return m.toLowerCase();
    } catch { /* not JSON */ }
    return `HTTP ${res.status} ${res.statusText}`.trim();
  }

  /** The manifest or index at `reference` (tag or digest), checked against a digest reference. */
  async manifest(reference: string): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
    return this.retry(`fetching manifest ${reference}`, async () => {
      const res = await this.get(`${this.base}/manifests/${reference}`, MANIFEST_ACCEPT);
      if (res.status === 404) {
        const msg = await this.errorOf(res);
        throw this.fail(msg === 'manifest unknown' ? 'manifest unknown' : `manifest unknown: ${msg}`);
      }
      if (!res.ok) throw this.fail(`fetching manifest ${reference}: ${await this.errorOf(res)}`);
      const len = Number(res.headers.get('content-length') ?? 0);
      if (len > MAX_MANIFEST) throw this.fail(`manifest ${reference} is too big (${len} bytes)`);
      let bytes: Buffer;
      try {
        bytes = Buffer.from(await res.arrayBuffer());
      } catch (err) {
        throw this.networkError(err);
      }
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      if (reference.startsWith('sha256:') && digest !== reference) {
        throw new DigestMismatch(this.what, `manifest ${reference}: digest mismatch: got ${digest}`);
      }
      return { bytes, mediaType: res.headers.get('content-type') ?? '', digest };
    });
  }

  /** Make sure the blob is in the cache (downloaded and verified); returns its path. */
  async blob(digest: string, size: number, cache: BlobCache, label: string): Promise<string> {
    const name = { what: this.what, label };
    if (await cache.has(digest, size)) return cache.path(digest);
    return this.retry(`downloading ${label}`, async () => {
      const res = await this.get(`${this.base}/blobs/${digest}`);
      if (res.status === 404) throw this.fail(`${label}: blob unknown to the registry (404)`);
      if (!res.ok || !res.body) throw this.fail(`downloading ${label}: ${await this.errorOf(res)}`);
      const onBytes = this.opts.onBytes;
      const body = res.body;
      const self = this;
      async function* chunks() {
        const reader = body.getReader();
        try {
          for (;;) {
            let r: ReadableStreamReadResult<Uint8Array>;
            try {
              r = await reader.read();
            } catch (err) {
              throw self.networkError(err);
            }
            if (r.done) return;
            onBytes?.(r.value.length);
            yield r.value;
          }
        } finally {
          reader.releaseLock();
          await body.cancel().catch(() => {});
        }
      }
      return cache.store(digest, size, chunks(), name);
    });
  }
}
