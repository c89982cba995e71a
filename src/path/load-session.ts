/**
 * Step 2: load the session. The cookie is read synchronously, so an anonymous visitor
 * never waits on a promise; a session costs one store round trip. The idle deadline
 * slides at most once per refresh interval, without holding the request for the write.
 */
import type { LoadedSession } from '../session/sessions.ts';
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

/** Loads the session into ctx.loaded. Rejects with StoreUnavailableError when the store is down. */
export function loadSession(ctx: RequestContext, cookie: SessionCookie): Promise<void> {
  return ctx.state.sessions.load(cookie.sid).then((loaded) => useSession(ctx, cookie, loaded));
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
