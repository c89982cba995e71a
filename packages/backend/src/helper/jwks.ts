/**
 * Public keys for the asymmetric mode (docs/PROTOCOL.md §5.2): the gateway serves its
 * Ed25519 keys as a JWKS document at GET /_gateway/jwks.json. A backend holds them as
 * a key source: fixed (a document given at start-up) or remote (fetched, cached, and
 * fetched again when a token names a kid it does not know, as happens after a rotation).
 */
import { createPublicKey } from 'node:crypto';
import { ed25519VerifyingKey, type VerifyingKey } from '../protocol/index.ts';
import { JWKS_UNAVAILABLE, SessionGatewayError } from './errors.ts';

/**
 * One JWK as the gateway serves it.
 *
 * @example
 * const jwk: JsonWebKeyEntry = { kty: 'OKP', crv: 'Ed25519', x: 'gQn33x…', kid: 'ed-2026-11', alg: 'EdDSA', use: 'sig' };
 */
export interface JsonWebKeyEntry {
  kty?: string;
  crv?: string;
  x?: string;
  kid?: string;
  alg?: string;
  use?: string;
  [field: string]: unknown;
}

/**
 * A JWKS document (RFC 7517 §5), as served at GET /_gateway/jwks.json.
 *
 * @example
 * const reader = createSessionReader({ mount: 'shop', alg: 'EdDSA', jwks: { keys: [jwk] } });
 */
export interface JsonWebKeySet {
  keys: readonly JsonWebKeyEntry[];
}

/**
 * Where a reader gets its token-verifying keys in EdDSA mode: staticJwks, remoteJwks, or your own.
 *
 * @example
 * const source: VerifyingKeySource = remoteJwks('http://gateway/_gateway/jwks.json');
 * await source.ready();
 */
export interface VerifyingKeySource {
  /** The keys held now; undefined until the first successful load. */
  current(): ReadonlyMap<string, VerifyingKey> | undefined;
  /** Resolves once keys are held (loading them if needed); rejects with `jwks_unavailable` if none can be had. */
  ready(): Promise<void>;
  /** Called after an unknown kid: loads the document again unless that was tried within the cooldown. True when new keys were loaded. */
  refresh(): Promise<boolean>;
}

/**
 * Seconds between two fetches caused by unknown kids: a flood of forged kids costs the gateway one request per period.
 *
 * @example
 * remoteJwks(url, { cooldownSeconds: DEFAULT_JWKS_COOLDOWN_SECONDS * 2 });
 */
export const DEFAULT_JWKS_COOLDOWN_SECONDS = 30;
/**
 * Seconds a fetched document is trusted before it is fetched again, so a key removed at the gateway stops verifying.
 *
 * @example
 * remoteJwks(url, { maxAgeSeconds: DEFAULT_JWKS_MAX_AGE_SECONDS / 2 });
 */
export const DEFAULT_JWKS_MAX_AGE_SECONDS = 600;
/**
 * Milliseconds to wait for the JWKS document.
 *
 * @example
 * remoteJwks(url, { timeoutMs: DEFAULT_JWKS_TIMEOUT_MS });
 */
export const DEFAULT_JWKS_TIMEOUT_MS = 5000;

function isUsableEd25519(jwk: JsonWebKeyEntry): jwk is JsonWebKeyEntry & { kid: string; x: string } {
  return jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && typeof jwk.x === 'string' && typeof jwk.kid === 'string' &&
    jwk.kid !== '' && (jwk.use === undefined || jwk.use === 'sig') && (jwk.alg === undefined || jwk.alg === 'EdDSA');
}

/**
 * Builds node:crypto public keys from a JWKS document, kid → key. Keys that are not
 * Ed25519 signing keys with a kid are skipped; a document is not refused for holding them.
 *
 * @example
 * const keys = jwksKeys(await (await fetch('http://gateway/_gateway/jwks.json')).json());
 */
export function jwksKeys(document: unknown): Map<string, VerifyingKey> {
  const keys = new Map<string, VerifyingKey>();
  const list = (document as Partial<JsonWebKeySet> | null)?.keys;
  if (!Array.isArray(list)) return keys;
  for (const jwk of list as unknown[]) {
    if (jwk === null || typeof jwk !== 'object' || !isUsableEd25519(jwk as JsonWebKeyEntry)) continue;
    const { kid, x } = jwk as { kid: string; x: string };
    try {
      // Only the public members: a private `d` served by mistake must never become a signing key here.
      keys.set(kid, ed25519VerifyingKey(kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })));
    } catch {
      // An unparsable x is skipped like any other unusable entry.
    }
  }
  return keys;
}

/**
 * A key source over a fixed JWKS document. Throws a `jwks_unavailable` error at once when the
 * document holds no Ed25519 signing key, so a wrong document fails at start-up.
 *
 * @example
 * const reader = createSessionReader({ mount: 'shop', alg: 'EdDSA', jwks: staticJwks(document) });
 */
export function staticJwks(document: JsonWebKeySet): VerifyingKeySource {
  const keys = jwksKeys(document);
  if (keys.size === 0) throw new SessionGatewayError(JWKS_UNAVAILABLE, 'the JWKS document holds no Ed25519 signing key with a kid');
  return {
    current: () => keys,
    ready: async () => {},
    refresh: async () => false,
  };
}

/**
 * Options of remoteJwks; every one has a named default.
 *
 * @example
 * const options: RemoteJwksOptions = { cooldownSeconds: 30, maxAgeSeconds: 600, timeoutMs: 5000 };
 */
export interface RemoteJwksOptions {
  /** Minimum seconds between fetches triggered by unknown kids or failures; default DEFAULT_JWKS_COOLDOWN_SECONDS. */
  cooldownSeconds?: number;
  /** Seconds before a held document is fetched again; default DEFAULT_JWKS_MAX_AGE_SECONDS. */
  maxAgeSeconds?: number;
  /** Fetch timeout; default DEFAULT_JWKS_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Defaults to the global fetch. */
  fetch?: typeof globalThis.fetch;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: () => number;
}

/**
 * A key source that fetches the gateway's JWKS document, caches it, and fetches it again
 * after an unknown kid (at most once per cooldown) or when it is older than maxAge. When a
 * refetch fails the keys already held stay in use.
 *
 * @example
 * const jwks = remoteJwks('http://gateway/_gateway/jwks.json', { cooldownSeconds: 30 });
 * const reader = createSessionReader({ mount: 'shop', alg: 'EdDSA', jwks, keys: keysFromEnv().keys });
 * await reader.ready(); // optional: load before the first request
 */
export function remoteJwks(url: string | URL, options: RemoteJwksOptions = {}): VerifyingKeySource {
  const cooldownMs = (options.cooldownSeconds ?? DEFAULT_JWKS_COOLDOWN_SECONDS) * 1000;
  const maxAgeMs = (options.maxAgeSeconds ?? DEFAULT_JWKS_MAX_AGE_SECONDS) * 1000;
  const timeoutMs = options.timeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS;
  const clock = options.clock ?? Date.now;
  const target = String(url);
  let keys: Map<string, VerifyingKey> | undefined;
  let fetchedAt = -Infinity;
  let attemptedAt = -Infinity; // any fetch: throttles retries while the gateway fails
  let refreshedAt = -Infinity; // fetches caused by unknown kids: throttles forged kids
  let lastError: SessionGatewayError | undefined;
  let inFlight: Promise<boolean> | undefined;

  async function download(): Promise<Map<string, VerifyingKey>> {
    const fetchImpl = options.fetch ?? globalThis.fetch;
    const response = await fetchImpl(target, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`GET ${target} answered HTTP ${response.status}`);
    const loaded = jwksKeys(await response.json());
    if (loaded.size === 0) throw new Error(`${target} holds no Ed25519 signing key with a kid`);
    return loaded;
  }

  /** Starts one fetch, or joins the one under way; rejects with jwks_unavailable on failure. */
  function fetchOnce(): Promise<boolean> {
    if (inFlight) return inFlight;
    attemptedAt = clock();
    inFlight = download().then(
      function loaded(fresh) {
        keys = fresh;
        fetchedAt = clock();
        lastError = undefined;
        return true;
      },
      function failed(cause: unknown) {
        lastError = new SessionGatewayError(JWKS_UNAVAILABLE, `cannot load the JWKS document: ${(cause as Error)?.message ?? String(cause)}`, { cause });
        throw lastError;
      },
    ).finally(function settled() {
      inFlight = undefined;
    });
    return inFlight;
  }

  const coolingDown = (since: number) => clock() - since < cooldownMs;

  return {
    current: () => keys,
    async ready() {
      if (keys && clock() - fetchedAt < maxAgeMs) return;
      if (inFlight) {
        await inFlight.catch(function keepHeldKeys(error: unknown) { if (!keys) throw error; });
        return;
      }
      if (coolingDown(attemptedAt)) {
        if (!keys) throw lastError ?? new SessionGatewayError(JWKS_UNAVAILABLE, 'the JWKS document is not loaded yet');
        return;
      }
      // A stale document whose refetch fails is still better than refusing every request.
      await fetchOnce().catch(function keepHeldKeys(error: unknown) { if (!keys) throw error; });
    },
    async refresh() {
      if (inFlight) return inFlight;
      if (coolingDown(refreshedAt)) return false;
      refreshedAt = clock();
      return fetchOnce();
    },
  };
}

/** Internal: true for a JWKS document, false for a key source. */
export function isJsonWebKeySet(value: JsonWebKeySet | VerifyingKeySource): value is JsonWebKeySet {
  return Array.isArray((value as Partial<JsonWebKeySet>).keys);
}
