/**
 * The embedded store, for a first run without Redis: bounded (least recently used
 * sessions go first) and expiring (each entry has the session's TTL). Sessions are
 * lost on restart and not shared between processes; the gateway warns loudly at start.
 */
import { LRUCache } from 'lru-cache';
import type { CasResult, LeaseResult, MoveResult, SessionStore, StoredSession } from './store.ts';

interface Entry {
  raw: string;
  version: string;
}

export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory';
  readonly #sessions: LRUCache<string, Entry>;
  readonly #aux: LRUCache<string, string>;
  /**
   * The user index, bounded by the store's own bound: each indexed sid is an entry here
   * (at most maxSessions, the least recently indexed going first), and leaves the index
   * when it is evicted from here or its session leaves the store. So no login ever walks
   * the user's list (30k logins of one user id once made 60k entries and a 6x slowdown).
   */
  readonly #userOf: LRUCache<string, string>;
  /** user → (sid → end time, ms): like Redis's sorted set, ended sessions are not listed. */
  readonly #users = new Map<string, Map<string, number>>();
  /** sid → its lease: the fence counter (never reset while the entry lives) and the holder's deadline. */
  readonly #leases: LRUCache<string, { fence: number; heldUntil: number }>;
  #counter = 0;

  constructor(maxSessions: number) {
    this.#sessions = new LRUCache<string, Entry>({
      max: maxSessions,
      ttlAutopurge: false,
      // 'set' replaces a session under the same id (a write-back): it stays indexed.
      dispose: (_entry, sid, reason) => {
        if (reason !== 'set') this.#userOf.delete(sid);
      },
    });
    this.#aux = new LRUCache<string, string>({ max: maxSessions });
    this.#leases = new LRUCache<string, { fence: number; heldUntil: number }>({ max: maxSessions, ttl: 86_400_000 });
    this.#userOf = new LRUCache<string, string>({
      max: maxSessions,
      dispose: (user, sid, reason) => {
        if (reason !== 'set') this.#forget(user, sid);
      },
    });
  }

  #forget(user: string, sid: string): void {
    const sessions = this.#users.get(user);
    if (!sessions) return;
    sessions.delete(sid);
    if (sessions.size === 0) this.#users.delete(user);
  }

  /** How many sessions are held (for tests and the soak benchmark). */
  get size(): number {
    this.#sessions.purgeStale();
    return this.#sessions.size;
  }

  /** How many session ids the user index holds, over all users (for tests). */
  get indexedSessions(): number {
    let count = 0;
    for (const sessions of this.#users.values()) count += sessions.size;
    return count;
  }

  #entry(raw: string): Entry {
    return { raw, version: String(++this.#counter) };
  }

  async get(sid: string): Promise<StoredSession | null> {
    return this.#sessions.get(sid) ?? null;
  }

  async create(sid: string, raw: string, ttlMs: number): Promise<boolean> {
    if (this.#sessions.has(sid)) return false;
    this.#sessions.set(sid, this.#entry(raw), { ttl: ttlMs });
    return true;
  }

  async put(sid: string, raw: string, ttlMs: number): Promise<void> {
    this.#sessions.set(sid, this.#entry(raw), { ttl: ttlMs });
  }

  #fenceIsStale(sid: string, fence: number | undefined): boolean {
    return fence !== undefined && this.#leases.get(sid)?.fence !== fence;
  }

  async acquireLease(sid: string, leaseMs: number): Promise<LeaseResult> {
    const stored = this.#sessions.get(sid);
    if (!stored) return 'gone';
    const now = Date.now();
    const lease = this.#leases.get(sid) ?? { fence: 0, heldUntil: 0 };
    if (lease.heldUntil > now) return { heldForMs: lease.heldUntil - now };
    const next = { fence: lease.fence + 1, heldUntil: now + leaseMs };
    this.#leases.set(sid, next);
    return { fence: next.fence, stored };
  }

  async releaseLease(sid: string, fence: number): Promise<void> {
    const lease = this.#leases.get(sid);
    if (lease && lease.fence === fence) this.#leases.set(sid, { fence, heldUntil: 0 });
  }

  async compareAndSet(sid: string, version: string, raw: string, ttlMs: number, fence?: number): Promise<CasResult> {
    if (this.#fenceIsStale(sid, fence)) return 'stale';
    const current = this.#sessions.get(sid);
    if (!current) return 'gone';
    if (current.version !== version) return 'conflict';
    this.#sessions.set(sid, this.#entry(raw), { ttl: ttlMs });
    return 'ok';
  }

  async compareAndDelete(sid: string, version: string): Promise<CasResult> {
    const current = this.#sessions.get(sid);
    if (!current) return 'gone';
    if (current.version !== version) return 'conflict';
    this.#sessions.delete(sid);
    return 'ok';
  }

  async destroy(sid: string): Promise<void> {
    this.#sessions.delete(sid);
  }

  async moveSession(oldSid: string, version: string, newSid: string, pointerTtlMs: number, fence?: number): Promise<MoveResult> {
    // One synchronous step: nothing else runs between the check and the switch.
    if (this.#fenceIsStale(oldSid, fence)) return 'stale';
    const current = this.#sessions.get(oldSid);
    if (!current) {
      const movedTo = this.#aux.get(oldSid);
      return movedTo === undefined ? 'gone' : { movedTo };
    }
    if (current.version !== version) return 'conflict';
    this.#aux.set(oldSid, newSid, { ttl: pointerTtlMs });
    this.#sessions.delete(oldSid);
    return 'ok';
  }

  async movedTo(oldSid: string): Promise<string | null> {
    return this.#aux.get(oldSid) ?? null;
  }

  async indexUser(user: string, sid: string, ttlMs: number): Promise<void> {
    const previous = this.#userOf.get(sid);
    if (previous !== undefined && previous !== user) this.#forget(previous, sid);
    let sessions = this.#users.get(user);
    if (!sessions) this.#users.set(user, (sessions = new Map()));
    sessions.set(sid, Date.now() + ttlMs);
    this.#userOf.set(sid, user, { ttl: ttlMs });
  }

  async sessionsOfUser(user: string): Promise<string[]> {
    const now = Date.now();
    return [...(this.#users.get(user) ?? [])].filter(([, endsAt]) => endsAt > now).map(([sid]) => sid);
  }

  async unindexUser(user: string, sids: string[]): Promise<void> {
    for (const sid of sids) {
      if (this.#userOf.get(sid) === user) this.#userOf.delete(sid);
      else this.#forget(user, sid);
    }
  }

  isReady(): boolean {
    return true;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.#sessions.clear();
    this.#userOf.clear();
  }
}
