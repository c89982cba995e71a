/**
 * The session layer of mounts[].lock, on real Redis (two stores: two gateway replicas)
 * and on the embedded store: requests of one session holding the lease run one at a time,
 * so read-modify-write with a plain set loses nothing; the wait is bounded; a request
 * whose lease ran out cannot write after the next one took it (fencing token).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.ts';
import { MemorySessionStore } from '../../src/session/memory-store.ts';
import { RedisSessionStore } from '../../src/session/redis-store.ts';
import { SessionManager } from '../../src/session/sessions.ts';
import type { SessionStore } from '../../src/session/store.ts';

const logger = pino({ level: 'silent' });
const opened: SessionStore[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

function manager(store: SessionStore): SessionManager {
  return new SessionManager({
    store, logger, metrics: createMetrics({ defaultMetrics: false }),
    timing: { idleMs: 1_800_000, absoluteMs: 43_200_000, refreshMs: 60_000 },
    cookieShape: { path: '/', httpOnly: true, sameSite: 'lax' },
    maxBytes: 65_536, userKey: 'user.id',
  });
}

/** Two managers over one store's data: for Redis two clients (two replicas); the embedded store is one process. */
function replicas(kind: 'redis' | 'memory'): [SessionManager, SessionManager] {
  if (kind === 'memory') {
    const store = new MemorySessionStore(1000);
    opened.push(store);
    return [manager(store), manager(store)];
  }
  const prefix = `sess:l${randomBytes(4).toString('hex')}:`;
  const stores = [new RedisSessionStore({ connection: { url: inject('redisUrl') }, prefix }), new RedisSessionStore({ connection: { url: inject('redisUrl') }, prefix })];
  opened.push(...stores);
  return [manager(stores[0]!), manager(stores[1]!)];
}

async function newSession(m: SessionManager, data: Record<string, unknown>): Promise<string> {
  const outcome = await m.apply(null, null, { set: data }, false);
  if (outcome.kind !== 'stored') throw new Error(`no session: ${outcome.kind}`);
  return outcome.sid;
}

const SETTINGS = { waitMs: 20_000, leaseMs: 10_000 };

describe.each(['redis', 'memory'] as const)('%s: session lease', (kind) => {
  const [a, b] = replicas(kind);

  it('100 read-modify-writes with a plain set, half through each replica, under the lease: none lost', async () => {
    const sid = await newSession(a, { count: 0 });
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const m = i % 2 ? a : b;
      const locked = await m.loadLocked(sid, SETTINGS);
      if (locked.kind !== 'locked') throw new Error(`not locked: ${locked.kind}`);
      try {
        const seen = locked.loaded.record.count as number;
        await sleep(1); // the backend's work
        const outcome = await m.apply(locked.loaded, sid, { set: { count: seen + 1 } }, false, locked.lease.fence);
        expect(outcome.kind).toBe('stored');
      } finally {
        await locked.lease.release();
      }
    }));
    expect((await a.load(sid))!.record.count).toBe(100);
  });

  it('control: the same without the lease loses updates', async () => {
    const sid = await newSession(a, { count: 0 });
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const m = i % 2 ? a : b;
      const loaded = (await m.load(sid))!;
      await sleep(1);
      await m.apply(loaded, sid, { set: { count: (loaded.record.count as number) + 1 } }, false);
    }));
    expect((await a.load(sid))!.record.count).toBeLessThan(100);
  });

  it('the wait is bounded: while another request holds the lease, a second gives up after waitMs with a retry hint', async () => {
    const sid = await newSession(a, { count: 0 });
    const holder = await a.loadLocked(sid, SETTINGS);
    expect(holder.kind).toBe('locked');
    const started = Date.now();
    const waiter = await b.loadLocked(sid, { waitMs: 300, leaseMs: 10_000 });
    expect(waiter).toEqual({ kind: 'timeout', retryAfterMs: 300 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    if (holder.kind === 'locked') await holder.lease.release();
    expect((await b.loadLocked(sid, SETTINGS)).kind).toBe('locked');
  });

  it('a waiter sees what the holder stored (the session is read when the lease is taken)', async () => {
    const sid = await newSession(a, { count: 0 });
    const holder = await a.loadLocked(sid, SETTINGS);
    if (holder.kind !== 'locked') throw new Error('not locked');
    const waiting = b.loadLocked(sid, SETTINGS);
    await sleep(50);
    await a.apply(holder.loaded, sid, { set: { count: 41 } }, false, holder.lease.fence);
    await holder.lease.release();
    const next = await waiting;
    expect(next.kind === 'locked' && next.loaded.record.count).toBe(41);
    if (next.kind === 'locked') await next.lease.release();
  });

  it('no lease for a session that does not exist (anonymous visitors never wait)', async () => {
    expect(await a.loadLocked('no-such-session', SETTINGS)).toEqual({ kind: 'gone' });
  });

  it('a request whose lease ran out cannot write after the next one took it', async () => {
    const sid = await newSession(a, { count: 0 });
    const late = await a.loadLocked(sid, { waitMs: 1000, leaseMs: 200 });
    if (late.kind !== 'locked') throw new Error('not locked');
    await sleep(350);
    const next = await b.loadLocked(sid, SETTINGS);
    if (next.kind !== 'locked') throw new Error('not locked');
    expect(await a.apply(late.loaded, sid, { set: { count: 666 } }, false, late.lease.fence)).toEqual({ kind: 'lease_lost' });
    expect(await a.apply(late.loaded, sid, { regenerate: true }, false, late.lease.fence)).toEqual({ kind: 'lease_lost' });
    expect((await b.apply(next.loaded, sid, { incr: { count: 1 } }, false, next.lease.fence)).kind).toBe('stored');
    await late.lease.release(); // an old fence gives back nothing
    expect((await a.loadLocked(sid, { waitMs: 100, leaseMs: 10_000 })).kind).toBe('timeout');
    await next.lease.release();
    expect((await a.load(sid))!.record.count).toBe(1);
  });

  it('a waiter whose client went away stops waiting', async () => {
    const sid = await newSession(a, { count: 0 });
    const holder = await a.loadLocked(sid, SETTINGS);
    const controller = new AbortController();
    const waiting = a.loadLocked(sid, SETTINGS, controller.signal);
    setTimeout(() => controller.abort(), 50);
    expect(await waiting).toEqual({ kind: 'aborted' });
    if (holder.kind === 'locked') await holder.lease.release();
    // The queue moved on: the next waiter gets the lease at once.
    const next = await a.loadLocked(sid, { waitMs: 1000, leaseMs: 10_000 });
    expect(next.kind).toBe('locked');
    if (next.kind === 'locked') await next.lease.release();
  });
});
