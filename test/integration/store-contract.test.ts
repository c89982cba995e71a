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

  it('keeps a moved pointer for its TTL', async () => {
    const id = sid();
    await store.setMoved(id, 'new-id', 300);
    expect(await store.movedTo(id)).toBe('new-id');
    await sleep(450);
    expect(await store.movedTo(id)).toBeNull();
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
