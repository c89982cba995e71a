/**
 * The seam between the session logic and where sessions live. Both implementations
 * (Redis, embedded memory) pass the same contract suite (test/integration/store-contract.test.ts).
 * Every write is either a create-if-absent or a compare-and-set against the version
 * that was read, so concurrent writers never overwrite each other's changes.
 */
export interface StoredSession {
  /** The stored JSON text, exactly as read. */
  raw: string;
  /** Opaque version of `raw`, for compareAndSet/compareAndDelete. */
  version: string;
}

export type CasResult = 'ok' | 'conflict' | 'gone';

export interface SessionStore {
  readonly kind: 'redis' | 'memory';
  get(sid: string): Promise<StoredSession | null>;
  /** Stores `raw` only if `sid` is unused; false when it exists. */
  create(sid: string, raw: string, ttlMs: number): Promise<boolean>;
  /** Stores `raw`, unconditionally (a fresh id nobody else knows yet). */
  put(sid: string, raw: string, ttlMs: number): Promise<void>;
  /** Replaces the session only if it is still at `version`. */
  compareAndSet(sid: string, version: string, raw: string, ttlMs: number): Promise<CasResult>;
  /** Deletes the session only if it is still at `version`. */
  compareAndDelete(sid: string, version: string): Promise<CasResult>;
  destroy(sid: string): Promise<void>;
  /** After a regenerate: where writes addressed to an old id should go, for `ttlMs`. */
  setMoved(oldSid: string, newSid: string, ttlMs: number): Promise<void>;
  movedTo(oldSid: string): Promise<string | null>;
  /** The user → session ids index, for revoking a user everywhere. */
  indexUser(user: string, sid: string, ttlMs: number): Promise<void>;
  sessionsOfUser(user: string): Promise<string[]>;
  unindexUser(user: string, sids: string[]): Promise<void>;
  /** True when the store can serve requests now. */
  isReady(): boolean;
  /** Resolves when the store answers; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  readonly code = 'SGW_ERR_STORE_UNAVAILABLE';
  constructor(cause: unknown) {
    super(`session store unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'StoreUnavailableError';
  }
}
