/**
 * What every step of the request path works on: the reloadable state a request was
 * admitted under (PathState) and the request's own context (RequestContext).
 */
import { randomFillSync, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Metrics } from '../ops/metrics.ts';
import type { RequestTrace, Tracing } from '../ops/tracing.ts';
import type { RuntimeMount } from '../runtime.ts';
import { clearedCookie, type CookieReading, type CookieSettings } from '../session/cookie.ts';
import type { Deadlines } from '../session/record.ts';
import type { LoadedSession, SessionManager } from '../session/sessions.ts';
import type { Lease } from '../session/session-lock.ts';

/** Everything a request needs from the (reloadable) configuration. */
export interface PathState {
  /** The mount for a normalised path (runtime.ts). */
  readonly matchMount: (path: string, hostHeader?: string) => RuntimeMount | undefined;
  readonly sessions: SessionManager;
  readonly cookie: CookieSettings;
  /** Verifies the session cookie (cached per Cookie header). */
  readonly readCookie: (header: string | undefined) => CookieReading;
  /** The Set-Cookie value for a session id, signed with the newest secret (signature cached per id). */
  readonly writeCookie: (sid: string, expires: Date, secure: boolean) => string;
  /** Whether a backend's Set-Cookie of the session cookie is signed with one of the secrets (mounts with setsSessionCookie). */
  readonly signedSessionCookie: (setCookie: string) => boolean;
  readonly secureCookie: boolean | 'auto';
  readonly trustProxy: boolean;
  readonly maxTokenBytes: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** OpenTelemetry, or null when tracing is off (then nothing else of it runs). */
  readonly tracing: Tracing | null;
}

export interface RequestContext {
  readonly state: PathState;
  readonly mount: RuntimeMount;
  readonly requestId: string;
  readonly startedAt: number;
  /** Whether the client connection is https (directly, or per a trusted proxy). */
  readonly secure: boolean;
  /** The path the upstream receives (normalised, prefix stripped when configured), with the query. */
  readonly url: string;
  /** The headers the upstream receives, name, value...: cleaned in step 1, the gateway's added in step 3. */
  readonly upstreamHeaders: string[];
  loaded: LoadedSession | null;
  /** Per-request nonce in the token; a write-back must repeat it. */
  readonly rid: string;
  /** Set-Cookie values to add to the response. */
  cookies: string[];
  upstreamStartedAt: number;
  /** The session's lease on a locked mount (mounts[].lock), from step 2 until the response is stored or closes. */
  lease: Lease | null;
  /** The request's spans; null when tracing is off. */
  trace: RequestTrace | null;
  /** For the server span, set only when traced: none, hit, miss, unavailable. */
  sessionOutcome: string;
}

// 16 random bytes per request, drawn from a pooled buffer: one getrandom call per 256 requests.
const RID_BYTES = 16;
const ridPool = Buffer.alloc(RID_BYTES * 256);
let ridOffset = ridPool.length;
export function newRequestNonce(): string {
  if (ridOffset >= ridPool.length) {
    randomFillSync(ridPool);
    ridOffset = 0;
  }
  const rid = ridPool.toString('base64url', ridOffset, ridOffset + RID_BYTES);
  ridOffset += RID_BYTES;
  return rid;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A well-formed incoming X-Request-Id is kept (it ties logs across hops); anything else is replaced by a UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

export function isSecure(req: IncomingMessage, trustProxy: boolean): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  if (!trustProxy) return false;
  const proto = req.headers['x-forwarded-proto'];
  return typeof proto === 'string' && proto.split(',')[0]!.trim().toLowerCase() === 'https';
}

const CONTEXT = Symbol('session-gateway.context');
type WithContext = IncomingMessage & { [CONTEXT]?: RequestContext };

/**
 * The context every later step works on, kept on the request itself (the access log gets
 * the request, not the context). A property rather than a WeakMap: WeakMap entries cost
 * the garbage collector work on every request.
 */
export function newContext(req: IncomingMessage, state: PathState, mount: RuntimeMount, url: string, upstreamHeaders: string[], startedAt: number): RequestContext {
  const ctx: RequestContext = {
    state, mount, requestId: requestIdOf(req), startedAt, secure: isSecure(req, state.trustProxy), url, upstreamHeaders,
    loaded: null, rid: newRequestNonce(), cookies: [], upstreamStartedAt: startedAt, lease: null, trace: null, sessionOutcome: 'none',
  };
  (req as WithContext)[CONTEXT] = ctx;
  return ctx;
}

/** The context of a request the gateway admitted for forwarding; undefined for any other. */
export function contextOf(req: IncomingMessage): RequestContext | undefined {
  return (req as WithContext)[CONTEXT];
}

/** Whether a Set-Cookie for this request carries Secure. */
export function cookieSecure(ctx: RequestContext): boolean {
  const { secureCookie } = ctx.state;
  return secureCookie === 'auto' ? ctx.secure : secureCookie;
}

/** The session cookie this response will set (steps 2 and 5 both may). */
export function setSessionCookie(ctx: RequestContext, sid: string, deadlines: Deadlines): void {
  ctx.cookies = [ctx.state.writeCookie(sid, new Date(deadlines.endsAt), cookieSecure(ctx))];
}

export function clearSessionCookie(ctx: RequestContext): void {
  ctx.cookies = [clearedCookie(ctx.state.cookie, cookieSecure(ctx))];
}
