/**
 * Compact JWS (RFC 7515) with HS256 and EdDSA, on node:crypto alone. A JWT library (jose)
 * cost 4-8x more per sign+verify in our measurements (README, dependency notes); a standard
 * JWT library still verifies what we sign, which test/unit/protocol/jws.test.ts proves with jose.
 */
import { createHmac, createSecretKey, sign as edSign, verify as edVerify, timingSafeEqual, type KeyObject } from 'node:crypto';
import { ProtocolError } from './errors.ts';

export type Algorithm = 'HS256' | 'EdDSA';

const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function encodeSegment(json: string): string {
  return Buffer.from(json, 'utf8').toString('base64url');
}

/** Strict base64url: Buffer.from(s, 'base64url') silently skips bad characters. */
export function decodeSegment(segment: string, what: string): Buffer {
  if (!BASE64URL.test(segment) || segment.length % 4 === 1) {
    throw new ProtocolError('malformed', `${what} is not base64url`);
  }
  const bytes = Buffer.from(segment, 'base64url');
  // Canonical only: non-zero trailing bits would let one value be spelled several ways.
  if (bytes.toString('base64url') !== segment) throw new ProtocolError('malformed', `${what} is not canonical base64url`);
  return bytes;
}

export function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ProtocolError('malformed', `${what} is not JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError('malformed', `${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

export function hmacSha256(key: Buffer | KeyObject, input: string): Buffer {
  return createHmac('sha256', key).update(input).digest();
}

/** A key that signs: an HMAC secret or an Ed25519 private key. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: Algorithm;
  /** base64url of the JWS protected header, computed once. */
  readonly encodedHeader: string;
  sign(signingInput: string): Buffer;
}

/** A key that verifies: an HMAC secret or an Ed25519 public key. */
export interface VerifyingKey {
  readonly kid: string;
  readonly alg: Algorithm;
  verify(signingInput: string, signature: Buffer): boolean;
}

export function protectedHeader(alg: Algorithm, kid: string): string {
  return encodeSegment(JSON.stringify({ alg, kid, typ: 'JWT' }));
}

export function hs256Key(kid: string, secretBytes: Buffer): SigningKey & VerifyingKey {
  // A KeyObject is imported once; passing raw bytes would copy them into OpenSSL per call.
  const secret = createSecretKey(secretBytes);
  return {
    kid,
    alg: 'HS256',
    encodedHeader: protectedHeader('HS256', kid),
    sign: (input) => hmacSha256(secret, input),
    verify: (input, signature) => {
      const expected = hmacSha256(secret, input);
      return signature.length === expected.length && timingSafeEqual(signature, expected);
    },
  };
}

export function ed25519SigningKey(kid: string, privateKey: KeyObject): SigningKey {
  return {
    kid,
    alg: 'EdDSA',
    encodedHeader: protectedHeader('EdDSA', kid),
    sign: (input) => edSign(null, Buffer.from(input), privateKey),
  };
}

export function ed25519VerifyingKey(kid: string, publicKey: KeyObject): VerifyingKey {
  return {
    kid,
    alg: 'EdDSA',
    verify: (input, signature) => edVerify(null, Buffer.from(input), publicKey, signature),
  };
}

/** Signs an already-serialised payload. */
export function signCompact(key: SigningKey, payloadJson: string): string {
  const signingInput = `${key.encodedHeader}.${encodeSegment(payloadJson)}`;
  return `${signingInput}.${key.sign(signingInput).toString('base64url')}`;
}

/**
 * Checks structure, algorithm, key id and signature, in that order, and only then
 * parses the payload: nothing unauthenticated is interpreted beyond the header.
 */
export function verifyCompact(
  token: string,
  keys: ReadonlyMap<string, VerifyingKey>,
  alg: Algorithm,
): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new ProtocolError('malformed', 'a JWS has three dot-separated parts');
  const [h, p, s] = parts as [string, string, string];
  const header = parseJsonObject(decodeSegment(h, 'the JWS header'), 'the JWS header');
  if (header.alg !== alg) throw new ProtocolError('unsupported_algorithm', `expected alg ${alg}, got ${String(header.alg)}`);
  if (typeof header.kid !== 'string') throw new ProtocolError('malformed', 'the JWS header has no kid');
  const key = keys.get(header.kid);
  if (!key || key.alg !== alg) throw new ProtocolError('unknown_key', `no key with kid ${JSON.stringify(header.kid)}`);
  const signature = decodeSegment(s, 'the JWS signature');
  // Decoded (so its charset checked) before the signature is trusted to cover it, parsed only after.
  const payload = decodeSegment(p, 'the JWS payload');
  if (!key.verify(`${h}.${p}`, signature)) throw new ProtocolError('bad_signature', 'the signature does not match');
  return parseJsonObject(payload, 'the JWS payload');
}
