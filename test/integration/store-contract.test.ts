/**
 * One contract, every store: the Redis store (on a real Redis) and the embedded store
 * must behave the same for everything the session logic relies on.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MemorySessionStore } from '../../src/session/memory-store.ts';
import { RedisSessionStore } from '../../src/session/redis-store.ts';
import type { SessionStore } from '../../src/session/store.ts';

const stores: Array<[string, () => SessionStore]> = [
  ['redis', () => new RedisSessionStore({ connection: { url: inject('redisUrl') }, prefix: `sess:c${randomBytes(4).toString('hex')}:` })],
  ['memory', () => new MemorySessionStore(100)],
];

const opened: SessionStore[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

describe.each(stores)('%s store contract', (_kind, make) => {
  const store = make();
  opened.push(store);
  const sid = () => randomBytes(12).toString('base64url');

  it('answers ping and says it is ready', async () => {
    await store.ping();
    await expect.poll(() => store.isReady()).toBe(true);
  });

  it('get returns null for an unknown id, and what was created otherwise', async () => {
    const id = sid();
    expect(await store.get(id)).toBeNull();
    expect(await store.create(id, '{"a":1}', 60_000)).toBe(true);
    expect((await store.get(id))?.raw).toBe('{"a":1}');
  });

  it('create refuses an id that exists', async () => {
    const id = sid();
    expect(await store.create(id, '{"a":1}', 60_000)).toBe(true);
    expect(await store.create(id, '{"a":2}', 60_000)).toBe(false);
    expect((await store.get(id))?.raw).toBe('{"a":1}');
  });

  it('compareAndSet writes only over the version that was read', async () => {
    const id = sid();
    await store.create(id, '{"v":1}', 60_000);
    const first = (await store.get(id))!;
    expect(await store.compareAndSet(id, first.version, '{"v":2}', 60_000)).toBe('ok');
    expect(await store.compareAndSet(id, first.version, '{"v":3}', 60_000)).toBe('conflict');
    expect((await store.get(id))?.raw).toBe('{"v":2}');
  });

  it('compareAndSet on a missing session is "gone" and does not create it (no resurrection)', async () => {
    const id = sid();
    await store.create(id, '{"v":1}', 60_000);
    const read = (await store.get(id))!;
    await store.destroy(id);
    expect(await store.compareAndSet(id, read.version, '{"v":2}', 60_000)).toBe('gone');
    expect(await store.get(id)).toBeNull();
  });

  it('compareAndDelete deletes only the version that was read', async () => {
    const id = sid();
    await store.create(id, '{"v":1}', 60_000);
    const first = (await store.get(id))!;
    await store.put(id, '{"v":2}', 60_000);
    expect(await store.compareAndDelete(id, first.version)).toBe('conflict');
    const second = (await store.get(id))!;
    expect(await store.compareAndDelete(id, second.version)).toBe('ok');
    expect(await store.compareAndDelete(id, second.version)).toBe('gone');
  });

  it('entries expire after their TTL', async () => {
    const id = sid();
    await store.create(id, '{}', 300);
    expect(await store.get(id)).not.toBeNull();
    await sleep(450);
    expect(await store.get(id)).toBeNull();
  });

  it('compareAndSet replaces the TTL', async () => {
    const id = sid();
    await store.create(id, '{}', 60_000);
    const read = (await store.get(id))!;
    await store.compareAndSet(id, read.version, '{"x":1}', 300);
    await sleep(450);
    expect(await store.get(id)).toBeNull();
  });

  it('moveSession switches an unchanged session to the new id and keeps a pointer for its TTL', async () => {
    const id = sid();
    await store.create(id, '{"v":1}', 60_000);
    const read = (await store.get(id))!;
    await store.put('new-' + id, '{"v":1}', 60_000);
    expect(await store.moveSession(id, read.version, 'new-' + id, 300)).toBe('ok');
    expect(await store.get(id)).toBeNull();
    expect(await store.movedTo(id)).toBe('new-' + id);
    await sleep(450);
    expect(await store.movedTo(id)).toBeNull();
  });

  it('moveSession refuses a changed session, and leaves no pointer', async () => {
    const id = sid();
    await store.create(id, '{"v":1}', 60_000);
    const read = (await store.get(id))!;
    await store.put(id, '{"v":2}', 60_000);
    expect(await store.moveSession(id, read.version, 'new-' + id, 60_000)).toBe('conflict');
    expect((await store.get(id))?.raw).toBe('{"v":2}');
    expect(await store.movedTo(id)).toBeNull();
  });

  it('a second moveSession of one session finds where the first moved it, and does not overwrite the pointer', async () => {
    const id = sid();
    await store.create(id, '{"v":1}', 60_000);
    const read = (await store.get(id))!;
    expect(await store.moveSession(id, read.version, 'first', 60_000)).toBe('ok');
    expect(await store.moveSession(id, read.version, 'second', 60_000)).toEqual({ movedTo: 'first' });
    expect(await store.movedTo(id)).toBe('first');
  });

  it('moveSession of a session that ended is "gone" and leaves no pointer', async () => {
    const id = sid();
    await store.create(id, '{"v":1}', 60_000);
    const read = (await store.get(id))!;
    await store.destroy(id);
    expect(await store.moveSession(id, read.version, 'new', 60_000)).toBe('gone');
    expect(await store.movedTo(id)).toBeNull();
  });

  it('a lease: none for a missing session; one holder at a time; given back; fences rise', async () => {
    const id = sid();
    expect(await store.acquireLease(id, 60_000)).toBe('gone');
    await store.create(id, '{"v":1}', 60_000);
    const first = await store.acquireLease(id, 60_000);
    expect(first).toMatchObject({ fence: expect.any(Number), stored: { raw: '{"v":1}' } });
    const held = await store.acquireLease(id, 60_000);
    expect(held).toEqual({ heldForMs: expect.any(Number) });
    expect((held as { heldForMs: number }).heldForMs).toBeGreaterThan(50_000);
    await store.releaseLease(id, (first as { fence: number }).fence);
    const second = await store.acquireLease(id, 60_000);
    expect((second as { fence: number }).fence).toBe((first as { fence: number }).fence + 1);
    // An old fence cannot give back a newer lease.
    await store.releaseLease(id, (first as { fence: number }).fence);
    expect(await store.acquireLease(id, 60_000)).toEqual({ heldForMs: expect.any(Number) });
  });

  it('a lease runs out by itself, and a write under the run-out fence is refused once another lease was taken', async () => {
    const id = sid();
    await store.create(id, '{"v":1}', 60_000);
    const late = (await store.acquireLease(id, 200)) as { fence: number; stored: { version: string } };
    await sleep(350);
    const next = (await store.acquireLease(id, 60_000)) as { fence: number; stored: { version: string } };
    expect(next.fence).toBe(late.fence + 1);
    expect(await store.compareAndSet(id, late.stored.version, '{"v":"late"}', 60_000, late.fence)).toBe('stale');
    expect(await store.moveSession(id, late.stored.version, 'new-' + id, 60_000, late.fence)).toBe('stale');
    expect((await store.get(id))?.raw).toBe('{"v":1}');
    expect(await store.compareAndSet(id, next.stored.version, '{"v":2}', 60_000, next.fence)).toBe('ok');
    expect((await store.get(id))?.raw).toBe('{"v":2}');
  });

  it('indexes sessions by user, and forgets them', async () => {
    const user = `u-${sid()}`;
    await store.indexUser(user, 'a', 60_000);
    await store.indexUser(user, 'b', 60_000);
    expect((await store.sessionsOfUser(user)).sort()).toEqual(['a', 'b']);
    await store.unindexUser(user, ['a']);
    expect(await store.sessionsOfUser(user)).toEqual(['b']);
  });

  it('a user index lists only sessions within their lifetime, and outlives the longest', async () => {
    const user = `u-${sid()}`;
    await store.indexUser(user, 'long', 60_000);
    await store.indexUser(user, 'short', 200);
    expect((await store.sessionsOfUser(user)).sort()).toEqual(['long', 'short']);
    await sleep(350);
    expect(await store.sessionsOfUser(user)).toEqual(['long']);
  });

});

describe('redis store: the user index does not grow forever', () => {
  it('drops ids whose sessions have ended whenever a session is added', async () => {
    const prefix = `sess:p${randomBytes(4).toString('hex')}:`;
    const store = new RedisSessionStore({ connection: { url: inject('redisUrl') }, prefix });
    opened.push(store);
    const user = `u-${randomBytes(6).toString('hex')}`;
    for (let i = 0; i < 50; i++) await store.indexUser(user, `short-${i}`, 100);
    await sleep(150);
    await store.indexUser(user, 'alive', 60_000);
    expect(await store.sessionsOfUser(user)).toEqual(['alive']);
    expect(await store.client.zcard(`sgw:${prefix}user:{${user}}`)).toBe(1); // the 50 ended ids are gone from Redis too
  });
});

describe('memory store: the user index is bounded by the store\'s own bound', () => {
  it('sessions evicted from the store, or destroyed, leave the index', async () => {
    const store = new MemorySessionStore(10);
    opened.push(store);
    for (let i = 0; i < 25; i++) {
      await store.create(`s${i}`, '{}', 60_000);
      await store.indexUser('one-user', `s${i}`, 60_000);
    }
    // The store keeps its 10 most recent sessions; the index lists exactly those.
    expect((await store.sessionsOfUser('one-user')).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `s${i + 15}`).sort());
    expect(store.indexedSessions).toBe(10);
    await store.destroy('s20');
    expect(await store.sessionsOfUser('one-user')).not.toContain('s20');
    expect(store.indexedSessions).toBe(9);
  });

  it('ids indexed without a session are bounded too, the least recently indexed going first', async () => {
    const store = new MemorySessionStore(10);
    opened.push(store);
    for (let i = 0; i < 1000; i++) await store.indexUser(`user-${i % 3}`, `x${i}`, 60_000);
    expect(store.indexedSessions).toBe(10);
    expect((await store.sessionsOfUser('user-0')).length + (await store.sessionsOfUser('user-1')).length + (await store.sessionsOfUser('user-2')).length).toBe(10);
  });
});
