/**
 * The path's state for one config generation, built at start-up and on each reload:
 * the session manager and cookie functions, over the runtime's mounts.
 */
import type { Logger } from 'pino';
import type { FrozenConfig } from '../config/load.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Tracing } from '../ops/tracing.ts';
import type { Runtime } from '../runtime.ts';
import { createCookieReader, createCookieWriter, createSetCookieVerifier } from '../session/cookie.ts';
import { SessionManager } from '../session/sessions.ts';
import type { SessionStore } from '../session/store.ts';
import type { PathState } from './context.ts';

export interface PathDependencies {
  readonly store: SessionStore;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Clock in epoch ms (tests). */
  readonly now?: (() => number) | undefined;
  /** Built once per process (tracing is not reloadable); null when off. */
  readonly tracing?: Tracing | null | undefined;
}

export function buildPathState(config: FrozenConfig, runtime: Runtime, deps: PathDependencies): PathState {
  const { session } = config;
  const cookie = { name: session.cookie.name, domain: session.cookie.domain, path: session.cookie.path, httpOnly: session.cookie.httpOnly, sameSite: session.cookie.sameSite };
  return {
    matchMount: runtime.matchMount,
    sessions: new SessionManager({
      store: deps.store,
      timing: { idleMs: session.idleTimeout, absoluteMs: session.absoluteLifetime, refreshMs: session.refreshInterval },
      cookieShape: cookie,
      maxBytes: session.maxBytes,
      userKey: session.userKey,
      now: deps.now,
      logger: deps.logger,
      metrics: deps.metrics,
    }),
    cookie,
    readCookie: createCookieReader(cookie, session.secrets),
    writeCookie: createCookieWriter(cookie, session.secrets[0]!),
    signedSessionCookie: createSetCookieVerifier(cookie, session.secrets),
    secureCookie: session.cookie.secure,
    trustProxy: config.trustProxy,
    maxTokenBytes: config.signing.maxTokenBytes,
    logger: deps.logger,
    metrics: deps.metrics,
    tracing: deps.tracing ?? null,
  };
}
