/**
 * The request token: what the gateway tells a backend about the session
 * (docs/PROTOCOL.md §4). Building is on the gateway's hot path, so the payload is
 * assembled from pre-serialised parts; verifying is what every helper does.
 */
import { ProtocolError } from './errors.ts';
import { PROTOCOL_VERSION } from './headers.ts';
import { encodeSegment, verifyCompact, type Algorithm, type SigningKey, type VerifyingKey } from './jws.ts';
import { isPlainObject, type JsonObject } from './merge-patch.ts';

export const TOKEN_ISSUER = 'session-gateway';
/** Seconds a token stays valid after issue; it only has to outlive the hop to the backend. */
export const TOKEN_LIFETIME_SECONDS = 60;
/** Clock skew, in seconds, a verifier allows in either direction. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 10;

/** What a verified token says. */
export interface TokenClaims {
  /** The mount the token was issued for. */
  aud: string;
  iat: number;
  exp: number;
  /** Session id, or null for a visitor without a session. */
  sid: string | null;
  /** The session keys this mount may read; {} without a session, null when omitted. */
  data: JsonObject | null;
  /** Idle deadline (epoch seconds), null without a session. */
  idleExp: number | null;
  /** Absolute deadline (epoch seconds), null without a session. */
  absExp: number | null;
  /** True when the readable data did not fit the header budget and was left out. */
  dataOmitted: boolean;
}

/** What a verified request says: the token's claims and the request's nonce. */
export interface SessionClaims extends TokenClaims {
  /** This request's nonce (the X-Session-Gateway-Rid header); a write-back must repeat it. */
  rid: string;
}

/** The request nonce: 16 random bytes, base64url (PROTOCOL.md §2). */
export const RID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** Seconds the gateway sends the same token again (same session version, same mount) before re-signing it. */
export const TOKEN_REUSE_SECONDS = 5;

/** What a token says; `dataJson` is pre-serialised. */
export interface TokenInput {
  audJson: string;
  iat: number;
  sid: string | null;
  idleExp: number | null;
  absExp: number | null;
  /** JSON text of the readable data, or null to omit it (too large). */
  dataJson: string | null;
}

/** Serialises the payload by concatenation: JSON.stringify of the whole would re-serialise the data. */
export function tokenPayloadJson(input: TokenInput): string {
  const data = input.dataJson === null ? 'null,"dataOmitted":true' : input.dataJson;
  return (
    `{"v":${PROTOCOL_VERSION},"iss":"${TOKEN_ISSUER}","aud":${input.audJson},"iat":${input.iat},` +
    `"exp":${input.iat + TOKEN_LIFETIME_SECONDS},` +
    `"sid":${input.sid === null ? 'null' : JSON.stringify(input.sid)},` +
    `"idleExp":${input.idleExp ?? 'null'},"absExp":${input.absExp ?? 'null'},"data":${data}}`
  );
}

export function signToken(key: SigningKey, payloadJson: string): string {
  const signingInput = `${key.encodedHeader}.${encodeSegment(payloadJson)}`;
  return `${signingInput}.${key.sign(signingInput).toString('base64url')}`;
}

export interface VerifyTokenOptions {
  keys: ReadonlyMap<string, VerifyingKey>;
  /** The mount this backend serves; tokens for any other audience are refused. */
  mount: string;
  alg?: Algorithm;
  /** Current time in epoch seconds (injectable for tests and vectors). */
  now?: number;
  skewSeconds?: number;
}

function isIntOrNull(v: unknown): v is number | null {
  return v === null || Number.isSafeInteger(v);
}

/** Verifies a request token and returns its claims, or throws a ProtocolError (PROTOCOL.md §4.3 steps 1-10). */
export function verifyToken(token: string | undefined, options: VerifyTokenOptions): TokenClaims {
  if (token === undefined || token === '') throw new ProtocolError('missing', 'no session token header');
  const p = verifyCompact(token, options.keys, options.alg ?? 'HS256');
  if (p.v !== PROTOCOL_VERSION) throw new ProtocolError('unsupported_version', `payload.v is ${JSON.stringify(p.v)}, expected ${PROTOCOL_VERSION}`);
  const dataOmitted = p.dataOmitted === true;
  if (
    typeof p.aud !== 'string' || !Number.isSafeInteger(p.iat) || !Number.isSafeInteger(p.exp) ||
    !(p.sid === null || typeof p.sid === 'string') ||
    !isIntOrNull(p.idleExp) || !isIntOrNull(p.absExp) ||
    !(isPlainObject(p.data) || (p.data === null && dataOmitted))
  ) {
    throw new ProtocolError('malformed', 'the token payload lacks a field or has one of the wrong type');
  }
  if (p.aud !== options.mount) throw new ProtocolError('wrong_audience', `token is for ${JSON.stringify(p.aud)}, not ${JSON.stringify(options.mount)}`);
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const skew = options.skewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  const iat = p.iat as number;
  const exp = p.exp as number;
  if (iat - skew > now) throw new ProtocolError('future', `issued at ${iat}, now is ${now}`);
  if (exp + skew < now) throw new ProtocolError('stale', `expired at ${exp}, now is ${now}`);
  return {
    aud: p.aud,
    iat,
    exp,
    sid: p.sid as string | null,
    data: p.data as JsonObject | null,
    idleExp: p.idleExp as number | null,
    absExp: p.absExp as number | null,
    dataOmitted,
  };
}

/**
 * Verifies what the gateway sent with a request: the token, then the request's nonce
 * (PROTOCOL.md §4.3, all steps). `rid` is the X-Session-Gateway-Rid header's value.
 */
export function verifyRequest(token: string | undefined, rid: string | undefined, options: VerifyTokenOptions): SessionClaims {
  const claims = verifyToken(token, options);
  if (rid === undefined || !RID_PATTERN.test(rid)) throw new ProtocolError('malformed', 'no well-formed X-Session-Gateway-Rid header (22 base64url characters)');
  return { ...claims, rid };
}
