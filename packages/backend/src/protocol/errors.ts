/**
 * Errors a verifier reports, for request tokens and write-backs alike. The codes are
 * part of the public contract (docs/PROTOCOL.md §7); helpers in every language use them.
 */
export const PROTOCOL_ERROR_CODES = [
  'missing', // no header where one was required
  'malformed', // not three base64url parts, or not JSON, or fields of the wrong type
  'unsupported_version', // payload.v is not a version this verifier speaks
  'unsupported_algorithm', // header.alg is not the expected algorithm
  'unknown_key', // header.kid names no key the verifier holds
  'bad_signature', // the signature does not match
  'wrong_audience', // payload.aud is not this mount
  'stale', // the token expired (exp + skew < now)
  'future', // the token was issued in the future (iat - skew > now)
  'replayed', // a write-back whose rid/sid is not the request it answers
  'reserved_key', // a write-back touching the gateway's own bookkeeping
  'forbidden_key', // a write-back touching a key the mount may not write
  'unsafe_key', // __proto__, constructor or prototype anywhere in a patch
  'too_large', // over the size limit
  'too_deep', // a patch nested deeper than the limit
] as const;

export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  constructor(code: ProtocolErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'ProtocolError';
    this.code = code;
  }
}
