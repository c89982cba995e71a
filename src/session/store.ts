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

/** `stale`: the write was fenced by a lease that ran out, and another request acquired it since. */
export type CasResult = 'ok' | 'conflict' | 'gone' | 'stale';

/**
 * A lease on one session's requests (mounts[].lock): `{ fence, stored }` when taken (with
 * the session as it is now), `{ heldForMs }` while another request holds it, `gone` when
 * the session does not exist (nobody to serialize).
 */
export type LeaseResult = { fence: number; stored: StoredSession } | { heldForMs: number } | 'gone';

/**
 * What moving a session to a new id did: `ok` (the old id is gone and points to the new
 * one), `conflict` (the old id changed since it was read), `gone` (it ended), or
 * `{ movedTo }` (another regenerate moved it first, to that id).
 */
export type MoveResult = 'ok' | 'conflict' | 'gone' | 'stale' | { movedTo: string };

export interface SessionStore {
  readonly kind: 'redis' | 'memory';
  get(sid: string): Promise<StoredSession | null>;
  /** Stores `raw` only if `sid` is unused; false when it exists. */
  create(sid: string, raw: string, ttlMs: number): Promise<boolean>;
  /** Stores `raw`, unconditionally (a fresh id nobody else knows yet). */
  put(sid: string, raw: string, ttlMs: number): Promise<void>;
  /** Replaces the session only if it is still at `version` (and, with `fence`, only while that lease's fence is current). */
  compareAndSet(sid: string, version: string, raw: string, ttlMs: number, fence?: number): Promise<CasResult>;
  /** Deletes the session only if it is still at `version`. */
  compareAndDelete(sid: string, version: string): Promise<CasResult>;
  destroy(sid: string): Promise<void>;
  /**
   * The switch of a regenerate, in one atomic step: only if `oldSid` still exists at
   * `version`, it is deleted and a pointer oldSid → newSid is kept for `pointerTtlMs`
   * (writes addressed to the old id follow it). The caller has stored `newSid` before.
   */
  moveSession(oldSid: string, version: string, newSid: string, pointerTtlMs: number, fence?: number): Promise<MoveResult>;
  /** Takes the session's lease for `leaseMs` if nobody holds it; never waits. */
  acquireLease(sid: string, leaseMs: number): Promise<LeaseResult>;
  /** Gives the lease back if it is still held under `fence` (idempotent). */
  releaseLease(sid: string, fence: number): Promise<void>;
  /** Where a regenerated session went, while its pointer lives. */
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
