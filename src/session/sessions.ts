/**
 * Session semantics on top of a SessionStore: load with expiry the gateway enforces
 * itself, idle refresh at most once per interval, and write-backs applied as atomic
 * patches (compare-and-set with bounded retries), regenerate and destroy without
 * resurrection. docs/SESSION-LIFECYCLE.md tells the story; this file is the code.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { applyMergePatch, applyOperations, ProtocolError, type JsonObject, type ProtocolErrorCode } from '#protocol';
import type { WriteBack } from '#protocol';
import type { Metrics } from '../ops/metrics.ts';
import {
  bookkeepingProblem, dataOf, deadlinesOf, newRecord, withData,
  type CookieShape, type Deadlines, type SessionRecord, type Timing,
} from './record.ts';
import type { SessionStore, StoredSession } from './store.ts';
import { SessionLocks, type Lease, type LockSettings } from './session-lock.ts';

/** loadLocked's result: the session under its lease, or why there is none. */
export type LockedLoad =
  | { kind: 'locked'; loaded: LoadedSession; lease: Lease }
  | { kind: 'gone' }
  | { kind: 'timeout'; retryAfterMs: number }
  | { kind: 'aborted' };

/**
 * Compare-and-set attempts before a write-back is reported as failed. Within one process
 * writes to a session are queued (see #serially), so conflicts come only from other
 * replicas or from idle refreshes; retries back off with jitter.
 */
export const MAX_CAS_ATTEMPTS = 32;
const RETRY_BACKOFF_MS = 2;
/** How long writes to a regenerated session's old id are redirected to the new one. */
export const MOVED_POINTER_TTL_MS = 120_000;
/** Moved pointers a write or destroy follows: a session regenerated again while the first pointer lives. */
const MAX_MOVED_HOPS = 4;

export interface LoadedSession {
  sid: string;
  stored: StoredSession;
  /**
   * The parsed stored value: the same object for every request that read the same stored
   * version, so the request path can key its per-version caches on it (path/sign.ts).
   */
  record: SessionRecord;
  deadlines: Deadlines;
}

/** Parsed sessions kept by id, reused while the stored text is unchanged. */
export const PARSED_CACHE_ENTRIES = 10_000;

interface ParsedEntry {
  raw: string;
  record: SessionRecord;
}

export type WriteBackOutcome =
  /**
   * `followed`: the write was addressed to an id that a regenerate had moved, and landed in
   * the session it moved to. That session's id is never handed to this response's client,
   * which presented the old id (session fixation): only the regenerating response gets it.
   */
  | { kind: 'stored'; sid: string; deadlines: Deadlines; newSid: boolean; followed?: boolean }
  | { kind: 'destroyed' }
  | { kind: 'gone' }
  | { kind: 'too_large'; bytes: number }
  /** The changes cannot apply to what is stored (an operation's type_mismatch or unsafe_number); nothing stored. */
  | { kind: 'refused'; code: ProtocolErrorCode; detail: string }
  | { kind: 'contended' }
  /** The request's lease (mounts[].lock) ran out and another request took it: nothing stored. */
  | { kind: 'lease_lost' };

export interface SessionManagerOptions {
  store: SessionStore;
  timing: Timing;
  cookieShape: CookieShape;
  maxBytes: number;
  /** Dotted path of the user id inside the session data. */
  userKey: string;
  now?: () => number;
  logger: Logger;
  metrics: Metrics;
}

/** An operation that cannot apply to the stored value is a refusal, like a protocol error. */
function refusedOutcome(error: unknown): WriteBackOutcome {
  if (error instanceof ProtocolError) return { kind: 'refused', code: error.code, detail: error.message };
  throw error;
}

/**
 * 192 random bits as lower-case hex: no `-` or `_`, because some stores shared with
 * backends (Catalyst's PSGI session store) only tell their own records apart from
 * sessions whose ids are letters and digits.
 */
export function newSessionId(): string {
  return randomBytes(24).toString('hex');
}

function lookup(data: JsonObject, dotted: readonly string[]): string | null {
  let node: unknown = data;
  for (const part of dotted) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, part)) return null;
    node = (node as JsonObject)[part];
  }
  return typeof node === 'string' || typeof node === 'number' ? String(node) : null;
}

export class SessionManager {
  readonly store: SessionStore;
  readonly timing: Timing;
  readonly locks: SessionLocks;
  readonly #o: SessionManagerOptions;
  readonly #now: () => number;
  readonly #userPath: readonly string[];
  /** Saves a JSON.parse on every read of an unchanged session, and keeps one record object per stored version. */
  readonly #parsed = new LRUCache<string, ParsedEntry>({ max: PARSED_CACHE_ENTRIES });

  constructor(options: SessionManagerOptions) {
    this.#o = options;
    this.store = options.store;
    this.timing = options.timing;
    this.locks = new SessionLocks(options.store, options.logger);
    this.#now = options.now ?? Date.now;
    this.#userPath = options.userKey.split('.');
  }

  now(): number {
    return this.#now();
  }

  /** Parses and checks a stored value; null (and a log line) when it cannot be trusted or has ended. */
  #inspect(sid: string, stored: StoredSession, now: number): LoadedSession | 'expired' | 'corrupt' {
    const cached = this.#parsed.get(sid);
    if (cached && cached.raw === stored.raw) {
      const deadlines = deadlinesOf(cached.record._gateway, this.timing);
      if (now >= deadlines.endsAt) return 'expired';
      return { sid, stored, record: cached.record, deadlines };
    }
    let value: unknown;
    try {
      value = JSON.parse(stored.raw);
    } catch {
      value = undefined;
    }
    const problem = bookkeepingProblem(value, now);
    if (problem) {
      this.#o.logger.warn({ event: 'session_corrupt', reason: problem }, 'stored session has no usable bookkeeping; treated as expired');
      return 'corrupt';
    }
    const record = value as SessionRecord;
    const deadlines = deadlinesOf(record._gateway, this.timing);
    if (now >= deadlines.endsAt) return 'expired';
    this.#remember(sid, stored.raw, record);
    return { sid, stored, record, deadlines };
  }

  /**
   * Keeps a parsed stored value for the reads that follow:
   * after a read, and after an update (what was just stored is what the next read returns;
   * the session is being read anyway, so the entry replaces its old version).
   */
  #remember(sid: string, raw: string, record: SessionRecord): void {
    this.#parsed.set(sid, { raw, record });
  }

  /** One store round trip. Rejects with StoreUnavailableError when the store is down. */
  load(sid: string): Promise<LoadedSession | null> {
    return this.store.get(sid).then((stored) => this.#loaded(sid, stored));
  }

  /**
   * For locked mounts: waits (bounded) for the session's lease and loads the session as it
   * is when the lease is taken, so a request sees what the one before it stored. No lease
   * is taken for a session that does not exist (an anonymous visitor) or has ended.
   */
  async loadLocked(sid: string, settings: LockSettings, signal?: AbortSignal): Promise<LockedLoad> {
    const outcome = await this.locks.acquire(sid, settings, signal);
    if (outcome.kind !== 'locked') return outcome;
    const loaded = this.#loaded(sid, outcome.stored);
    if (!loaded) {
      await outcome.lease.release();
      return { kind: 'gone' };
    }
    return { kind: 'locked', loaded, lease: outcome.lease };
  }

  #loaded(sid: string, stored: StoredSession | null): LoadedSession | null {
    if (!stored) {
      this.#o.metrics.sessionLoadsOf('miss').inc();
      return null;
    }
    const now = this.#now();
    const loaded = this.#inspect(sid, stored, now);
    if (typeof loaded === 'string') {
      this.#o.metrics.sessionLoadsOf(loaded).inc();
      // The gateway enforces its own deadlines; the store's TTL is only the backstop.
      if (loaded === 'expired') void this.store.compareAndDelete(sid, stored.version).catch(() => {});
      return null;
    }
    this.#o.metrics.sessionLoadsOf('hit').inc();
    return loaded;
  }

  refreshDue(loaded: LoadedSession, now: number): boolean {
    return now - loaded.record._gateway.touchedAt >= this.timing.refreshMs;
  }

  #ttl(deadlines: Deadlines, now: number): number {
    return Math.max(1, deadlines.endsAt - now);
  }

  /**
   * Slides the idle deadline. A conflict means someone else wrote (and so refreshed) in
   * the meantime; nothing to do. Returns the new deadlines, or null when nothing was written.
   */
  async refresh(loaded: LoadedSession): Promise<Deadlines | null> {
    const now = this.#now();
    const record = withData(loaded.record, dataOf(loaded.record), now, this.timing, this.#o.cookieShape);
    const deadlines = deadlinesOf(record._gateway, this.timing);
    const result = await this.store.compareAndSet(loaded.sid, loaded.stored.version, JSON.stringify(record), this.#ttl(deadlines, now));
    this.#o.metrics.sessionWritesOf('refresh', result).inc();
    return result === 'ok' ? deadlines : null;
  }

  /**
   * Runs write-backs to one session one after another in this process: 200 parallel
   * writers would otherwise retry each other's compare-and-set into the ground.
   */
  readonly #queues = new Map<string, Promise<unknown>>();
  #serially<T>(sid: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(sid) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => {});
    this.#queues.set(sid, tail);
    void tail.then(() => {
      if (this.#queues.get(sid) === tail) this.#queues.delete(sid);
    });
    return run;
  }

  /**
   * Applies a verified write-back. `loaded` is what this request read (null: no session);
   * `fence`, for a request holding the session's lease, refuses the write once a newer
   * lease exists (a request whose lease ran out cannot write after the next one).
   */
  apply(loaded: LoadedSession | null, tokenSid: string | null, writeBack: WriteBack, secure: boolean, fence?: number): Promise<WriteBackOutcome> {
    const run = () => this.#applyNow(loaded, tokenSid, writeBack, secure, fence).catch(refusedOutcome);
    return tokenSid ? this.#serially(tokenSid, run) : run();
  }

  async #applyNow(loaded: LoadedSession | null, tokenSid: string | null, writeBack: WriteBack, secure: boolean, fence: number | undefined): Promise<WriteBackOutcome> {
    if (writeBack.revokeUser) {
      // Revoking ends this session too, so anything else asked alongside is moot.
      if (loaded) await this.#revokeUser(loaded);
      return { kind: 'destroyed' };
    }
    if (writeBack.destroy) {
      if (tokenSid) await this.#destroy(tokenSid, loaded);
      return { kind: 'destroyed' };
    }
    // The same function runs on every compare-and-set attempt, over what is stored then:
    // that is what makes incr/add/remove atomic.
    const changed = (data: JsonObject) => applyOperations(applyMergePatch(data, writeBack.set ?? {}) as JsonObject, writeBack);
    if (!tokenSid) return this.#create(changed({}), secure);
    const patch = (record: SessionRecord) => changed(dataOf(record));
    return writeBack.regenerate ? this.#regenerate(tokenSid, loaded, patch, fence) : this.#update(tokenSid, loaded, patch, 0, fence);
  }

  async #create(data: JsonObject, secure: boolean): Promise<WriteBackOutcome> {
    const now = this.#now();
    const record = newRecord(data, now, this.timing, this.#o.cookieShape, secure);
    const raw = JSON.stringify(record);
    if (raw.length > this.#o.maxBytes) return { kind: 'too_large', bytes: raw.length };
    const deadlines = deadlinesOf(record._gateway, this.timing);
    for (;;) {
      const sid = newSessionId();
      if (await this.store.create(sid, raw, this.#ttl(deadlines, now))) {
        this.#o.metrics.sessionWritesOf('create', 'ok').inc();
        // Not remembered parsed: a new session is read (and then cached) only if the visitor
        // comes back, and caching every login cost ~60 MB of RSS in the soak (npm run bench -- --soak).
        await this.#index(data, sid, deadlines, now);
        return { kind: 'stored', sid, deadlines, newSid: true };
      }
    }
  }

  /** Read-modify-write with compare-and-set; the first attempt reuses what the request already read. */
  async #update(sid: string, loaded: LoadedSession | null, patch: (r: SessionRecord) => JsonObject, hops = 0, fence?: number): Promise<WriteBackOutcome> {
    let current: LoadedSession | null = loaded && loaded.sid === sid ? loaded : await this.load(sid);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      if (!current) {
        // Regenerated while this request ran: the write lands where the session went.
        const moved = hops < MAX_MOVED_HOPS ? await this.store.movedTo(sid) : null;
        if (moved) {
          const outcome = await this.#update(moved, null, patch, hops + 1);
          return outcome.kind === 'stored' ? { ...outcome, followed: true } : outcome;
        }
        this.#o.metrics.sessionWritesOf('update', 'gone').inc();
        return { kind: 'gone' };
      }
      const now = this.#now();
      const before = dataOf(current.record);
      const record = withData(current.record, patch(current.record), now, this.timing, this.#o.cookieShape);
      const raw = JSON.stringify(record);
      if (raw.length > this.#o.maxBytes) return { kind: 'too_large', bytes: raw.length };
      const deadlines = deadlinesOf(record._gateway, this.timing);
      const result = await this.store.compareAndSet(sid, current.stored.version, raw, this.#ttl(deadlines, now), fence);
      this.#o.metrics.sessionWritesOf('update', result).inc();
      if (result === 'stale') return { kind: 'lease_lost' };
      if (result === 'ok') {
        this.#remember(sid, raw, record);
        if (lookup(before, this.#userPath) !== lookup(dataOf(record), this.#userPath)) await this.#index(dataOf(record), sid, deadlines, now);
        return { kind: 'stored', sid, deadlines, newSid: false };
      }
      await sleep(Math.random() * RETRY_BACKOFF_MS * (attempt + 1));
      current = result === 'gone' ? null : await this.load(sid);
    }
    return { kind: 'contended' };
  }

  /**
   * New id, data kept. The new record is written first, under an id nobody knows yet; then
   * one atomic step (store.moveSession) checks that the old id still holds what was read,
   * deletes it and leaves a pointer to the new id. Changed meanwhile: re-read, rewrite the
   * new record, try again, so no write to the old id is lost. Moved meanwhile by another
   * regenerate: this one's new id is dropped and its changes land in the session the
   * other created, so exactly one session lives on. Gone (destroyed, expired): nothing lives on.
   */
  async #regenerate(oldSid: string, loaded: LoadedSession | null, patch: (r: SessionRecord) => JsonObject, fence?: number): Promise<WriteBackOutcome> {
    const newSid = newSessionId();
    /** Whether the new id was written (by any attempt): then it must not outlive a failed switch. */
    let written = false;
    let current: LoadedSession | null = loaded && loaded.sid === oldSid ? loaded : await this.load(oldSid);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      let result: Awaited<ReturnType<SessionStore['moveSession']>>;
      let record: SessionRecord | undefined;
      let deadlines: Deadlines | undefined;
      const now = this.#now();
      if (current) {
        record = withData(current.record, patch(current.record), now, this.timing, this.#o.cookieShape);
        const raw = JSON.stringify(record);
        if (raw.length > this.#o.maxBytes) return { kind: 'too_large', bytes: raw.length };
        deadlines = deadlinesOf(record._gateway, this.timing);
        await this.store.put(newSid, raw, this.#ttl(deadlines, now));
        written = true;
        result = await this.store.moveSession(oldSid, current.stored.version, newSid, MOVED_POINTER_TTL_MS, fence);
      } else {
        // Nothing to copy: only a pointer left by another regenerate can still take the changes.
        const movedTo = await this.store.movedTo(oldSid);
        result = movedTo ? { movedTo } : 'gone';
      }
      this.#o.metrics.sessionWritesOf('regenerate', typeof result === 'string' ? result : 'moved').inc();
      if (result === 'ok') {
        await this.#index(dataOf(record!), newSid, deadlines!, now);
        return { kind: 'stored', sid: newSid, deadlines: deadlines!, newSid: true };
      }
      if (result === 'gone' || result === 'stale') {
        if (written) await this.store.destroy(newSid);
        return result === 'gone' ? { kind: 'gone' } : { kind: 'lease_lost' };
      }
      if (typeof result === 'object') {
        if (written) await this.store.destroy(newSid);
        const outcome = await this.#update(result.movedTo, null, patch, 1);
        return outcome.kind === 'stored' ? { ...outcome, followed: true } : outcome;
      }
      await sleep(Math.random() * RETRY_BACKOFF_MS * (attempt + 1));
      current = await this.load(oldSid);
    }
    if (written) await this.store.destroy(newSid);
    return { kind: 'contended' };
  }

  /**
   * Deletes the session and every session it was regenerated into while the pointers
   * live: a logout sent with the pre-login cookie, applied after the login, ends the
   * logged-in session too (it was the same visitor's session a moment ago).
   */
  async #destroy(sid: string, loaded: LoadedSession | null): Promise<void> {
    const ended = [sid];
    await this.store.destroy(sid);
    for (let hop = 0, at = sid; hop < MAX_MOVED_HOPS; hop++) {
      const next = await this.store.movedTo(at);
      if (!next) break;
      await this.store.destroy(next);
      ended.push(next);
      at = next;
    }
    this.#o.metrics.sessionWritesOf('destroy', 'ok').inc(ended.length);
    const user = loaded ? lookup(dataOf(loaded.record), this.#userPath) : null;
    if (user) await this.store.unindexUser(user, ended);
  }

  async #revokeUser(loaded: LoadedSession): Promise<void> {
    const user = lookup(dataOf(loaded.record), this.#userPath);
    if (!user) return this.#destroy(loaded.sid, loaded);
    const sids = await this.store.sessionsOfUser(user);
    if (!sids.includes(loaded.sid)) sids.push(loaded.sid);
    for (const sid of sids) await this.store.destroy(sid);
    await this.store.unindexUser(user, sids);
    this.#o.metrics.sessionWritesOf('revoke', 'ok').inc(sids.length);
    this.#o.logger.info({ event: 'user_revoked', sessions: sids.length }, 'destroyed every session of a user');
  }

  /**
   * Replaces the session's data with `change(stored data)` under a write-back's rules:
   * queued per session in this process, compare-and-set against the stored value with
   * retries, following a regenerate's moved pointer, never re-creating an ended session.
   * For callers that save whole sessions (src/express-session/), which diff first.
   */
  change(loaded: LoadedSession | null, sid: string, change: (data: JsonObject) => JsonObject): Promise<WriteBackOutcome> {
    return this.#serially(sid, () => this.#update(sid, loaded, (record) => change(dataOf(record))));
  }

  /**
   * Stores a new session under an id the caller chose (express-session's genid). `basis`:
   * the record of the session it replaces after a regenerate, whose createdAt it keeps, so
   * the absolute lifetime is never extended. 'taken' when the id is in use.
   */
  async createAs(sid: string, data: JsonObject, secure: boolean, basis?: SessionRecord): Promise<WriteBackOutcome | { kind: 'taken' }> {
    const now = this.#now();
    const record = basis ? withData(basis, data, now, this.timing, this.#o.cookieShape) : newRecord(data, now, this.timing, this.#o.cookieShape, secure);
    const raw = JSON.stringify(record);
    if (raw.length > this.#o.maxBytes) return { kind: 'too_large', bytes: raw.length };
    const deadlines = deadlinesOf(record._gateway, this.timing);
    if (now >= deadlines.endsAt) return { kind: 'gone' };
    const created = await this.store.create(sid, raw, this.#ttl(deadlines, now));
    this.#o.metrics.sessionWritesOf('create', created ? 'ok' : 'conflict').inc();
    if (!created) return { kind: 'taken' };
    await this.#index(data, sid, deadlines, now);
    return { kind: 'stored', sid, deadlines, newSid: true };
  }

  async #index(data: JsonObject, sid: string, deadlines: Deadlines, now: number): Promise<void> {
    const user = lookup(data, this.#userPath);
    if (user) await this.store.indexUser(user, sid, this.#ttl(deadlines, now));
  }
}
