/**
 * Every header name the gateway owns. One prefix, so that stripping is a single
 * prefix test and a new header can never be forgotten by the strip step.
 */
export const PROTOCOL_VERSION = 2;

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

/**
 * True for `X_Session_Gateway_Write`, `x-session_gateway-write` and the like: the
 * write-back header with `_` for some `-`. Such a header is owned (so always stripped) but
 * never read as a write-back: the gateway refuses it as `malformed` (PROTOCOL.md §2).
 * Takes a lower-case name.
 */
export function isWriteHeaderVariant(lowerName: string): boolean {
  return lowerName !== WRITE_HEADER && lowerName.length === WRITE_HEADER.length && lowerName.replaceAll('_', '-') === WRITE_HEADER;
}

/**
 * Why the write-back headers of one response cannot be read, or undefined when they can:
 * a response carries at most one, spelled `X-Session-Gateway-Write` (any letter case).
 * `canonical` counts the canonical ones, `variants` holds the other spellings' names as sent.
 * @example writeBackHeaderProblem(1, ['X_Session_Gateway_Write']) // 'more than one write-back header: ...'
 */
export function writeBackHeaderProblem(canonical: number, variants: readonly string[]): string | undefined {
  const spelt = variants.map((name) => JSON.stringify(name)).join(', ');
  if (canonical + variants.length > 1) {
    return `more than one write-back header (${canonical + variants.length}${variants.length > 0 ? `, among them ${spelt}` : ''})`;
  }
  if (variants.length > 0) return `write-back header spelled ${spelt}: only X-Session-Gateway-Write is read, "_" for "-" is refused`;
  return undefined;
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
