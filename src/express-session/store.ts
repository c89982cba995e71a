/**
 * An express-session Store over the gateway's own session code: the same Redis layout and
 * compare-and-set Lua (session/redis-store.ts), the same deadlines, queue, moved pointers
 * and user index (session/sessions.ts). An Express app using it with the gateway's cookie
 * name and secrets shares sessions with every mount, and its saves lose nothing:
 *
 * - get() remembers the version it loaded beside the session object express-session builds;
 * - set() writes only the top-level keys the request changed or deleted (diff.ts), applied
 *   by compare-and-set to the session as stored now, and never re-creates an ended session;
 * - touch() slides the idle deadline at most once per refresh interval, never past the
 *   absolute end; regenerate() and destroy() follow the gateway's rules.
 *
 * docs/EXPRESS-SESSION.md says what is supported, refused, and what differs from a write-back.
 */
import session from 'express-session';
import type { Request } from 'express';
import type { Logger } from 'pino';
import type { FrozenConfig } from '../config/load.ts';
import { createLogger } from '../ops/logger.ts';
import { createMetrics } from '../ops/metrics.ts';
import type { JsonObject } from '#protocol';
import { createStore, usesRedis } from '../session/create-store.ts';
import { dataOf, type SessionRecord } from '../session/record.ts';
import { MAX_CAS_ATTEMPTS, MOVED_POINTER_TTL_MS, SessionManager, type LoadedSession, type WriteBackOutcome } from '../session/sessions.ts';
import type { SessionStore } from '../session/store.ts';
import { applyDiff, diffSession, isEmptyDiff } from './diff.ts';
import { ExpressStoreError } from './errors.ts';
import { sessionOptionsFor, type ExpressSessionOptions, type SessionOptionOverrides } from './options.ts';

export interface GatewaySessionStoreOptions {
  /** The gateway's config (loadConfigFile('config/gateway.yaml')): cookie, secrets, deadlines, Redis. */
  config: FrozenConfig;
  /**
   * A session store to share instead of connecting one from `config.store` (the gateway's
   * own, `gateway.store`, when both run in one process). Without it the config must name Redis.
   */
  store?: SessionStore;
  logger?: Logger;
  /** Clock in epoch ms (tests). */
  now?: () => number;
}

/** What the store knows about the session object express-session holds for one request. */
interface Snapshot {
  /** What this request last read or wrote: the base its next save is diffed against. */
  base: JsonObject;
  /** The stored version it read, for compare-and-set; null once it wrote (the next save re-reads). */
  loaded: LoadedSession | null;
  /** Not stored yet. `basis`: the session a regenerate replaced (its createdAt carries over). */
  fresh: { basis?: SessionRecord } | null;
}

/** Carries the loaded version from get() to createSession(); symbols are not copied into the Session. */
const LOADED = Symbol('session-gateway.loaded');

type Callback = (err?: unknown) => void;
type ExpressSession = session.Session & Partial<session.SessionData>;

/** Plain JSON of a session object, as connect-redis would store it. */
function plainOf(sess: object): JsonObject {
  return JSON.parse(JSON.stringify(sess)) as JsonObject;
}

export class GatewaySessionStore extends session.Store {
  readonly sessions: SessionManager;
  readonly config: FrozenConfig;
  readonly #logger: Logger;
  readonly #ownsStore: boolean;
  readonly #snapshots = new WeakMap<object, Snapshot>();

  constructor(options: GatewaySessionStoreOptions) {
    super();
    const { config } = options;
    if (!options.store && !usesRedis(config)) {
      throw new TypeError('store.redis: the express-session store needs the gateway\'s Redis (store.redis.url, sentinels or cluster), ' +
        'or `store: gateway.store` when the gateway runs in the same process');
    }
    this.config = config;
    this.#logger = options.logger ?? createLogger(config.logging.level);
    const metrics = createMetrics({ defaultMetrics: false });
    const store = options.store ?? createStore(config, this.#logger, metrics);
    this.#ownsStore = !options.store;
    const { session: s } = config;
    this.sessions = new SessionManager({
      store,
      timing: { idleMs: s.idleTimeout, absoluteMs: s.absoluteLifetime, refreshMs: s.refreshInterval },
      cookieShape: { path: s.cookie.path, httpOnly: s.cookie.httpOnly, domain: s.cookie.domain, sameSite: s.cookie.sameSite },
      maxBytes: s.maxBytes,
      userKey: s.userKey,
      now: options.now,
      logger: this.#logger,
      metrics,
    });
  }

  /**
   * express-session options that match the gateway (cookie name, secrets, id format,
   * cookie attributes and lifetime), with this store. Only the settings that are safe to
   * change may be overridden; anything else is refused with the reason.
   *
   * @example app.use(session(store.sessionOptions()));
   */
  sessionOptions(overrides: SessionOptionOverrides = {}): ExpressSessionOptions {
    return sessionOptionsFor(this, this.config, overrides);
  }

  get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    this.sessions.load(sid).then((loaded) => {
      if (!loaded) return callback(null, null);
      // A parse of its own: the loaded record is shared with other requests and must not be mutated.
      const value = JSON.parse(loaded.stored.raw) as JsonObject & { cookie: Record<string, unknown> };
      delete value._gateway;
      // express-session sets the cookie to expire originalMaxAge after now: never past the session's end.
      value.cookie.originalMaxAge = Math.max(0, Math.min(this.sessions.timing.idleMs, loaded.deadlines.absExp - this.sessions.now()));
      (value as Record<symbol, unknown>)[LOADED] = loaded;
      callback(null, value as unknown as session.SessionData);
    }, (error: unknown) => callback(error));
  }

  override createSession(req: Request, sess: session.SessionData): session.Session & session.SessionData {
    const loaded = (sess as unknown as Record<symbol, LoadedSession | undefined>)[LOADED];
    const created = super.createSession(req, sess);
    if (loaded) this.#snapshots.set(created, { base: dataOf(loaded.record), loaded, fresh: null });
    return created;
  }

  set(sid: string, sess: session.SessionData, callback: Callback = () => {}): void {
    this.#save(sid, sess as ExpressSession).then(() => callback(), callback);
  }

  async #save(sid: string, sess: ExpressSession): Promise<void> {
    const after = plainOf(sess);
    if (Object.hasOwn(after, '_gateway')) throw new ExpressStoreError('SGW_EXPRESS_RESERVED_KEY', 'req.session._gateway is session-gateway\'s bookkeeping');
    const { cookie: _cookie, ...data } = after;
    const snapshot = this.#snapshots.get(sess) ?? { base: {}, loaded: null, fresh: {} };
    let outcome: WriteBackOutcome | { kind: 'taken' };
    if (snapshot.fresh) {
      outcome = await this.sessions.createAs(sid, data, sess.cookie?.secure === true, snapshot.fresh.basis);
    } else {
      const diff = diffSession(snapshot.base, data);
      // Nothing changed (resave: true, or save() called twice): at most a touch, not a write.
      if (isEmptyDiff(diff)) return snapshot.loaded ? this.#touch(snapshot.loaded) : undefined;
      outcome = await this.sessions.change(snapshot.loaded, sid, (current) => applyDiff(current, diff));
    }
    this.#check(outcome, sid);
    this.#snapshots.set(sess, { base: data, loaded: null, fresh: null });
  }

  #check(outcome: WriteBackOutcome | { kind: 'taken' }, sid: string): void {
    switch (outcome.kind) {
      case 'stored':
      case 'destroyed':
        return;
      case 'gone':
        this.#logger.info({ event: 'express_save_session_gone' }, 'express-session save found the session ended; nothing stored');
        throw new ExpressStoreError('SGW_EXPRESS_SESSION_GONE');
      case 'too_large':
        throw new ExpressStoreError('SGW_EXPRESS_SESSION_TOO_LARGE', `${outcome.bytes} bytes, limit ${this.config.session.maxBytes}`);
      case 'contended':
        this.#logger.error({ event: 'express_save_contended' }, 'express-session save not stored after repeated conflicts');
        throw new ExpressStoreError('SGW_EXPRESS_SESSION_CONTENDED');
      case 'taken':
        throw new ExpressStoreError('SGW_EXPRESS_ID_TAKEN', `id of ${sid.length} characters`);
    }
  }

  /** Slides the idle deadline when the refresh interval has passed; a conflict means another writer already did. */
  async #touch(loaded: LoadedSession): Promise<void> {
    if (this.sessions.refreshDue(loaded, this.sessions.now())) await this.sessions.refresh(loaded);
  }

  override touch(_sid: string, sess: session.SessionData, callback: Callback = () => {}): void {
    const snapshot = this.#snapshots.get(sess);
    if (!snapshot?.loaded) return callback();
    this.#touch(snapshot.loaded).then(() => callback(), callback);
  }

  destroy(sid: string, callback: Callback = () => {}): void {
    this.#destroy(sid).then(() => callback(), callback);
  }

  /** The gateway's destroy: the stored session, and its id in the user's index. */
  async #destroy(sid: string, loaded?: LoadedSession | null): Promise<void> {
    const current = loaded === undefined ? await this.sessions.load(sid) : loaded;
    await this.sessions.apply(current, sid, { destroy: true }, false);
  }

  /**
   * express-session's meaning (a new id and an empty session; passport copies what it keeps),
   * with the gateway's rules: writes still addressed to the old id follow a moved pointer to
   * the new one, the old id dies at once, and the new session keeps the old createdAt, so a
   * login never extends the absolute lifetime.
   */
  override regenerate(req: Request, callback: Callback): void {
    const oldSid = req.sessionID;
    const snapshot = req.session ? this.#snapshots.get(req.session) : undefined;
    (this as unknown as { generate(req: Request): void }).generate(req);
    const newSid = req.sessionID;
    const work = async () => {
      if (!snapshot || snapshot.fresh) return;
      const current = snapshot.loaded ?? (await this.sessions.load(oldSid));
      if (!current) return;
      this.#snapshots.set(req.session, { base: {}, loaded: null, fresh: { basis: current.record } });
      // One atomic switch (the gateway's own regenerate uses it too): the old id goes and its
      // pointer appears only if nobody changed or ended it meanwhile; a changed one is re-read.
      let loaded: typeof current | null = current;
      for (let attempt = 0; loaded && attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const moved = await this.sessions.store.moveSession(oldSid, loaded.stored.version, newSid, MOVED_POINTER_TTL_MS);
        if (moved !== 'conflict') return;
        loaded = await this.sessions.load(oldSid);
      }
    };
    work().then(() => callback(), callback);
  }

  /** Closes the Redis connection this store opened (not a shared one). */
  async close(): Promise<void> {
    if (this.#ownsStore) await this.sessions.store.close();
  }
}
