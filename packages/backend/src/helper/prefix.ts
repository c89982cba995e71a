/**
 * The mount's public path prefix. With `stripPrefix` the gateway forwards /shop/login
 * as /login and sends `X-Forwarded-Prefix: /shop`; a backend that redirects or links
 * has to put the prefix back, or the browser lands at the gateway's root. The gateway
 * removes this header from clients (unless trustProxy), as every forwarded header.
 */

/** The request header that carries the prefix (lower case, as Node spells header names). */
export const PREFIX_HEADER = 'x-forwarded-prefix';

// Segments of RFC 3986 path characters, no trailing "/": a value like "//evil.example" or
// "/a\r\nb" must never become the start of a redirect, so anything else counts as absent.
const CLEAN_PREFIX = /^(?:\/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)+$/;

/**
 * The prefix from the header's value: "" when absent, "/", or not a clean absolute path
 * (two copies joined by ", " are not clean either).
 *
 * @example
 * prefixFrom('/shop');          // '/shop'
 * prefixFrom('/shop/');         // '/shop'
 * prefixFrom('//evil.example'); // ''
 */
export function prefixFrom(value: string | undefined): string {
  if (value === undefined) return '';
  const trimmed = value.length > 1 && value.endsWith('/') ? value.slice(0, -1) : value;
  return CLEAN_PREFIX.test(trimmed) ? trimmed : '';
}

/**
 * The public URL path of `path` (a path as this backend sees it, starting with "/").
 *
 * @example
 * joinPrefix('/shop', '/cart?item=7'); // '/shop/cart?item=7'
 * joinPrefix('', '/cart');             // '/cart'
 */
export function joinPrefix(prefix: string, path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//') || path.startsWith('/\\')) {
    throw new TypeError(`urlFor(${JSON.stringify(path)}): expected a path on this host, starting with a single "/"`);
  }
  return prefix + path;
}
