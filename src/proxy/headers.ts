/**
 * What crosses the gateway in each direction. Gateway-owned headers are removed both
 * ways (docs/PROTOCOL.md §2); hop-by-hop headers are handled per RFC 9110 §7.6.1.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isOwnedHeader, isWriteHeaderVariant, WRITE_HEADER, writeBackHeaderProblem } from '#protocol';

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
  // The gateway already answered 100-continue to the client (Node does that), so the
  // backend is not asked again.
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

/**
 * X-Forwarded-For/-Proto/-Host, set in the same step that cleaned the headers: appended to
 * a trusted hop's values, and alone when sanitiseRequestHeaders has removed an untrusted
 * client's. (No X-Forwarded-Port: the Host header already says; a trusted hop's is passed on.)
 */
export function addForwardedHeaders(headers: IncomingHttpHeaders, clientAddress: string | undefined, encrypted: boolean): void {
  headers['x-forwarded-for'] = appended(headers['x-forwarded-for'], clientAddress ?? '');
  headers['x-forwarded-proto'] = appended(headers['x-forwarded-proto'], encrypted ? 'https' : 'http');
  headers['x-forwarded-host'] ||= headers.host ?? '';
}

/**
 * The Cookie header a backend receives: the gateway's own session cookie taken out, every
 * other cookie kept byte for byte and in order. With the raw cookie a backend (its logs,
 * its error pages) could replay the visitor's session through other mounts and write
 * keys outside its own `write` list; the token already tells it whose session it is.
 * Returns undefined when no other cookie is left.
 * @example withoutSessionCookie('a=1; sgw.sid=s%3Axyz; b=2', 'sgw.sid') // 'a=1; b=2'
 */
export function withoutSessionCookie(header: string, name: string): string | undefined {
  // Cheap rejection first: most Cookie headers of most requests are checked only this far.
  if (!header.includes(name)) return header;
  const pairs = header.split(';');
  const kept = pairs.filter((pair) => {
    const eq = pair.indexOf('=');
    // Trimmed as the cookie parser trims: whatever the gateway would read as its cookie goes.
    return eq === -1 || pair.slice(0, eq).trim() !== name;
  });
  if (kept.length === pairs.length) return header;
  const rest = kept.join(';').trimStart();
  return rest.trim() === '' ? undefined : rest;
}

/** Applies withoutSessionCookie to a request's headers, in place (the header goes when nothing is left). */
export function stripSessionCookie(headers: IncomingHttpHeaders, name: string): void {
  const cookie = headers.cookie;
  if (cookie === undefined) return;
  const rest = withoutSessionCookie(cookie, name);
  if (rest === undefined) delete headers.cookie;
  else if (rest !== cookie) headers.cookie = rest;
}

function appended(existing: string | string[] | undefined, value: string): string {
  return existing ? `${String(existing)},${value}` : value;
}

/**
 * Request headers that undici refuses or frames itself (it throws on transfer-encoding,
 * keep-alive, upgrade and expect, and writes connection and host framing of its own), and
 * the other hop-by-hop ones: none of them is meant for the next hop (RFC 9110 §7.6.1).
 * Content-Length and Host stay: undici takes them as the framing and the Host line.
 */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'expect', 'http2-settings']);

/**
 * The cleaned request headers as the flat name, value list undici's dispatch takes, in the
 * order Node parsed them (lower-case names; repeated headers merged as Node merges them).
 */
export function outgoingHeaders(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in headers) {
    if (NOT_FORWARDED.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  return out;
}

function cookieNameOf(setCookie: string): string {
  const eq = setCookie.indexOf('=');
  return eq === -1 ? '' : setCookie.slice(0, eq).trim();
}

export interface ResponseHeaders {
  /**
   * Name, value, name, value...: the form res.writeHead takes without building an
   * object, each header as the backend sent it (case, order and repeats kept).
   */
  headers: string[];
  /** Whether the backend sent an X-Request-Id (else the gateway adds its own). */
  hasRequestId: boolean;
  /** The write-back header, if the backend sent one. */
  writeBack: string | undefined;
  /**
   * Set when the write-back cannot be read (several, or one spelled with `_`): it is then
   * refused as `malformed`, never silently dropped (writeBackHeaderProblem).
   */
  writeBackProblem: string | undefined;
  /**
   * Set-Cookies for the gateway's own session cookie, dropped: with one, any backend could
   * plant a session it holds in a visitor's browser, or log the visitor out.
   */
  droppedSessionCookies: number;
}

/**
 * THE response-header filter: every path that relays a backend's headers to a client runs
 * it (ordinary answers, a 101, a refused upgrade, error answers; docs/SECURITY.md §2.1).
 * One pass over the raw headers: owned and hop-by-hop headers removed, the write-back
 * taken out, the gateway's session cookie refused. Raw values are latin1 so bytes pass
 * through unchanged.
 */
export function filterResponseHeaders(raw: readonly (Buffer | string)[], sessionCookieName: string): ResponseHeaders {
  const headers: string[] = [];
  let writeBack: string | undefined;
  let count = 0;
  let variants: string[] | undefined;
  let droppedSessionCookies = 0;
  let hasRequestId = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const value = raw[i + 1]!.toString('latin1');
    const lower = name.toLowerCase();
    if (isOwnedHeader(lower)) {
      if (lower === WRITE_HEADER) {
        writeBack = value;
        count++;
      } else if (isWriteHeaderVariant(lower)) {
        (variants ??= []).push(name);
      }
      continue;
    }
    if (HOP_BY_HOP.has(lower)) continue;
    if (lower === 'set-cookie' && cookieNameOf(value) === sessionCookieName) {
      droppedSessionCookies++;
      continue;
    }
    if (lower === 'x-request-id') hasRequestId = true;
    headers.push(name, value);
  }
  const writeBackProblem = count > 1 || variants ? writeBackHeaderProblem(count, variants ?? []) : undefined;
  return { headers, hasRequestId, writeBack, writeBackProblem, droppedSessionCookies };
}
