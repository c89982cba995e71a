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

export interface ResponseHeaders {
  headers: OutgoingHttpHeaders;
  /** The write-back header, if the backend sent one. */
  writeBack: string | undefined;
  duplicateWriteBack: boolean;
  /**
   * Set-Cookies for the gateway's own session cookie, dropped: with one, any backend could
   * plant a session it holds in a visitor's browser, or log the visitor out.
   */
  droppedSessionCookies: number;
}

/**
 * Response headers for the client, in one pass over the backend's raw headers: owned and
 * hop-by-hop headers removed, the write-back taken out, the session cookie refused.
 */
export function splitResponseHeaders(upstream: IncomingMessage, sessionCookieName: string): ResponseHeaders {
  const headers: OutgoingHttpHeaders = {};
  let writeBack: string | undefined;
  let count = 0;
  let droppedSessionCookies = 0;
  const raw = upstream.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (isOwnedHeader(lower)) {
      if (lower === WRITE_HEADER) {
        writeBack = value;
        count++;
      }
      continue;
    }
    if (HOP_BY_HOP.has(lower)) continue;
    if (lower === 'set-cookie') {
      if (cookieNameOf(value) === sessionCookieName) droppedSessionCookies++;
      else ((headers['set-cookie'] ??= []) as string[]).push(value);
      continue;
    }
    const existing = headers[lower];
    headers[lower] = existing === undefined ? value : `${String(existing)}, ${value}`;
  }
  return { headers, writeBack, duplicateWriteBack: count > 1, droppedSessionCookies };
}
