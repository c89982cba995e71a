/**
 * The reader: built once at start-up from the mount name and keys, it turns a request's
 * headers into a verified GatewaySession. Verification is src/protocol's verifyRequest (token, then nonce);
 * this module only chooses the keys and the clock and wraps the result.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  DEFAULT_CLOCK_SKEW_SECONDS, RID_HEADER, TOKEN_HEADER, verifyRequest,
  type Algorithm, type JsonObject, type VerifyingKey,
} from '../protocol/index.ts';
import { fromProtocolError, JWKS_UNAVAILABLE, SessionGatewayConfigError, SessionGatewayError } from './errors.ts';
import { isJsonWebKeySet, remoteJwks, staticJwks, type JsonWebKeySet, type VerifyingKeySource } from './jwks.ts';
import { parseMountKeys, type MountKeys } from './keys.ts';
import { anonymousSession, verifiedSession, type GatewaySession } from './session.ts';

/**
 * Node's `req.headers` or a Fetch API `Headers` (`request.headers`).
 *
 * @example
 * reader.read(req.headers);          // node:http, Express
 * reader.read(request.headers);      // Fetch API
 */
export type HeaderSource = IncomingHttpHeaders | Headers;

/**
 * Options of createSessionReader; unknown options are refused.
 *
 * @example
 * const options: SessionReaderOptions = { mount: 'shop', keys: { '2026-11': keyText }, skewSeconds: 10 };
 */
export interface SessionReaderOptions {
  /** This backend's mount name; tokens issued for any other mount are refused (`wrong_audience`). */
  mount: string;
  /** kid → derived mount key, newest first. Verifies HS256 tokens; the newest signs write-backs. */
  keys?: MountKeys;
  /** The token algorithm the gateway is configured with; default 'HS256'. */
  alg?: Algorithm;
  /** EdDSA only: the gateway's JWKS document, its URL (fetched with remoteJwks defaults), or a key source. */
  jwks?: JsonWebKeySet | VerifyingKeySource | string | URL;
  /** Clock skew allowed each way, seconds; default DEFAULT_CLOCK_SKEW_SECONDS (10). */
  skewSeconds?: number;
  /** The current time in epoch seconds; injectable for tests. */
  now?: () => number;
}

/**
 * Verifies request tokens for one mount. Create it once; it is safe to share between requests.
 *
 * @example
 * const reader: SessionReader<ShopData> = createSessionReader<ShopData>({ ...keysFromEnv() });
 * const session = await reader.readAsync(req.headers);
 */
export interface SessionReader<T extends object = JsonObject> {
  readonly mount: string;
  readonly alg: Algorithm;
  /** Verifies the token header synchronously with the keys held now; throws SessionGatewayError. */
  read<U extends object = T>(headers: HeaderSource): GatewaySession<U>;
  /** Like read, but first loads a remote JWKS if needed and refetches it once after an unknown kid. */
  readAsync<U extends object = T>(headers: HeaderSource): Promise<GatewaySession<U>>;
  /** read() over a Fetch API Request (Hono, Next.js route handlers, Bun, Deno). */
  fromRequest<U extends object = T>(request: Request): GatewaySession<U>;
  /** The anonymous, unchangeable session that optional mode gives when verification failed. */
  anonymous<U extends object = T>(error: SessionGatewayError): GatewaySession<U>;
  /** Resolves when the verifying keys are held (a remote JWKS is loaded); await it before listening. */
  ready(): Promise<void>;
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set(['mount', 'keys', 'alg', 'jwks', 'skewSeconds', 'now']);
const ALGORITHMS: ReadonlySet<string> = new Set<Algorithm>(['HS256', 'EdDSA']);
const epochSeconds = () => Math.floor(Date.now() / 1000);
const NO_KEYS: ReadonlyMap<string, VerifyingKey> = new Map();

/**
 * The token header's value. Copies in several letter cases of a plain object, or repeated
 * headers, are joined with ", " as Node joins them: such a value never verifies (`malformed`).
 */
/** One header's value; several copies are joined with ", " (and then fail verification). */
function headerFrom(headers: HeaderSource, lowerName: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(lowerName) ?? undefined;
  const record = headers as IncomingHttpHeaders;
  const direct = record[lowerName];
  if (typeof direct === 'string') return direct;
  const values: string[] = [];
  for (const name of Object.keys(record)) {
    if (name.toLowerCase() !== lowerName) continue;
    const value = record[name];
    if (Array.isArray(value)) values.push(...value);
    else if (typeof value === 'string') values.push(value);
  }
  return values.length === 0 ? undefined : values.join(', ');
}

const tokenFrom = (headers: HeaderSource) => headerFrom(headers, TOKEN_HEADER);

function keySourceOf(jwks: SessionReaderOptions['jwks'], problems: string[]): VerifyingKeySource | undefined {
  if (jwks === undefined) return undefined;
  if (typeof jwks === 'string' || jwks instanceof URL) {
    if (!URL.canParse(String(jwks))) problems.push('jwks: not a URL');
    else return remoteJwks(jwks);
    return undefined;
  }
  if (isJsonWebKeySet(jwks)) {
    try {
      return staticJwks(jwks);
    } catch (error) {
      problems.push(`jwks: ${(error as Error).message}`);
      return undefined;
    }
  }
  if (typeof jwks.current === 'function' && typeof jwks.ready === 'function' && typeof jwks.refresh === 'function') return jwks;
  problems.push('jwks: expected a JWKS document, its URL, or a key source');
  return undefined;
}

function checkOptions(options: SessionReaderOptions, problems: string[]): void {
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name)) problems.push(`${name}: unknown option`);
  }
  if (typeof options.mount !== 'string' || options.mount === '') problems.push('mount: required, the mount name this backend serves');
  if (options.alg !== undefined && !ALGORITHMS.has(options.alg)) problems.push(`alg: expected HS256 or EdDSA, got ${String(options.alg)}`);
  const skew = options.skewSeconds;
  if (skew !== undefined && !(Number.isFinite(skew) && skew >= 0)) problems.push('skewSeconds: expected a number >= 0');
  if (options.now !== undefined && typeof options.now !== 'function') problems.push('now: expected a function returning epoch seconds');
}

/**
 * Builds a reader for one mount. Every problem in the options is reported at once in a
 * SessionGatewayConfigError, so a wrong key fails at start-up, not on the first request.
 *
 * @example
 * const reader = createSessionReader({ mount: 'shop', keys: { '2026-11': process.env.SHOP_KEY! } });
 * // asymmetric mode: tokens verify against the gateway's public keys, write-backs still use `keys`
 * const edReader = createSessionReader({ mount: 'shop', alg: 'EdDSA', jwks: 'http://gateway/_gateway/jwks.json', keys });
 */
export function createSessionReader<T extends object = JsonObject>(options: SessionReaderOptions): SessionReader<T> {
  const problems: string[] = [];
  checkOptions(options, problems);
  const alg = options.alg ?? 'HS256';
  const mountKeys = options.keys === undefined ? undefined : parseMountKeys(options.keys, problems);
  if (alg === 'HS256' && options.keys === undefined) problems.push('keys: required for HS256, kid → derived mount key');
  const source = alg === 'EdDSA' ? keySourceOf(options.jwks, problems) : undefined;
  if (alg === 'EdDSA' && options.jwks === undefined) problems.push('jwks: required for EdDSA, the gateway\'s JWKS document or its URL');
  if (alg === 'HS256' && options.jwks !== undefined) problems.push('jwks: only used with alg EdDSA');
  if (problems.length > 0) throw new SessionGatewayConfigError(problems);

  const mount = options.mount;
  const skewSeconds = options.skewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  const now = options.now ?? epochSeconds;
  const signer = mountKeys?.signing;

  function verifyingKeys(): ReadonlyMap<string, VerifyingKey> {
    if (!source) return mountKeys!.verifying;
    const held = source.current();
    if (!held) throw new SessionGatewayError(JWKS_UNAVAILABLE, 'the JWKS document is not loaded: await reader.ready() or use readAsync');
    return held;
  }

  function read<U extends object = T>(headers: HeaderSource): GatewaySession<U> {
    const token = tokenFrom(headers);
    // No token is `missing` whatever the state of the keys.
    const keys = token ? verifyingKeys() : NO_KEYS;
    try {
      const claims = verifyRequest(token, headerFrom(headers, RID_HEADER), { keys, mount, alg, now: now(), skewSeconds });
      return verifiedSession<U>(claims, signer);
    } catch (error) {
      throw fromProtocolError(error);
    }
  }

  async function readAsync<U extends object = T>(headers: HeaderSource): Promise<GatewaySession<U>> {
    if (!source || !tokenFrom(headers)) return read<U>(headers);
    await source.ready();
    try {
      return read<U>(headers);
    } catch (error) {
      // After a rotation the first token under the new kid arrives before our copy of the JWKS has it.
      if (!(error instanceof SessionGatewayError && error.code === 'unknown_key')) throw error;
      if (!(await source.refresh())) throw error;
      return read<U>(headers);
    }
  }

  return {
    mount,
    alg,
    read,
    readAsync,
    fromRequest: function fromRequest<U extends object = T>(request: Request) {
      return read<U>(request.headers);
    },
    anonymous: function anonymous<U extends object = T>(error: SessionGatewayError) {
      return anonymousSession<U>(mount, error);
    },
    ready: async function ready() {
      await source?.ready();
    },
  };
}
