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
import { applyMergePatch, type JsonObject } from '#protocol';
import type { WriteBack } from '#protocol';
import type { Metrics } from '../ops/metrics.ts';
import {
  bookkeepingProblem, dataOf, deadlinesOf, newRecord, withData,
  type CookieShape, type Deadlines, type SessionRecord, type Timing,
} from './record.ts';
import type { SessionStore, StoredSession } from './store.ts';

/**
 * Compare-and-set attempts before a write-back is reported as failed. Within one process
 * writes to a session are queued (see #serially), so conflicts come only from other
 * replicas or from idle refreshes; retries back off with jitter.
 */
export const MAX_CAS_ATTEMPTS = 32;
const RETRY_BACKOFF_MS = 2;
/** How long writes to a regenerated session's old id are redirected to the new one. */
export const MOVED_POINTER_TTL_MS = 120_000;

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
  | { kind: 'stored'; sid: string; deadlines: Deadlines; newSid: boolean }
  | { kind: 'destroyed' }
  | { kind: 'gone' }
  | { kind: 'too_large'; bytes: number }
  | { kind: 'contended' };

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
  readonly #o: SessionManagerOptions;
  readonly #now: () => number;
  readonly #userPath: readonly string[];
  /** Saves a JSON.parse on every read of an unchanged session, and keeps one record object per stored version. */
  readonly #parsed = new LRUCache<string, ParsedEntry>({ max: PARSED_CACHE_ENTRIES });

  constructor(options: SessionManagerOptions) {
    this.#o = options;
    this.store = options.store;
    this.timing = options.timing;
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

  /** Applies a verified write-back. `loaded` is what this request read (null: no session). */
  apply(loaded: LoadedSession | null, tokenSid: string | null, writeBack: WriteBack, secure: boolean): Promise<WriteBackOutcome> {
    if (!tokenSid) return this.#applyNow(loaded, tokenSid, writeBack, secure);
    return this.#serially(tokenSid, () => this.#applyNow(loaded, tokenSid, writeBack, secure));
  }

  async #applyNow(loaded: LoadedSession | null, tokenSid: string | null, writeBack: WriteBack, secure: boolean): Promise<WriteBackOutcome> {
    if (writeBack.revokeUser) {
      // Revoking ends this session too, so anything else asked alongside is moot.
      if (loaded) await this.#revokeUser(loaded);
      return { kind: 'destroyed' };
    }
    if (writeBack.destroy) {
      if (tokenSid) await this.#destroy(tokenSid, loaded);
      return { kind: 'destroyed' };
    }
    if (!tokenSid) return this.#create(writeBack.set ?? {}, secure);
    const patch = (record: SessionRecord) => applyMergePatch(dataOf(record), writeBack.set ?? {}) as JsonObject;
    return writeBack.regenerate ? this.#regenerate(tokenSid, loaded, patch) : this.#update(tokenSid, loaded, patch);
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
  async #update(sid: string, loaded: LoadedSession | null, patch: (r: SessionRecord) => JsonObject, followMoved = true): Promise<WriteBackOutcome> {
    let current: LoadedSession | null = loaded && loaded.sid === sid ? loaded : await this.load(sid);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      if (!current) {
        const moved = followMoved ? await this.store.movedTo(sid) : null;
        if (moved) return this.#update(moved, null, patch, false);
        this.#o.metrics.sessionWritesOf('update', 'gone').inc();
        return { kind: 'gone' };
      }
      const now = this.#now();
      const before = dataOf(current.record);
      const record = withData(current.record, patch(current.record), now, this.timing, this.#o.cookieShape);
      const raw = JSON.stringify(record);
      if (raw.length > this.#o.maxBytes) return { kind: 'too_large', bytes: raw.length };
      const deadlines = deadlinesOf(record._gateway, this.timing);
      const result = await this.store.compareAndSet(sid, current.stored.version, raw, this.#ttl(deadlines, now));
      this.#o.metrics.sessionWritesOf('update', result).inc();
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
   * New id, data kept. Order matters: the new record is written first, then the old one
   * is deleted only if unchanged (else we re-read and rewrite the new one), so no write
   * is lost and the old id never outlives the switch. Writers still holding the old id
   * follow the moved pointer.
   */
  async #regenerate(oldSid: string, loaded: LoadedSession | null, patch: (r: SessionRecord) => JsonObject): Promise<WriteBackOutcome> {
    const newSid = newSessionId();
    await this.store.setMoved(oldSid, newSid, MOVED_POINTER_TTL_MS);
    let current: LoadedSession | null = loaded && loaded.sid === oldSid ? loaded : await this.load(oldSid);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      if (!current) {
        await this.store.destroy(newSid);
        this.#o.metrics.sessionWritesOf('regenerate', 'gone').inc();
        return { kind: 'gone' };
      }
      const now = this.#now();
      const record = withData(current.record, patch(current.record), now, this.timing, this.#o.cookieShape);
      const raw = JSON.stringify(record);
      if (raw.length > this.#o.maxBytes) return { kind: 'too_large', bytes: raw.length };
      const deadlines = deadlinesOf(record._gateway, this.timing);
      await this.store.put(newSid, raw, this.#ttl(deadlines, now));
      const result = await this.store.compareAndDelete(oldSid, current.stored.version);
      this.#o.metrics.sessionWritesOf('regenerate', result).inc();
      if (result === 'ok') {
        await this.#index(dataOf(record), newSid, deadlines, now);
        return { kind: 'stored', sid: newSid, deadlines, newSid: true };
      }
      await sleep(Math.random() * RETRY_BACKOFF_MS * (attempt + 1));
      current = result === 'gone' ? null : await this.load(oldSid);
    }
    await this.store.destroy(newSid);
    return { kind: 'contended' };
  }

  async #destroy(sid: string, loaded: LoadedSession | null): Promise<void> {
    await this.store.destroy(sid);
    this.#o.metrics.sessionWritesOf('destroy', 'ok').inc();
    const user = loaded ? lookup(dataOf(loaded.record), this.#userPath) : null;
    if (user) await this.store.unindexUser(user, [sid]);
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

  async #index(data: JsonObject, sid: string, deadlines: Deadlines, now: number): Promise<void> {
    const user = lookup(data, this.#userPath);
    if (user) await this.store.indexUser(user, sid, this.#ttl(deadlines, now));
  }
}
