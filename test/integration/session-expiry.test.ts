/**
 * Expiry the gateway owns: idle (sliding) and absolute (from creation, never extended),
 * enforced by the gateway itself on an injectable clock; the Redis TTL and the cookie
 * agree with it; one store write per refresh interval at most; a session whose
 * bookkeeping is missing or corrupt is expired, never immortal, never "expire everything".
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { startBackend, type TestBackend } from '../support/backend.ts';
import { baseConfig, startGateway, SIGNING_SECRET, type StartedGateway } from '../support/gateway.ts';
import { Browser } from '../support/http.ts';
import { spawnRedis, type SpawnedRedis } from '../support/redis-server.ts';

const MIN = 60_000;
let backend: TestBackend;
let redis: Redis;
let clock = Date.now();
let gw: StartedGateway;

beforeAll(async () => {
  backend = await startBackend('app', SIGNING_SECRET, { now: () => clock });
  redis = new Redis(inject('redisUrl'));
  gw = await startGateway(baseConfig([{ name: 'app', prefix: '/app', upstream: backend.url, read: ['*'], write: ['*'] }], {
    session: { idleTimeout: '30m', absoluteLifetime: '2h', refreshInterval: '1m' },
  }), { now: () => clock });
});

afterAll(async () => {
  await gw?.close();
  await backend?.close();
  redis?.disconnect();
});

async function login(): Promise<{ browser: Browser; sid: string; createdAt: number }> {
  const browser = new Browser(gw.url);
  const createdAt = clock;
  await browser.post('/app/write', { writeBack: { set: { user: { id: 1 } } } });
  const sid = (await browser.get('/app/')).json().claims.sid as string;
  return { browser, sid, createdAt };
}

/** Advances the clock by `total` in 5-minute steps with a request at each, as an active user would. */
async function stayActive(browser: Browser, total: number): Promise<void> {
  for (let t = 0; t < total; t += 5 * MIN) {
    clock += 5 * MIN;
    await browser.get('/app/');
    await sleep(5);
  }
}

const claimsOf = async (browser: Browser) => (await browser.get('/app/')).json().claims;

describe('idle timeout (sliding)', () => {
  it('ends a session left idle for longer than idleTimeout', async () => {
    const { browser } = await login();
    clock += 29 * MIN;
    expect((await claimsOf(browser)).sid).not.toBeNull();
    clock += 31 * MIN; // 31 minutes since the last activity
    expect((await claimsOf(browser)).sid).toBeNull();
  });

  it('activity slides the idle deadline', async () => {
    const { browser } = await login();
    for (let i = 0; i < 5; i++) {
      clock += 20 * MIN;
      expect((await claimsOf(browser)).sid).not.toBeNull();
      await sleep(20); // the refresh write is not awaited by the request
    }
  });

  it('backends see the idle and absolute deadlines in the signed token', async () => {
    const { browser, createdAt } = await login();
    const claims = await claimsOf(browser);
    expect(claims.absExp).toBe(Math.floor((createdAt + 120 * MIN) / 1000));
    expect(claims.idleExp).toBe(Math.floor((createdAt + 30 * MIN) / 1000));
  });
});

describe('absolute lifetime (never extended)', () => {
  it('ends a session at createdAt + absoluteLifetime however active it is', async () => {
    const { browser } = await login();
    for (let t = 0; t < 110; t += 10) { // 11 active visits, 10 minutes apart
      clock += 10 * MIN;
      expect((await claimsOf(browser)).sid).not.toBeNull();
      await sleep(10);
    }
    clock += 10 * MIN; // now past 2 h since creation
    expect((await claimsOf(browser)).sid).toBeNull();
  });

  it('regenerate keeps the creation time, so it never extends the absolute lifetime', async () => {
    const { browser, createdAt } = await login();
    await stayActive(browser, 75 * MIN);
    await browser.post('/app/write', { writeBack: { regenerate: true } });
    expect((await claimsOf(browser)).absExp).toBe(Math.floor((createdAt + 120 * MIN) / 1000));
    await stayActive(browser, 40 * MIN);
    expect((await claimsOf(browser)).sid).not.toBeNull();
    clock += 6 * MIN; // 121 minutes since the first login
    expect((await claimsOf(browser)).sid).toBeNull();
  });
});

describe('store TTL and cookie agree with the deadlines', () => {
  it('Redis TTL never outlives the earlier deadline, and the cookie Expires matches it', async () => {
    const browser = new Browser(gw.url);
    const reply = await browser.post('/app/write', { writeBack: { set: { a: 1 } } });
    const sid = (await browser.get('/app/')).json().claims.sid;
    const expires = Date.parse(/Expires=([^;]+)/.exec(reply.headers['set-cookie']![0]!)![1]!);
    expect(Math.abs(expires - (clock + 30 * MIN))).toBeLessThan(1000);
    const ttl = await redis.pttl(`${gw.prefix}${sid}`);
    expect(ttl).toBeLessThanOrEqual(30 * MIN);
    expect(ttl).toBeGreaterThan(30 * MIN - 5000);
  });

  it('near the absolute deadline the TTL and cookie shrink to it', async () => {
    const { browser, sid, createdAt } = await login();
    await stayActive(browser, 100 * MIN); // 20 minutes of absolute lifetime left, less than the idle timeout
    const reply = await browser.post('/app/write', { writeBack: { set: { b: 2 } } });
    const expires = Date.parse(/Expires=([^;]+)/.exec(reply.headers['set-cookie']![0]!)![1]!);
    expect(Math.abs(expires - (createdAt + 120 * MIN))).toBeLessThan(1000);
    expect(await redis.pttl(`${gw.prefix}${sid}`)).toBeLessThanOrEqual(20 * MIN);
  });
});

describe('the expiry value can never silently expire everything or nothing (corrupt bookkeeping)', () => {
  const corruptions: Array<[string, (s: any) => void]> = [
    ['missing _gateway', (s) => { delete s._gateway; }],
    ['createdAt is a string', (s) => { s._gateway.createdAt = 'yesterday'; }],
    ['createdAt is 0', (s) => { s._gateway.createdAt = 0; }],
    ['touchedAt is negative', (s) => { s._gateway.touchedAt = -1; }],
    ['times in the far future (would be immortal)', (s) => { s._gateway.createdAt = s._gateway.touchedAt = 9e15; }],
    ['not JSON at all', () => { throw new Error('replace raw'); }],
  ];
  it.each(corruptions)('a session with %s is treated as expired and logged; other sessions are untouched', async (_name, corrupt) => {
    const victim = await login();
    const bystander = await login();
    const key = `${gw.prefix}${victim.sid}`;
    const record = JSON.parse((await redis.get(key))!);
    let raw: string;
    try {
      corrupt(record);
      raw = JSON.stringify(record);
    } catch {
      raw = '{not json';
    }
    await redis.set(key, raw, 'PX', 60_000);
    expect((await claimsOf(victim.browser)).sid).toBeNull();
    expect(gw.logs.some((l) => l.event === 'session_corrupt')).toBe(true);
    expect((await claimsOf(bystander.browser)).data).toEqual({ user: { id: 1 } });
  });
});

describe('idle refresh costs at most one store write per interval; a read is one round trip', () => {
  let own: SpawnedRedis;
  let gw2: StartedGateway;
  let counter: Redis;
  let clock2 = Date.now();
  let backend2: TestBackend;

  beforeAll(async () => {
    own = await spawnRedis();
    counter = new Redis(own.url);
    backend2 = await startBackend('app', SIGNING_SECRET, { now: () => clock2 });
    gw2 = await startGateway(baseConfig([{ name: 'app', prefix: '/app', upstream: backend2.url, read: ['*'], write: ['*'] }], {
      store: { redis: { url: own.url } }, session: { refreshInterval: '1m' },
    }), { now: () => clock2 });
  });
  afterAll(async () => {
    await gw2?.close();
    await backend2?.close();
    counter?.disconnect();
    await own?.stop();
  });

  async function commandCounts(): Promise<Record<string, number>> {
    const info = await counter.info('commandstats');
    return Object.fromEntries([...info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
  }
  const delta = (before: Record<string, number>, after: Record<string, number>) =>
    Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([k, v]) => (v as number) > 0 && !['info'].includes(k as string)));

  it('100 read-only requests within the interval cost 100 GETs and nothing else', async () => {
    const browser = new Browser(gw2.url);
    await browser.post('/app/write', { writeBack: { set: { a: 1 } } });
    const before = await commandCounts();
    for (let i = 0; i < 100; i++) await browser.get('/app/');
    expect(delta(before, await commandCounts())).toEqual({ get: 100 });
  });

  it('20 concurrent requests after the interval store one refresh, not twenty', async () => {
    const browser = new Browser(gw2.url);
    await browser.post('/app/write', { writeBack: { set: { a: 1 } } });
    clock2 += 61_000;
    const before = await gw2.gateway.metrics.sessionWrites.get();
    const okBefore = before.values.find((v) => v.labels.kind === 'refresh' && v.labels.result === 'ok')?.value ?? 0;
    await Promise.all(Array.from({ length: 20 }, () => browser.get('/app/')));
    await sleep(100);
    const after = await gw2.gateway.metrics.sessionWrites.get();
    const okAfter = after.values.find((v) => v.labels.kind === 'refresh' && v.labels.result === 'ok')?.value ?? 0;
    expect(okAfter - okBefore).toBe(1);
  });
});

describe('Redis expiry itself, with short real timeouts', () => {
  it('a session idle for longer than a 2 s idleTimeout is gone from Redis too', async () => {
    const realBackend = await startBackend('app', SIGNING_SECRET);
    const gw3 = await startGateway(baseConfig([{ name: 'app', prefix: '/app', upstream: realBackend.url, read: ['*'], write: ['*'] }], {
      session: { idleTimeout: '2s', absoluteLifetime: '10s', refreshInterval: '500ms' },
    }));
    try {
      const browser = new Browser(gw3.url);
      await browser.post('/app/write', { writeBack: { set: { a: 1 } } });
      const sid = (await browser.get('/app/')).json().claims.sid;
      expect(await redis.pttl(`${gw3.prefix}${sid}`)).toBeLessThanOrEqual(2000);
      await sleep(2300);
      expect(await redis.exists(`${gw3.prefix}${sid}`)).toBe(0);
      expect((await browser.get('/app/')).json().claims.sid).toBeNull();
    } finally {
      await gw3.close();
      await realBackend.close();
    }
  });
});
