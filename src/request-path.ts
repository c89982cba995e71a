/**
 * The request path, in order: match mount → load session → sign → forward →
 * apply write-back → respond. Every step is a named function over a RequestContext;
 * gateway.ts runs steps 1-3 (admit) and wires the server; proxy/upstream.ts forwards and
 * calls respond() when the upstream answers.
 */
import { randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { sendError } from './errors.ts';
import type { Metrics } from './ops/metrics.ts';
import { ProtocolError } from '#protocol';
import { RID_HEADER, TOKEN_HEADER } from '#protocol';
import { signToken, TOKEN_REUSE_SECONDS, tokenPayloadJson } from '#protocol';
import { verifyWriteBack } from '#protocol';
import { RESERVED_SESSION_KEYS } from './config/checks.ts';
import { splitResponseHeaders } from './proxy/headers.ts';
import type { RuntimeMount } from './runtime.ts';
import { clearedCookie, type CookieReading, type CookieSettings } from './session/cookie.ts';
import { deadlinesOf, type Deadlines } from './session/record.ts';
import type { CachedToken, LoadedSession, SessionManager } from './session/sessions.ts';
import { StoreUnavailableError } from './session/store.ts';

/** Everything a request needs from the (reloadable) configuration. */
export interface PathState {
  readonly sessions: SessionManager;
  readonly cookie: CookieSettings;
  readonly secrets: readonly string[];
  /** Verifies the session cookie (cached per Cookie header). */
  readonly readCookie: (header: string | undefined) => CookieReading;
  /** The Set-Cookie value for a session id, signed with the newest secret (signature cached per id). */
  readonly writeCookie: (sid: string, expires: Date, secure: boolean) => string;
  readonly secureCookie: boolean | 'auto';
  readonly trustProxy: boolean;
  readonly maxTokenBytes: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface RequestContext {
  readonly state: PathState;
  readonly mount: RuntimeMount;
  readonly requestId: string;
  readonly startedAt: number;
  /** Whether the client connection is https (directly, or per a trusted proxy). */
  readonly secure: boolean;
  loaded: LoadedSession | null;
  /** Per-request nonce in the token; a write-back must repeat it. */
  rid: string;
  /** Set-Cookie values to add to the response. */
  cookies: string[];
  upstreamStartedAt: number;
  timedOut: boolean;
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
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
}

const CONTEXT = Symbol('session-gateway.context');
type WithContext = IncomingMessage & { [CONTEXT]?: RequestContext };

/**
 * Step 1's result: the context every later step works on, kept on the request itself
 * (http-proxy's events and the access log get the request, not the context). A property
 * rather than a WeakMap: WeakMap entries cost the garbage collector work on every request.
 */
export function newContext(req: IncomingMessage, state: PathState, mount: RuntimeMount, startedAt: number): RequestContext {
  const ctx: RequestContext = {
    state, mount, requestId: requestIdOf(req), startedAt, secure: isSecure(req, state.trustProxy),
    loaded: null, rid: newRequestNonce(), cookies: [], upstreamStartedAt: startedAt, timedOut: false,
  };
  (req as WithContext)[CONTEXT] = ctx;
  return ctx;
}

/** The context of a request the gateway admitted for forwarding; undefined for any other. */
export function contextOf(req: IncomingMessage): RequestContext | undefined {
  return (req as WithContext)[CONTEXT];
}

export function isSecure(req: IncomingMessage, trustProxy: boolean): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  if (!trustProxy) return false;
  const proto = req.headers['x-forwarded-proto'];
  return typeof proto === 'string' && proto.split(',')[0]!.trim().toLowerCase() === 'https';
}

function cookieSecure(state: PathState, ctx: { secure: boolean }): boolean {
  return state.secureCookie === 'auto' ? ctx.secure : state.secureCookie;
}

function setSessionCookie(ctx: RequestContext, sid: string, deadlines: Deadlines): void {
  const { state } = ctx;
  ctx.cookies = [state.writeCookie(sid, new Date(deadlines.endsAt), cookieSecure(state, ctx))];
}

function clearSessionCookie(ctx: RequestContext): void {
  ctx.cookies = [clearedCookie(ctx.state.cookie, cookieSecure(ctx.state, ctx))];
}

/**
 * Step 2a: the session id from the cookie, or null for an anonymous visitor (no cookie,
 * or one that does not verify: logged, then treated as none). Synchronous, so requests
 * without a session never wait on a promise.
 */
export function sessionCookieOf(ctx: RequestContext, cookieHeader: string | undefined): { sid: string; stale: boolean } | null {
  const reading = ctx.state.readCookie(cookieHeader);
  if (reading.kind === 'none') return null;
  if (reading.kind === 'invalid') {
    ctx.state.logger.info({ event: 'cookie_refused', reason: reading.reason, requestId: ctx.requestId }, 'session cookie refused; visitor treated as anonymous');
    return null;
  }
  return reading;
}

/**
 * Step 2b: load the session (one store round trip). Slides the idle deadline at most
 * once per refresh interval, without holding the request for it. Throws
 * StoreUnavailableError when the store is down.
 */
export function loadSession(ctx: RequestContext, cookie: { sid: string; stale: boolean }): Promise<void> {
  return ctx.state.sessions.load(cookie.sid).then((loaded) => useSession(ctx, cookie, loaded));
}

function useSession(ctx: RequestContext, cookie: { stale: boolean }, loaded: LoadedSession | null): void {
  const { state } = ctx;
  if (!loaded) {
    clearSessionCookie(ctx);
    return;
  }
  ctx.loaded = loaded;
  const now = state.sessions.now();
  if (state.sessions.refreshDue(loaded, now)) {
    const deadlines = deadlinesOf({ createdAt: loaded.record._gateway.createdAt, touchedAt: now }, state.sessions.timing);
    loaded.deadlines = deadlines;
    setSessionCookie(ctx, loaded.sid, deadlines);
    state.sessions.refresh(loaded).catch((error: unknown) => {
      state.logger.warn({ event: 'refresh_failed', err: (error as Error).message, requestId: ctx.requestId }, 'idle refresh not stored');
    });
  } else if (cookie.stale) {
    // Signed with an older secret: re-sign with the newest, so the old one can be retired.
    setSessionCookie(ctx, loaded.sid, loaded.deadlines);
  }
}

/**
 * Step 3: the signed token for this mount. A token carries nothing per request (the
 * request's nonce travels beside it), so one signed for this session version and mount
 * is sent again for TOKEN_REUSE_SECONDS: most requests cost no signature (PROTOCOL.md §4.4).
 * Oversized data is omitted, logged and counted, never truncated.
 */
export function requestToken(ctx: RequestContext): string {
  const { mount, loaded, state } = ctx;
  const iat = Math.floor(state.sessions.now() / 1000);
  const idleExp = loaded ? Math.floor(loaded.deadlines.idleExp / 1000) : null;
  const cached = loaded ? loaded.tokens.get(mount.name) : mount.anonymousToken.current;
  let token = cached && iat >= cached.iat && iat - cached.iat < TOKEN_REUSE_SECONDS && cached.idleExp === idleExp ? cached : undefined;
  if (token === undefined) {
    token = signRequestToken(ctx, iat, idleExp);
    if (loaded) loaded.tokens.set(mount.name, token);
    else mount.anonymousToken.current = token;
  }
  if (token.dataOmitted) state.metrics.dataOmitted.inc({ mount: mount.name });
  return token.token;
}

function signRequestToken(ctx: RequestContext, iat: number, idleExp: number | null): CachedToken {
  const { mount, loaded, state } = ctx;
  const input = {
    audJson: mount.audJson,
    iat,
    sid: loaded ? loaded.sid : null,
    idleExp,
    absExp: loaded ? Math.floor(loaded.deadlines.absExp / 1000) : null,
    dataJson: loaded ? state.sessions.readableJson(loaded, mount) : '{}',
  };
  const token = signToken(mount.signingKey, tokenPayloadJson(input));
  if (token.length <= state.maxTokenBytes) return { token, iat, idleExp, dataOmitted: false };
  state.logger.warn({ event: 'session_data_omitted', mount: mount.name, tokenBytes: token.length, limit: state.maxTokenBytes, requestId: ctx.requestId },
    'readable session data exceeds the token budget; sent without data');
  return { token: signToken(mount.signingKey, tokenPayloadJson({ ...input, dataJson: null })), iat, idleExp, dataOmitted: true };
}

/**
 * What the gateway adds to a forwarded request, into its (already cleaned) headers: the
 * token, this request's nonce, its id. Set on the request itself rather than passed to
 * http-proxy per call, which would copy every header once more.
 */
export function addGatewayHeaders(ctx: RequestContext, headers: IncomingHttpHeaders, withSession: boolean): void {
  if (withSession) {
    headers[TOKEN_HEADER] = requestToken(ctx);
    headers[RID_HEADER] = ctx.rid;
  }
  headers['x-request-id'] = ctx.requestId;
}

function refuseWriteBack(ctx: RequestContext, reason: string, detail: string): void {
  ctx.state.metrics.writeBacksOf(ctx.mount.name, 'refused', reason).inc();
  ctx.state.logger.warn({ event: 'write_back_refused', mount: ctx.mount.name, reason, detail, requestId: ctx.requestId }, 'write-back refused; session left unchanged');
}

/**
 * Step 5: verify and apply a write-back. Stored before the response goes out, so a
 * redirect that follows sees it. Returns false when the response must become an error.
 */
export async function applyWriteBack(ctx: RequestContext, header: string, problem: string | undefined, res: ServerResponse): Promise<boolean> {
  const { state, mount, loaded } = ctx;
  if (problem !== undefined) {
    refuseWriteBack(ctx, 'malformed', problem);
    return true;
  }
  const tokenSid = loaded ? loaded.sid : null;
  let writeBack;
  try {
    writeBack = verifyWriteBack(header, {
      keys: mount.writeBackKeys,
      binding: { aud: mount.name, rid: ctx.rid, sid: tokenSid },
      reserved: RESERVED_SESSION_KEYS,
      mayWrite: mount.mayWrite,
    });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    refuseWriteBack(ctx, error.code, error.message);
    return true;
  }
  let outcome;
  try {
    outcome = await state.sessions.apply(loaded, tokenSid, writeBack, cookieSecure(state, ctx));
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    state.logger.error({ event: 'write_back_failed', mount: mount.name, err: error.message, requestId: ctx.requestId }, 'write-back not stored: store unavailable');
    sendError(res, 'SGW_ERR_STORE_UNAVAILABLE');
    return false;
  }
  switch (outcome.kind) {
    case 'stored':
      setSessionCookie(ctx, outcome.sid, outcome.deadlines);
      break;
    case 'destroyed':
      clearSessionCookie(ctx);
      break;
    case 'gone':
      state.logger.info({ event: 'write_back_session_gone', mount: mount.name, requestId: ctx.requestId }, 'session ended before the write-back; nothing stored');
      clearSessionCookie(ctx);
      break;
    case 'too_large':
      refuseWriteBack(ctx, 'too_large', `session would be ${outcome.bytes} bytes`);
      return true;
    case 'contended':
      state.logger.error({ event: 'write_back_contended', mount: mount.name, requestId: ctx.requestId }, 'write-back not stored after repeated conflicts');
      sendError(res, 'SGW_ERR_SESSION_CONTENDED');
      return false;
  }
  state.metrics.writeBacksOf(mount.name, 'applied', writeBack.destroy ? 'destroy' : writeBack.regenerate ? 'regenerate' : writeBack.revokeUser ? 'revoke_user' : 'set').inc();
  return true;
}

/**
 * Step 6: respond. Owned headers never reach the client; a backend dying mid-body
 * closes the client connection instead of leaving it hanging (shared/FINDINGS.md).
 */
export async function respond(ctx: RequestContext, upstream: IncomingMessage, res: ServerResponse): Promise<void> {
  ctx.state.metrics.upstreamDurationOf(ctx.mount.name).observe((performance.now() - ctx.upstreamStartedAt) / 1000);
  upstream.on('close', () => {
    if (!upstream.complete) res.destroy();
  });
  const { headers, hasRequestId, writeBack, writeBackProblem, droppedSessionCookies } = splitResponseHeaders(upstream, ctx.state.cookie.name);
  if (droppedSessionCookies > 0) {
    ctx.state.logger.warn({ event: 'backend_session_cookie_dropped', mount: ctx.mount.name, count: droppedSessionCookies, requestId: ctx.requestId },
      'backend tried to set the gateway\'s session cookie; dropped');
  }
  if ((writeBack !== undefined || writeBackProblem !== undefined) && !(await applyWriteBack(ctx, writeBack ?? '', writeBackProblem, res))) {
    upstream.resume();
    return;
  }
  if (res.destroyed) {
    upstream.destroy();
    return;
  }
  for (const cookie of ctx.cookies) headers.push('set-cookie', cookie);
  // The client can quote it when reporting a problem; it is in the gateway's and the backend's logs.
  if (!hasRequestId) headers.push('x-request-id', ctx.requestId);
  res.writeHead(upstream.statusCode ?? 502, upstream.statusMessage, headers);
  upstream.pipe(res);
}
