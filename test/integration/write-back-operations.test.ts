/**
 * The write-back's atomic operations through the real gateway on real Redis: parallel
 * increments through two replicas all count, where a `set` of a value computed from the
 * token loses updates; add/remove behave as a set; a type mismatch or a key outside the
 * mount's `write` list is refused and leaves the stored session byte for byte as it was.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, startGateway, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser } from '../support/http.ts';

const PARALLEL = 100;
let backend: TestBackend;
let gateways: StartedGateway[];
let redis: Redis;

beforeAll(async () => {
  backend = await startBackend('app', SIGNING_SECRET);
  const config = baseConfig([{ name: 'app', prefix: '/app', upstream: backend.url, read: ['*'], write: ['count', 'tags', 'note', 'user'] }]);
  gateways = [await startGateway(config), await startGateway(config)];
  redis = new Redis(inject('redisUrl'));
});

afterAll(async () => {
  await Promise.all((gateways ?? []).map((g) => g.close()));
  await backend?.close();
  redis?.disconnect();
});

async function loggedIn(): Promise<{ browser: Browser; sid: string }> {
  const browser = new Browser(gateways[0]!.url);
  await browser.post('/app/write', { writeBack: { set: { user: { id: 1 }, count: 0 } } });
  const sid = (await browser.get('/app/')).json().claims.sid as string;
  return { browser, sid };
}

async function stored(sid: string): Promise<Record<string, unknown>> {
  return JSON.parse((await redis.get(gateways[0]!.prefix + sid))!);
}

/** The same browser's cookie, sent through the replica `i % 2`. */
function through(browser: Browser, i: number): Browser {
  const other = new Browser(gateways[i % 2]!.url);
  for (const [k, v] of browser.cookies) other.cookies.set(k, v);
  return other;
}

describe('atomic operations in the write-back', () => {
  it(`${PARALLEL} parallel incr through two replicas raise the counter by exactly ${PARALLEL}`, async () => {
    const { browser, sid } = await loggedIn();
    const replies = await Promise.all(Array.from({ length: PARALLEL }, (_, i) => through(browser, i).post('/app/write?delay=5', { writeBack: { incr: { count: 1 } } })));
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
    expect((await stored(sid)).count).toBe(PARALLEL);
  });

  it(`control: ${PARALLEL} parallel read-modify-write with set lose updates (so the test above can fail)`, async () => {
    const { browser, sid } = await loggedIn();
    const replies = await Promise.all(Array.from({ length: PARALLEL }, async (_, i) => {
      const b = through(browser, i);
      const seen = (await b.get('/app/')).json().claims.data.count as number;
      return b.post('/app/write?delay=5', { writeBack: { set: { count: seen + 1 } } });
    }));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const count = (await stored(sid)).count as number;
    console.log(`plain set: the counter rose by ${count} of ${PARALLEL}`);
    expect(count).toBeLessThan(PARALLEL);
  });

  it('add and remove treat a list as a set, in parallel too', async () => {
    const { browser, sid } = await loggedIn();
    await Promise.all(Array.from({ length: 40 }, (_, i) => through(browser, i).post('/app/write', { writeBack: { add: { tags: [`t${i % 20}`] } } })));
    expect(((await stored(sid)).tags as string[]).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `t${i}`).sort());
    await Promise.all(Array.from({ length: 10 }, (_, i) => through(browser, i).post('/app/write', { writeBack: { remove: { tags: [`t${i}`] } } })));
    expect(((await stored(sid)).tags as string[]).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `t${i + 10}`).sort());
  });

  it.each([
    ['incr on a string', { set: { note: 'text' } }, { incr: { note: 1 } }, 'type_mismatch'],
    ['add to a number', {}, { add: { count: [1] } }, 'type_mismatch'],
    ['incr past 2^53-1', { set: { count: Number.MAX_SAFE_INTEGER } }, { incr: { count: 1 } }, 'unsafe_number'],
    ['incr on a key outside the mount\'s write list', {}, { incr: { role: 1 } }, 'forbidden_key'],
    ['incr on the reserved key _gateway', {}, { incr: { _gateway: 1 } }, 'reserved_key'],
  ])('%s is refused, logged with its code, the session byte for byte unchanged, the response delivered', async (_name, prepare, writeBack, code) => {
    const { browser, sid } = await loggedIn();
    if (Object.keys(prepare).length) await browser.post('/app/write', { writeBack: prepare });
    const before = await redis.get(gateways[0]!.prefix + sid);
    const reply = await browser.post('/app/write', { writeBack });
    expect(reply.status).toBe(200);
    expect(reply.json().mount).toBe('app');
    expect(await redis.get(gateways[0]!.prefix + sid)).toBe(before);
    expect(gateways[0]!.logs.filter((l) => l.event === 'write_back_refused').at(-1)).toMatchObject({ mount: 'app', reason: code });
  });

  it('an anonymous visitor\'s first incr creates a session holding it', async () => {
    const browser = new Browser(gateways[0]!.url);
    await browser.post('/app/write', { writeBack: { incr: { count: 3 } } });
    expect((await browser.get('/app/')).json().claims.data).toEqual({ count: 3 });
  });
});
