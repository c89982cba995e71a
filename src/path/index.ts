/**
 * The request path, in order, the same six steps for requests and WebSocket upgrades:
 *
 *   1. matchMount      match-mount.ts   normalise the path, find the mount, clean the headers
 *   2. loadSession     load-session.ts  read the cookie; load the session (one store round trip; on a
 *                                       locked mount, as its lease is taken, given back at step 5 or on close)
 *   3. sign            sign.ts          the token for this mount, the nonce, the request id
 *   4. forward         forward.ts       to the mount's upstream (upgrade.ts for WebSockets)
 *   5. applyWriteBack  write-back.ts    on the response head, before it goes out
 *   6. respond         respond.ts       the head, then the body, to the client
 *
 * Steps 1-3 are synchronous unless there is a session to load: an anonymous request never
 * waits on a promise. Steps 5-6 run when the upstream's response head arrives.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { rawGatewayError, sendError, type GatewayErrorCode } from '../errors.ts';
import type { ResponseHeaders } from '../proxy/headers.ts';
import { StoreUnavailableError } from '../session/store.ts';
import type { PathState, RequestContext } from './context.ts';
import { forward } from './forward.ts';
import { loadSession, releaseLease, sessionCookieOf, SessionLockedError } from './load-session.ts';
import { matchMount } from './match-mount.ts';
import { respond, type ResponseSink } from './respond.ts';
import { sign } from './sign.ts';
import { forwardUpgrade } from './upgrade.ts';
import { applyWriteBack } from './write-back.ts';

export { contextOf, requestIdOf, type PathState, type RequestContext } from './context.ts';
export { buildPathState, type PathDependencies } from './state.ts';

/** The gateway's own endpoints (/_gateway/...), answered outside the path. */
export type OwnEndpoints = (req: IncomingMessage, res: ServerResponse, path: string) => void;

export function serveRequest(req: IncomingMessage, res: ServerResponse, state: PathState, shuttingDown: boolean, own: OwnEndpoints): void {
  // 1. match the mount
  const admission = matchMount(req, state, shuttingDown, false);
  if (admission.kind === 'own') return own(req, res, admission.path);
  if (admission.kind === 'refuse') {
    return sendError(res, admission.code, admission.code === 'SGW_ERR_SHUTTING_DOWN' ? { connection: 'close' } : {});
  }
  const { ctx } = admission;
  // A locked mount's lease goes back when the response closes, whatever ended it (the client
  // went away, the upstream timed out or failed); a wait for it ends with the client.
  let gone: AbortController | undefined;
  if (ctx.mount.lock) {
    gone = new AbortController();
    // 'close' fires once, as in forward.ts and ops/instrument.ts: no once wrapper.
    res.on('close', () => {
      gone!.abort();
      releaseLease(ctx);
    });
  }
  // 2 and 3, then 4. forward: 5 and 6 run on the response head
  withSignedSession(ctx, req, () => forward(ctx, req, res, onResponseHead), (code, headers) => sendError(res, code, headers), gone?.signal);
}

export function serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, state: PathState, shuttingDown: boolean): void {
  // 1. match the mount (the gateway's own endpoints take no upgrades)
  const admission = matchMount(req, state, shuttingDown, true);
  if (admission.kind !== 'forward') return void socket.end(rawGatewayError(admission.kind === 'refuse' ? admission.code : 'SGW_ERR_NO_MOUNT'));
  // 2 and 3, then 4. forward the handshake: 5 and 6 run on its answer
  withSignedSession(admission.ctx, req, () => forwardUpgrade(admission.ctx, req, socket, head, onResponseHead),
    (code) => void socket.end(rawGatewayError(code)));
}

/**
 * Steps 2 and 3. `refuse` gets a code when the store is down (503: never forwarded without
 * the session it has) or a locked mount's lease stayed taken (503 with Retry-After).
 * `lockSignal` (requests to locked mounts only; upgrades take no lease, a WebSocket would
 * hold its session for the connection's life) ends a wait for the lease.
 */
function withSignedSession(ctx: RequestContext, req: IncomingMessage, next: () => void,
  refuse: (code: GatewayErrorCode, headers?: Record<string, string>) => void, lockSignal?: AbortSignal): void {
  // 2. load the session
  const cookie = ctx.mount.config.session ? sessionCookieOf(ctx, req.headers.cookie) : null;
  if (cookie === null) {
    // 3. sign
    sign(ctx);
    return next();
  }
  const span = ctx.trace?.step('session.load', { 'sgw.mount': ctx.mount.name });
  loadSession(ctx, cookie, lockSignal).then(() => {
    if (span) {
      span.end();
      ctx.sessionOutcome = ctx.loaded ? 'hit' : 'miss';
    }
    // 3. sign
    sign(ctx);
    next();
  }, (error: unknown) => {
    if (span) {
      span.end(error);
      ctx.sessionOutcome = error instanceof SessionLockedError ? 'locked' : 'unavailable';
    }
    if (error instanceof SessionLockedError) {
      if (!error.clientGone) ctx.state.logger.warn({ event: 'session_lock_timeout', mount: ctx.mount.name, requestId: ctx.requestId }, 'session lock not free in time; answered 503');
      return refuse('SGW_ERR_SESSION_LOCKED', { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) });
    }
    if (!(error instanceof StoreUnavailableError)) throw error;
    ctx.state.logger.error({ event: 'store_unavailable', err: error.message, requestId: ctx.requestId }, 'session store unavailable');
    refuse('SGW_ERR_STORE_UNAVAILABLE');
  }).catch((error: unknown) => {
    ctx.state.logger.error({ event: 'request_failed', err: (error as Error).stack, requestId: ctx.requestId }, 'unexpected error on the request path');
    refuse('SGW_ERR_UPSTREAM_FAILED');
  });
}

/** Steps 5 and 6, on the upstream's response head (for an upgrade: its 101, or its refusal). */
function onResponseHead(ctx: RequestContext, sink: ResponseSink, status: number, statusText: string, head: ResponseHeaders): void {
  // 5. apply the write-back
  if (head.writeBack === undefined && head.writeBackProblem === undefined) {
    releaseLease(ctx); // nothing to store: the session's next request may go
    return respond(ctx, sink, status, statusText, head); // 6.
  }
  sink.pause();
  const span = ctx.trace?.step('session.write', { 'sgw.mount': ctx.mount.name });
  applyWriteBack(ctx, head.writeBack, head.writeBackProblem).then((refusal) => {
    span?.end(refusal ?? undefined);
    // The response is stored (or refused): the session's next request may go.
    releaseLease(ctx);
    // 6. respond, unless the write-back could not be stored
    if (refusal === null) respond(ctx, sink, status, statusText, head);
    else sink.withhold(refusal, ctx.cookies);
  }, (error: unknown) => {
    span?.end(error);
    ctx.state.logger.error({ event: 'respond_failed', err: (error as Error).stack, requestId: ctx.requestId }, 'failed while applying a write-back');
    sink.withhold('SGW_ERR_UPSTREAM_FAILED');
  });
}

/** The steps by name, in order: what the index above runs (a test keeps them in step). */
export const STEPS = ['matchMount', 'loadSession', 'sign', 'forward', 'applyWriteBack', 'respond'] as const;
