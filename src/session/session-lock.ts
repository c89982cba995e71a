/**
 * The per-session lock of locked mounts (mounts[].lock), the way PHP's session handler
 * and ASP.NET's exclusive session state serialize one session's requests: a lease in the
 * store (so it holds across every gateway replica) with a fencing token, taken together
 * with the session's current value, waited for a bounded time, given back when the
 * response is stored or the request ends some other way.
 *
 * Within one process the waiters of a session queue here in arrival order and only the
 * first of them asks the store, so N waiting requests cost one store round trip per poll,
 * not N. Across processes the store decides; waiters poll with a growing, jittered pause.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { SessionStore, StoredSession } from './store.ts';

export interface LockSettings {
  /** How long a request may wait for the lease before it is answered 503. */
  readonly waitMs: number;
  /** How long a lease lasts if never given back (a crashed replica); longer than the mount's timeout. */
  readonly leaseMs: number;
}

/** A held lease. release() is idempotent and never throws. */
export interface Lease {
  readonly sid: string;
  readonly fence: number;
  release(): Promise<void>;
}

export type LockOutcome =
  | { kind: 'locked'; lease: Lease; stored: StoredSession }
  /** The session does not exist: an anonymous visitor, nothing to serialize. */
  | { kind: 'gone' }
  /** Still held by another request after waitMs; retryAfterMs is the holder's remaining lease, bounded by waitMs. */
  | { kind: 'timeout'; retryAfterMs: number }
  /** The client went away while waiting. */
  | { kind: 'aborted' };

const FIRST_PAUSE_MS = 2;
const MAX_PAUSE_MS = 50;

export class SessionLocks {
  readonly #store: SessionStore;
  readonly #logger: Logger;
  /** sid → the promise the next local waiter waits for (the previous one's release). */
  readonly #queues = new Map<string, Promise<void>>();

  constructor(store: SessionStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** Waits (bounded) for the session's lease. Rejects with StoreUnavailableError when the store is down. */
  async acquire(sid: string, settings: LockSettings, signal?: AbortSignal): Promise<LockOutcome> {
    const deadline = Date.now() + settings.waitMs;
    const queued = this.#queues.get(sid);
    const previous = queued ?? Promise.resolve();
    let passOn!: () => void;
    const mine = new Promise<void>((resolve) => (passOn = resolve));
    const tail = previous.then(() => mine);
    this.#queues.set(sid, tail);
    void tail.then(() => {
      if (this.#queues.get(sid) === tail) this.#queues.delete(sid);
    });
    let handedOver = false;
    try {
      // Nobody of this process ahead (the usual case): straight to the store, no timer.
      const first = queued ? await this.#waitLocal(previous, deadline, signal) : 'ready';
      if (first !== 'ready') return first === 'aborted' ? { kind: 'aborted' } : { kind: 'timeout', retryAfterMs: settings.waitMs };
      const outcome = await this.#poll(sid, settings, deadline, signal);
      if (outcome.kind !== 'locked') return outcome;
      handedOver = true;
      const { fence } = outcome;
      let released = false;
      const lease: Lease = {
        sid,
        fence,
        release: async () => {
          if (released) return;
          released = true;
          try {
            await this.#store.releaseLease(sid, fence);
          } catch (error) {
            // The lease runs out by itself; the next request waits at most leaseMs.
            this.#logger.warn({ event: 'lease_release_failed', err: (error as Error).message }, 'session lease not given back; it will expire');
          } finally {
            passOn();
          }
        },
      };
      return { kind: 'locked', lease, stored: outcome.stored };
    } finally {
      // Whoever did not end up holding the lease lets the next local waiter go at once.
      if (!handedOver) void previous.then(passOn, passOn);
    }
  }

  async #waitLocal(previous: Promise<void>, deadline: number, signal?: AbortSignal): Promise<'ready' | 'timeout' | 'aborted'> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([
        previous.then(() => 'ready' as const),
        new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now())))),
        new Promise<'aborted'>((resolve) => {
          if (signal?.aborted) return resolve('aborted');
          onAbort = () => resolve('aborted');
          signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  async #poll(sid: string, settings: LockSettings, deadline: number, signal?: AbortSignal): Promise<(LockOutcome & { kind: 'timeout' | 'gone' | 'aborted' }) | { kind: 'locked'; fence: number; stored: StoredSession }> {
    for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(MAX_PAUSE_MS, pause * 2)) {
      if (signal?.aborted) return { kind: 'aborted' };
      const result = await this.#store.acquireLease(sid, settings.leaseMs);
      if (result === 'gone') return { kind: 'gone' };
      if ('fence' in result) return { kind: 'locked', fence: result.fence, stored: result.stored };
      const left = deadline - Date.now();
      if (left <= 0) return { kind: 'timeout', retryAfterMs: Math.min(settings.waitMs, Math.max(result.heldForMs, 1)) };
      await sleep(Math.min(left, pause / 2 + Math.random() * pause, Math.max(1, result.heldForMs)));
    }
  }
}
