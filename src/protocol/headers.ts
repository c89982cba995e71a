/**
 * Every header name the gateway owns. One prefix, so that stripping is a single
 * prefix test and a new header can never be forgotten by the strip step.
 */
export const PROTOCOL_VERSION = 3;

/** Lower-case prefix of every owned header; see docs/PROTOCOL.md §2. */
export const OWNED_PREFIX = 'x-session-gateway-';

/** Gateway → backend: the signed session token (a compact JWS). */
export const TOKEN_HEADER = 'x-session-gateway-token';

/**
 * Gateway → backend: this request's nonce (`rid`), which a write-back must repeat. Apart
 * from the token so that the token can be reused across requests (PROTOCOL.md §4.4).
 */
export const RID_HEADER = 'x-session-gateway-rid';

/** Backend → gateway: a signed write-back (a compact JWS). */
export const WRITE_HEADER = 'x-session-gateway-write';

/**
 * True when a header name is gateway-owned. Underscores count as dashes because
 * some stacks (CGI, WSGI, PHP, nginx with underscores_in_headers) map one to the other,
 * so `X_Session_Gateway_Token` would otherwise reach such a backend as the real thing.
 */
export function isOwnedHeader(name: string): boolean {
  // Cheap rejection first: this runs for every header of every request.
  if (name.length < OWNED_PREFIX.length || (name.charCodeAt(0) | 32) !== 120 /* x */) return false;
  const head = name.slice(0, OWNED_PREFIX.length).toLowerCase().replaceAll('_', '-');
  return head === OWNED_PREFIX;
}

/** Deletes every owned header from a Node header object, in place. Returns how many went. */
export function stripOwnedHeaders(headers: Record<string, unknown>): number {
  let removed = 0;
  for (const name of Object.keys(headers)) {
    if (isOwnedHeader(name)) {
      delete headers[name];
      removed++;
    }
  }
  return removed;
}
