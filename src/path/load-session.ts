/**
 * Step 2: load the session. The cookie is read synchronously, so an anonymous visitor
 * never waits on a promise; a session costs one store round trip. The idle deadline
 * slides at most once per refresh interval, without holding the request for the write.
 */
import type { LoadedSession } from '../session/sessions.ts';
import type { LockSettings } from '../session/session-lock.ts';
import { deadlinesOf } from '../session/record.ts';
import { setSessionCookie, clearSessionCookie, type RequestContext } from './context.ts';

export interface SessionCookie {
  sid: string;
  /** Signed with an older secret: re-signed with the newest on the way out. */
  stale: boolean;
}

/**
 * The session id from the cookie, or null for an anonymous visitor (no cookie, or one
 * that does not verify: logged, then treated as none).
 */
export function sessionCookieOf(ctx: RequestContext, cookieHeader: string | undefined): SessionCookie | null {
  const reading = ctx.state.readCookie(cookieHeader);
  if (reading.kind === 'none') return null;
  if (reading.kind === 'invalid') {
    ctx.state.logger.info({ event: 'cookie_refused', reason: reading.reason, requestId: ctx.requestId }, 'session cookie refused; visitor treated as anonymous');
    return null;
  }
  return reading;
}

/** A locked mount's request could not get its session's lease in time (or the client left while it waited). */
export class SessionLockedError extends Error {
  readonly retryAfterMs: number;
  readonly clientGone: boolean;
  constructor(retryAfterMs: number, clientGone: boolean) {
    super(clientGone ? 'the client went away while waiting for the session lock' : 'the session lock was not free in time');
    this.name = 'SessionLockedError';
    this.retryAfterMs = retryAfterMs;
    this.clientGone = clientGone;
  }
}

/**
 * Loads the session into ctx.loaded. Rejects with StoreUnavailableError when the store is
 * down. A request to a locked mount passes `lockSignal` (its client's going away) and
 * takes the lease: then SessionLockedError when the lease stays taken.
 */
export function loadSession(ctx: RequestContext, cookie: SessionCookie, lockSignal?: AbortSignal): Promise<void> {
  if (lockSignal && ctx.mount.lock) return loadLocked(ctx, cookie, ctx.mount.lock, lockSignal);
  return ctx.state.sessions.load(cookie.sid).then((loaded) => useSession(ctx, cookie, loaded));
}

/**
 * A locked mount: the session is loaded as its lease is taken (a bounded wait), so this
 * request sees what the previous one stored. A cookie whose session has ended takes no lease.
 */
async function loadLocked(ctx: RequestContext, cookie: SessionCookie, lock: LockSettings, signal: AbortSignal): Promise<void> {
  const outcome = await ctx.state.sessions.loadLocked(cookie.sid, lock, signal);
  if (outcome.kind === 'timeout' || outcome.kind === 'aborted') throw new SessionLockedError(outcome.kind === 'timeout' ? outcome.retryAfterMs : 0, outcome.kind === 'aborted');
  if (outcome.kind === 'gone') return useSession(ctx, cookie, null);
  if (signal.aborted) {
    // The client left just as the lease was taken: its close handler has run already.
    void outcome.lease.release();
    throw new SessionLockedError(0, true);
  }
  ctx.lease = outcome.lease;
  useSession(ctx, cookie, outcome.loaded);
}

/** Gives the session's lease back (idempotent): once the response is stored, or when it closes whatever ended it. */
export function releaseLease(ctx: RequestContext): void {
  const { lease } = ctx;
  if (!lease) return;
  ctx.lease = null;
  void lease.release();
}

export function useSession(ctx: RequestContext, cookie: { stale: boolean }, loaded: LoadedSession | null): void {
  const { state } = ctx;
  if (!loaded) {
    // Expired, destroyed or unknown: the browser's cookie is cleared.
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
