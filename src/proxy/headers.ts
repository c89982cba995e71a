/**
 * What crosses the gateway in each direction. Gateway-owned headers are removed both
 * ways (docs/PROTOCOL.md §2); hop-by-hop headers are handled per RFC 9110 §7.6.1.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { isOwnedHeader, WRITE_HEADER } from '../protocol/headers.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);
/** Kept on the way in for WebSocket upgrades. */
const UPGRADE_KEEP = new Set(['connection', 'upgrade']);
/**
 * Never removed because a client named them in Connection: without its framing header
 * a body is forwarded unframed and the backend reads it as a second, unsanitised request
 * (smuggling; test/integration/hostile-requests.test.ts).
 */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'host']);

/**
 * Cleans a client request's headers in place before forwarding. Returns how many
 * gateway-owned headers the client sent (each a forgery attempt or a bug).
 */
export function sanitiseRequestHeaders(headers: IncomingHttpHeaders, options: { trustProxy: boolean; upgrade: boolean }): number {
  let stripped = 0;
  // Headers named in Connection are hop-by-hop: a client could otherwise list
  // the token there and have a later hop delete it, or the other way round.
  const connection = headers.connection;
  if (connection) {
    for (const name of connection.split(',')) {
      const n = name.trim().toLowerCase();
      if (n && n !== 'close' && n !== 'keep-alive' && n !== 'upgrade' && !FRAMING.has(n) && !(options.upgrade && UPGRADE_KEEP.has(n))) delete headers[n];
    }
  }
  for (const name of Object.keys(headers)) {
    if (isOwnedHeader(name)) {
      delete headers[name];
      stripped++;
    }
  }
  // On an upgrade only "Upgrade" goes on: any other name listed would tell a proxy in
  // front of the backend to drop that header, the gateway's own token included.
  if (options.upgrade) headers.connection = 'Upgrade';
  else delete headers.connection;
  // The gateway already answered 100-continue to the client; forwarding Expect would also
  // make http-proxy skip its proxyReq event (shared/FINDINGS.md).
  delete headers.expect;
  if (!options.trustProxy) {
    delete headers['x-forwarded-for'];
    delete headers['x-forwarded-proto'];
    delete headers['x-forwarded-host'];
    delete headers['x-forwarded-port'];
    delete headers.forwarded;
  }
  return stripped;
}

function cookieNameOf(setCookie: string): string {
  const eq = setCookie.indexOf('=');
  return eq === -1 ? '' : setCookie.slice(0, eq).trim();
}

/**
 * Removes, in place, every Set-Cookie a backend sent for the gateway's own session
 * cookie. The cookie is the gateway's like its headers are: a backend (compromised, or
 * an express-session app sharing the name) could otherwise plant a session it holds in
 * a visitor's browser (fixation, login CSRF) or log the visitor out. Returns how many went.
 */
export function dropSessionCookies(upstream: IncomingMessage, cookieName: string): number {
  // First: node:http builds `headers` lazily from rawHeaders and their original count, so
  // it must exist before rawHeaders shrinks.
  const parsed = upstream.headers['set-cookie'];
  if (!parsed) return 0;
  const raw = upstream.rawHeaders;
  let dropped = 0;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (raw[i]!.toLowerCase() === 'set-cookie' && cookieNameOf(raw[i + 1]!) === cookieName) {
      raw.splice(i, 2);
      dropped++;
    }
  }
  if (dropped > 0) upstream.headers['set-cookie'] = parsed.filter((value) => cookieNameOf(value) !== cookieName);
  return dropped;
}

/** Response headers for the client, and the write-back header if the backend sent one. */
export function splitResponseHeaders(upstream: IncomingMessage): { headers: OutgoingHttpHeaders; writeBack: string | undefined; duplicateWriteBack: boolean } {
  const headers: OutgoingHttpHeaders = {};
  let writeBack: string | undefined;
  let count = 0;
  const raw = upstream.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (isOwnedHeader(lower)) {
      if (lower === WRITE_HEADER) {
        writeBack = raw[i + 1];
        count++;
      }
      continue;
    }
    if (HOP_BY_HOP.has(lower)) continue;
    const existing = headers[lower];
    const value = raw[i + 1]!;
    if (existing === undefined) headers[lower] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[lower] = lower === 'set-cookie' ? [String(existing), value] : `${String(existing)}, ${value}`;
  }
  if (Array.isArray(headers['set-cookie']) === false && typeof headers['set-cookie'] === 'string') headers['set-cookie'] = [headers['set-cookie']];
  return { headers, writeBack, duplicateWriteBack: count > 1 };
}
