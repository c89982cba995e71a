/**
 * express-session options that agree with the gateway. A session shared with the gateway
 * must carry the gateway's cookie name, be signed with its secrets, use its id format and
 * cookie attributes, and expire when the gateway says: those come from the gateway's
 * config and cannot be overridden here. The few settings that are the app's own choice
 * can; anything else is refused, naming the option and why.
 */
import type session from 'express-session';
import type { FrozenConfig } from '../config/load.ts';
import { newSessionId } from '../session/sessions.ts';

export type ExpressSessionOptions = session.SessionOptions & { store: session.Store };

/** The settings an app may choose; the rest are the gateway's. */
export interface SessionOptionOverrides {
  /**
   * Re-send the cookie on every response (default true), so the browser's cookie slides
   * with the idle deadline as the gateway's refreshes make it slide. With false the
   * cookie is sent only when the session changes: a user who only reads through the
   * Express app keeps the cookie's first expiry, though the stored session slides.
   */
  rolling?: boolean;
  /** Save unchanged sessions too (default false). Supported: an unchanged save is only a touch. */
  resave?: boolean;
  /** Store new, empty sessions (default false, as the gateway: an anonymous visitor costs no write). */
  saveUninitialized?: boolean;
  /** What `req.session = null` does: "keep" (default) or "destroy". */
  unset?: 'keep' | 'destroy';
  /** Trust X-Forwarded-Proto for `cookie.secure: 'auto'` (express-session's `proxy`; default: Express's "trust proxy"). */
  proxy?: boolean;
}

const ALLOWED: ReadonlySet<string> = new Set(['rolling', 'resave', 'saveUninitialized', 'unset', 'proxy']);

const WHY_REFUSED: Record<string, string> = {
  store: 'this store is the one the options are for',
  name: 'must be the gateway\'s session.cookie.name; change it in the gateway config',
  secret: 'must be the gateway\'s session.secrets (newest first); change them in the gateway config',
  genid: 'session ids must be the gateway\'s (192 random bits, lower-case hex)',
  cookie: 'the cookie\'s attributes and lifetime are the gateway\'s session.cookie, idleTimeout and absoluteLifetime; change them in the gateway config',
};

export function sessionOptionsFor(store: session.Store, config: FrozenConfig, overrides: SessionOptionOverrides): ExpressSessionOptions {
  const problems: string[] = [];
  for (const key of Object.keys(overrides)) {
    if (!ALLOWED.has(key)) problems.push(`${key}: ${WHY_REFUSED[key] ?? 'not an express-session option this store supports'}`);
  }
  if (overrides.unset !== undefined && overrides.unset !== 'keep' && overrides.unset !== 'destroy') {
    problems.push(`unset: must be "keep" or "destroy", got ${JSON.stringify(overrides.unset)}`);
  }
  if (problems.length > 0) throw new TypeError(`express-session options refused:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  const { session: s } = config;
  return {
    store,
    name: s.cookie.name,
    secret: [...s.secrets],
    genid: newSessionId,
    resave: overrides.resave ?? false,
    saveUninitialized: overrides.saveUninitialized ?? false,
    rolling: overrides.rolling ?? true,
    ...(overrides.unset ? { unset: overrides.unset } : {}),
    ...(overrides.proxy !== undefined ? { proxy: overrides.proxy } : {}),
    cookie: {
      path: s.cookie.path,
      ...(s.cookie.domain ? { domain: s.cookie.domain } : {}),
      httpOnly: s.cookie.httpOnly,
      sameSite: s.cookie.sameSite,
      secure: s.cookie.secure,
      // A new session's first cookie; a loaded session's is bounded by its absolute end (store.ts get()).
      maxAge: Math.min(s.idleTimeout, s.absoluteLifetime),
    },
  };
}
