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
 * Request headers that undici refuses or frames itself (it throws on transfer-encoding,
 * keep-alive, upgrade and expect, and writes connection and host framing of its own), and
 * the other hop-by-hop ones: none of them is meant for the next hop (RFC 9110 §7.6.1).
 * Content-Length and Host stay: undici takes them as the framing and the Host line.
 */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'expect', 'http2-settings']);

export interface RequestHeaderOptions {
  readonly trustProxy: boolean;
  readonly upgrade: boolean;
  /** The gateway's session cookie name, to take out of Cookie; null keeps it (the mount opted in). */
  readonly sessionCookie: string | null;
  readonly clientAddress: string | undefined;
  readonly encrypted: boolean;
  /** The path prefix the gateway removed (a stripPrefix mount), sent as X-Forwarded-Prefix; null when none was. */
  readonly strippedPrefix: string | null;
}

/** Removed from every forwarded request besides hop-by-hop and owned ones; the gateway sets its own. */
const UNTRUSTED_FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-prefix', 'forwarded']);

/** Names a client listed in Connection (hop-by-hop by its word), minus what must never go that way. */
function connectionNamed(connection: string | undefined, upgrade: boolean): Set<string> | null {
  if (!connection) return null;
  let named: Set<string> | null = null;
  for (const token of connection.split(',')) {
    const n = token.trim().toLowerCase();
    if (n && n !== 'close' && n !== 'keep-alive' && n !== 'upgrade' && !FRAMING.has(n) && !(upgrade && UPGRADE_KEEP.has(n))) (named ??= new Set()).add(n);
  }
  return named;
}

/**
 * The headers a backend receives, as the flat name, value list undici's dispatch takes,
 * built in one pass without touching the client's header object (deleting from it would
 * slow every later lookup on it). In Node's order with Node's lower-case names (repeated
 * headers merged as Node merges them). Removed: gateway-owned headers (counted: each is a
 * forgery attempt or a bug), hop-by-hop ones and whatever the client named in Connection
 * (a client could otherwise list the token there and have a later hop delete it), what
 * undici refuses or frames itself (Transfer-Encoding, Keep-Alive, Upgrade, Expect: the
 * gateway already answered 100-continue), the request id (the gateway sets its own), and
 * an untrusted client's X-Forwarded-*. Then X-Forwarded-For/-Proto/-Host: appended to a
 * trusted hop's values, alone otherwise (no X-Forwarded-Port: Host already says).
 * Content-Length and Host stay: undici takes them as the framing and the Host line.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, options: RequestHeaderOptions): { list: string[]; owned: number } {
  const named = connectionNamed(headers.connection, options.upgrade);
  const list: string[] = [];
  let owned = 0;
  let forwardedFor: string | undefined;
  let forwardedProto: string | undefined;
  let forwardedHost: string | undefined;
  let forwardedPrefix: string | undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || NOT_FORWARDED.has(name) || name === 'x-request-id' || named?.has(name)) continue;
    if (isOwnedHeader(name)) {
      owned++;
      continue;
    }
    if (UNTRUSTED_FORWARDING.has(name)) {
      if (!options.trustProxy) continue;
      if (name === 'x-forwarded-for') forwardedFor = String(value);
      else if (name === 'x-forwarded-proto') forwardedProto = String(value);
      else if (name === 'x-forwarded-host') forwardedHost = String(value);
      else if (name === 'x-forwarded-prefix') forwardedPrefix = String(value);
      else list.push(name, String(value));
      continue;
    }
    if (name === 'cookie' && options.sessionCookie !== null) {
      const rest = withoutSessionCookie(value as string, options.sessionCookie);
      if (rest !== undefined) list.push(name, rest);
      continue;
    }
    if (typeof value === 'string') list.push(name, value);
    else for (const v of value) list.push(name, v);
  }
  list.push(
    'x-forwarded-for', appended(forwardedFor, options.clientAddress ?? ''),
    'x-forwarded-proto', appended(forwardedProto, options.encrypted ? 'https' : 'http'),
    'x-forwarded-host', forwardedHost || (headers.host ?? ''),
  );
  const prefix = forwardedPrefixOf(forwardedPrefix, options.strippedPrefix);
  if (prefix !== undefined) list.push('x-forwarded-prefix', prefix);
  return { list, owned };
}

/**
 * X-Forwarded-Prefix for the backend: the public path in front of what it sees, so it can
 * build its own URLs (a redirect to `/` would leave the mount). A trusted hop's prefix
 * comes first (it mounted the gateway under a path of its own); an untrusted client's
 * never reaches here. Without a stripped prefix, a trusted hop's value is passed on as is.
 * @example forwardedPrefixOf('/apps', '/shop') // '/apps/shop'
 */
export function forwardedPrefixOf(trusted: string | undefined, stripped: string | null): string | undefined {
  const outer = trusted?.split(',')[0]!.trim().replace(/\/+$/, '');
  if (stripped === null) return outer || undefined;
  return `${outer ?? ''}${stripped.replace(/\/+$/, '')}`;
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

function appended(existing: string | undefined, value: string): string {
  return existing ? `${existing},${value}` : value;
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
  /** Set-Cookies for the session cookie relayed because `acceptSessionCookie` vouched for them. */
  acceptedSessionCookies: number;
}

/**
 * THE response-header filter: every path that relays a backend's headers to a client runs
 * it (ordinary answers, a 101, a refused upgrade, error answers; docs/SECURITY.md §2.1).
 * One pass over the raw headers: owned and hop-by-hop headers removed, the write-back
 * taken out, the gateway's session cookie refused. Raw values are latin1 so bytes pass
 * through unchanged.
 */
export function filterResponseHeaders(raw: readonly (Buffer | string)[], sessionCookieName: string, acceptSessionCookie?: (setCookie: string) => boolean): ResponseHeaders {
  const headers: string[] = [];
  let writeBack: string | undefined;
  let count = 0;
  let variants: string[] | undefined;
  let droppedSessionCookies = 0;
  let acceptedSessionCookies = 0;
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
      if (acceptSessionCookie?.(value)) {
        acceptedSessionCookies++;
      } else {
        droppedSessionCookies++;
        continue;
      }
    }
    if (lower === 'x-request-id') hasRequestId = true;
    headers.push(name, value);
  }
  const writeBackProblem = count > 1 || variants ? writeBackHeaderProblem(count, variants ?? []) : undefined;
  return { headers, hasRequestId, writeBack, writeBackProblem, droppedSessionCookies, acceptedSessionCookies };
}

const TRACE_CONTEXT = new Set(['traceparent', 'tracestate']);

/**
 * The upstream request's headers with the client's W3C trace context replaced by the
 * gateway's (`carrier`, as the propagator wrote it): the backend's parent is the
 * gateway's upstream span, not the client's.
 */
export function withTraceContext(list: readonly string[], carrier: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < list.length; i += 2) {
    if (!TRACE_CONTEXT.has(list[i]!)) out.push(list[i]!, list[i + 1]!);
  }
  for (const name in carrier) {
    const value = carrier[name];
    if (typeof value === 'string') out.push(name, value);
  }
  return out;
}
